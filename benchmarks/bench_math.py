"""Benchmark of ``math_answer`` on competition-style answers: fast first, exact second.

Run with ``make bench``. Prints figures; asserts nothing (speed targets are read, not tested).

A mixed batch of competition-style references (fractions, radicals, pi, intervals, sets,
tuples, equations, choices, text, units, percentages, expressions with variables) and
responses (the same answer written differently, a wrong answer, a near miss, a hedge) goes
through ``handler()`` with an inline ``math_answer`` definition, against a baseline that runs
Math-Verify on every pair (what a grader that always asks it does): ``math_answer`` keeps
plain numbers on its numeric path and reads each reference once per batch.
Both run in the same process on the same batch, rounds interleaved, best of the rounds each;
the parse caches are emptied before every round, ``math_answer``'s at its size and the
baseline's at the size Math-Verify ships. The batch repeats its 64 pairs eight times, as the
rollouts of one prompt repeat their answers; ``math_answer``'s wider cache gains from that.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lambda_loader import load_handler  # noqa: E402

BATCH = 512
# reference, then responses: right in another form, right as written, wrong, near miss
PAIRS: list[tuple[str, list[str]]] = [
    ("\\frac{10}{9}", ["10/9", "\\frac{10}{9}", "\\frac{9}{10}", "1.11"]),
    ("2\\sqrt{3}", ["\\sqrt{12}", "2\\sqrt{3}", "3\\sqrt{2}", "3.46"]),
    ("\\frac{\\pi}{4}", ["\\pi/4", "\\frac{\\pi}{4}", "\\frac{\\pi}{2}", "0.785"]),
    ("[0,1)", ["[0, 1)", "[0,1)", "[0,1]", "(0,1)"]),
    ("(-\\infty, 2]", ["x \\le 2", "(-\\infty,2]", "(-\\infty,2)", "[2,\\infty)"]),
    ("\\{1,2\\}", ["\\{2, 1\\}", "\\{1,2\\}", "\\{1,3\\}", "\\{1,2,3\\}"]),
    ("(3,-1)", ["(3, -1)", "(3,-1)", "(-1,3)", "(3,1)"]),
    ("x=2", ["2", "x=2", "x=-2", "y=2"]),
    ("\\text{(B)}", ["B", "(B)", "(C)", "(D)"]),
    ("50\\%", ["50", "50\\%", "40\\%", "5"]),
    ("3\\text{ cm}", ["3", "3\\text{ cm}", "3\\text{ m}", "4\\text{ cm}"]),
    ("x^2+2x+1", ["(x+1)^2", "x^2+2x+1", "(x-1)^2", "x^2+1"]),
    ("2\\frac{1}{2}", ["\\frac{5}{2}", "2.5", "\\frac{1}{2}", "2"]),
    ("3\\times10^{5}", ["300000", "3 \\times 10^5", "3\\times10^{6}", "30000"]),
    ("\\frac{\\sqrt{2}}{2}", ["\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt2}{2}", "\\sqrt{2}", "0.7"]),
    ("\\text{Tuesday}", ["\\text{Tuesday}", "\\text{tuesday}", "\\text{Monday}", "\\text{Wed}"]),
]


def batch() -> list[dict[str, Any]]:
    """``BATCH`` rollouts cycling through the pairs; every fifth a hedge."""
    event: list[dict[str, Any]] = []
    index = 0
    while len(event) < BATCH:
        reference, responses = PAIRS[index % len(PAIRS)]
        answer = responses[(index // len(PAIRS)) % len(responses)]
        text = f"Working it out step by step.\nSo the answer is $\\boxed{{{answer}}}$."
        if index % 5 == 4:
            text = f"It is $\\boxed{{{answer}}}$ or $\\boxed{{{responses[2]}}}$."
        event.append(
            {
                "id": f"m{index}",
                "messages": [
                    {"role": "user", "content": "Solve it."},
                    {"role": "assistant", "content": text},
                ],
                "metadata": {"reference_answer": {"final_answer": reference}},
            }
        )
        index += 1
    return event


def caches(*, wide: bool) -> None:
    """Empty Math-Verify's parse caches, at ``math_answer``'s size (``wide``) or at the size
    Math-Verify ships (20 entries: the baseline's, as any caller of it has)."""
    import math_verify.parser

    engine: Any = sys.modules["grading.mathverify"]
    size = engine.PARSE_CACHE if wide else 20
    engine.stock_caches(math_verify.parser, size)


def always_symbolic(event: list[dict[str, Any]]) -> list[float]:
    """The baseline: Math-Verify on every pair, as a grader that always asks it does (its
    ``parse`` of the reference in ``$...$`` and of the response, then its ``verify``)."""
    import math_verify

    scores = []
    for rollout in event:
        reference = rollout["metadata"]["reference_answer"]["final_answer"]
        gold = math_verify.parse(f"${reference}$", parsing_timeout=None)
        answer = math_verify.parse(rollout["messages"][-1]["content"], parsing_timeout=None)
        scores.append(float(math_verify.verify(gold, answer, timeout_seconds=None)))
    return scores


def main(rounds: int = 5) -> int:
    """Grade the batch both ways and print the figures."""
    os.environ["GRADER_CONFIG"] = json.dumps({"type": "math_answer", "name": "math"})
    handler = load_handler("reward", fresh=True).handler
    event = batch()
    with contextlib.redirect_stdout(io.StringIO()):
        handler(event[:1], None)  # first use: imports sympy if anything needs it
        graded = handler(event, None)
    always_symbolic(event[:64])  # the baseline's first simplify warms sympy's caches
    best = {"handler": float("inf"), "symbolic": float("inf")}
    for _ in range(rounds):
        caches(wide=True)  # emptied: no round starts with the answers of the one before
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            handler(event, None)
        best["handler"] = min(best["handler"], time.perf_counter() - started)
        caches(wide=False)
        started = time.perf_counter()
        baseline = always_symbolic(event)
        best["symbolic"] = min(best["symbolic"], time.perf_counter() - started)
    caches(wide=True)
    ours = [output["aggregate_reward_score"] for output in graded]
    agree = sum(a == b for a, b in zip(ours, baseline, strict=True))
    print(
        f"Competition-style math: {BATCH} samples, {len(PAIRS)} answer kinds and forms,"
        f" best of {rounds} interleaved rounds\n"
        f"   handler() {best['handler'] * 1000:7.1f} ms ({BATCH / best['handler']:7.0f} samples/s)"
        f"   Math-Verify on every pair {best['symbolic'] * 1000:7.1f} ms"
        f" ({BATCH / best['symbolic']:5.0f} samples/s)"
        f"   speed-up {best['symbolic'] / best['handler']:5.1f}x\n"
        f"   mean reward: handler() {sum(ours) / BATCH:.3f}, Math-Verify on every pair"
        f" {sum(baseline) / BATCH:.3f}; the two agree on {agree} of {BATCH} samples"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
