"""``math_answer`` against Math-Verify's own published test cases, and Math-Verify itself.

Run with ``make bench``. Prints figures; asserts nothing.

The cases (``benchmarks/data/math_verify_cases.json``, Apache-2.0, see its ``.LICENCE``) are
Math-Verify's test files at a pinned commit, extracted by ``scripts/math_verify_cases.py``:
a gold answer, a prediction and the verdict the test expects. Each is graded three ways in the
same run: ``handler()`` with an inline ``math_answer`` definition (gold as the reference, the
prediction as the response); ``math_verify.verify`` with its defaults (what a reward function
calling it does); and ``math_verify.verify`` with the options the test passes (its extraction
targets, float rounding, strictness). For each: agreement with the expected verdicts, the
true-positive rate (right answers accepted) and the true-negative rate (wrong answers
rejected), and the time for all cases (best of the rounds).

Then the same on the MATH-500 references of ``datasets/math500`` (when present), each written
as four right answers (boxed, in ``$...$`` at the end of a sentence, the Minerva phrasing, a
bare last line) and two wrong ones (another record's different reference, boxed; the reference
with its first integer changed by one, boxed): agreement with Math-Verify's own verdicts on
the same pairs (its parse of the reference in ``$...$``), the share of right answers accepted
and of wrong answers rejected by each, and the time of each. Also the one-time import of
Math-Verify and sympy that the first LaTeX comparison of a warm function pays.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lambda_loader import load_handler  # noqa: E402

CASES = ROOT / "benchmarks" / "data" / "math_verify_cases.json"
MATH500 = (
    ROOT / "datasets" / "math500" / "train.jsonl",
    ROOT / "datasets" / "math500" / "validation.jsonl",
)
_INTEGER = re.compile(r"(?<![0-9.])[0-9]+(?![0-9.])")


def event(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One rollout per case."""
    return [
        {
            "id": f"c{index}",
            "messages": [
                {"role": "user", "content": "Solve it."},
                {"role": "assistant", "content": case["pred"]},
            ],
            "metadata": {"reference_answer": {"final_answer": case["gold"]}},
        }
        for index, case in enumerate(cases)
    ]


def verify_default(case: dict[str, Any]) -> bool:
    """Math-Verify with its defaults."""
    import math_verify

    gold = math_verify.parse(case["gold"], parsing_timeout=None)
    answer = math_verify.parse(case["pred"], parsing_timeout=None)
    return bool(math_verify.verify(gold, answer, timeout_seconds=None))


def verify_as_tested(case: dict[str, Any]) -> bool:
    """Math-Verify with the options its test passes."""
    import math_verify

    if case["match_types"] == "default":
        return verify_default(case)
    targets = [
        math_verify.LatexExtractionConfig(boxed_match_priority=0)
        if kind == "latex"
        else math_verify.ExprExtractionConfig()
        for kind in case["match_types"]
    ]
    gold = math_verify.parse(case["gold"], targets, parsing_timeout=None)
    answer = math_verify.parse(case["pred"], targets, parsing_timeout=None)
    return bool(
        math_verify.verify(
            gold,
            answer,
            float_rounding=case["precision"],
            strict=case["strict"],
            allow_set_relation_comp=case.get("allow_set_relation_comp", False),
            timeout_seconds=None,
        )
    )


def rates(verdicts: list[bool], expected: list[bool]) -> tuple[float, float, float]:
    """Agreement, true-positive rate and true-negative rate against the expected verdicts."""
    agree = sum(a == b for a, b in zip(verdicts, expected, strict=True)) / len(expected)
    right = [a for a, b in zip(verdicts, expected, strict=True) if b]
    wrong = [a for a, b in zip(verdicts, expected, strict=True) if not b]
    return agree, sum(right) / len(right), 1 - sum(wrong) / len(wrong)


def caches(*, wide: bool) -> None:
    """Empty Math-Verify's parse caches, at ``math_answer``'s size (``wide``) or at the size
    Math-Verify ships (20 entries, as any caller of it has)."""
    import math_verify.parser

    engine: Any = sys.modules["grading.mathverify"]
    engine.stock_caches(math_verify.parser, engine.PARSE_CACHE if wide else 20)


def _best(run: Callable[[], list[bool]], rounds: int, *, wide: bool) -> tuple[list[bool], float]:
    """The verdicts of ``run`` and its best time; the caches emptied before every round."""
    verdicts: list[bool] = []
    best = float("inf")
    for _ in range(rounds):
        caches(wide=wide)
        started = time.perf_counter()
        verdicts = run()
        best = min(best, time.perf_counter() - started)
    return verdicts, best


def main(rounds: int = 3) -> int:
    """Grade the cases three ways and print the figures."""
    document = json.loads(CASES.read_text(encoding="utf-8"))
    cases: list[dict[str, Any]] = document["cases"]
    expected = [bool(case["expected"]) for case in cases]
    os.environ["GRADER_CONFIG"] = json.dumps({"type": "math_answer", "name": "math"})
    handler = load_handler("reward", fresh=True).handler
    rollouts = event(cases)

    def ours() -> list[bool]:
        with contextlib.redirect_stdout(io.StringIO()):
            outputs = handler(rollouts, None)
        return [output["aggregate_reward_score"] == 1.0 for output in outputs]

    ours()  # the first call imports Math-Verify and sympy: no case's cost
    rows = [
        ("math_answer (handler)", *_best(ours, rounds, wide=True)),
        (
            "math_verify, defaults",
            *_best(lambda: list(map(verify_default, cases)), rounds, wide=False),
        ),
        (
            "math_verify, as tested",
            *_best(lambda: list(map(verify_as_tested, cases)), rounds, wide=False),
        ),
    ]
    positives = sum(expected)
    print(
        f"Math-Verify's published test cases ({document['version']}, commit "
        f"{document['commit'][:12]}): {len(cases)} cases, {positives} right answers and "
        f"{len(cases) - positives} wrong, best of {rounds}"
    )
    print(f"   {'grader':<24} {'agree':>7} {'TPR':>7} {'TNR':>7} {'time':>10}")
    for name, verdicts, seconds in rows:
        agree, tpr, tnr = rates(verdicts, expected)
        print(f"   {name:<24} {agree:7.1%} {tpr:7.1%} {tnr:7.1%} {seconds * 1000:8.0f} ms")
    default = rows[1][1]
    same = sum(a == b for a, b in zip(rows[0][1], default, strict=True))
    print(f"   math_answer and math_verify (defaults) agree on {same} of {len(cases)} cases")
    for case, verdict, theirs in zip(cases, rows[0][1], default, strict=True):
        if verdict != case["expected"]:
            print(
                f"   differs: {case['source'].split('::')[1]}: {case['gold'][:40]!r} <- "
                f"{case['pred'][-50:]!r} expected {int(case['expected'])}, math_answer "
                f"{int(verdict)}, math_verify {int(theirs)}"
            )
    return 0


def math500_pairs() -> list[tuple[str, str, bool]]:
    """(reference, response, whether the response is right) for every MATH-500 reference."""
    references: list[str] = []
    for path in MATH500:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                answer = json.loads(line)["reference_answer"]
                text = answer["final_answer"] if isinstance(answer, dict) else answer
                references.append(str(text))
    pairs: list[tuple[str, str, bool]] = []
    for index, reference in enumerate(references):
        pairs += [
            (reference, f"We simplify and find $\\boxed{{{reference}}}$.", True),
            (reference, f"Putting it together, the answer is ${reference}$.", True),
            (
                reference,
                f"Final Answer: The final answer is ${reference}$. I hope it is correct.",
                True,
            ),
            (reference, f"We compute it step by step.\n{reference}", True),
        ]
        other = next(
            (
                references[(index + step) % len(references)]
                for step in range(1, 50)
                if references[(index + step) % len(references)].replace(" ", "")
                != reference.replace(" ", "")
            ),
            None,
        )
        if other is not None:
            pairs.append((reference, f"So the answer is $\\boxed{{{other}}}$.", False))
        changed = _INTEGER.sub(lambda match: str(int(match.group()) + 1), reference, count=1)
        if changed != reference:
            pairs.append((reference, f"So the answer is $\\boxed{{{changed}}}$.", False))
    return pairs


def math500(rounds: int) -> None:
    """Agreement with Math-Verify on the MATH-500 references' variants."""
    if not all(path.exists() for path in MATH500):
        print("MATH-500 variants: datasets/math500 is not here (skipped)")
        return
    pairs = math500_pairs()
    cases = [{"gold": reference, "pred": response} for reference, response, _ in pairs]
    rollouts = event(cases)
    handler = load_handler("reward", fresh=False).handler

    def ours() -> list[bool]:
        with contextlib.redirect_stdout(io.StringIO()):
            outputs = handler(rollouts, None)
        return [output["aggregate_reward_score"] == 1.0 for output in outputs]

    def theirs() -> list[bool]:
        return [verify_default({"gold": f"${gold}$", "pred": pred}) for gold, pred, _ in pairs]

    verdicts, seconds = _best(ours, rounds, wide=True)
    reference_verdicts, their_seconds = _best(theirs, rounds, wide=False)
    right = [correct for _, _, correct in pairs]
    same = sum(a == b for a, b in zip(verdicts, reference_verdicts, strict=True))
    print(
        f"MATH-500 variants: {len(pairs)} pairs from {len({r for r, _, _ in pairs})} distinct"
        f" references ({sum(right)} right, {len(right) - sum(right)} wrong), best of {rounds}"
    )
    print(
        f"   agreement with Math-Verify's verdicts: {same / len(pairs):.1%}"
        f" ({same} of {len(pairs)})"
    )
    for name, values, took in (
        ("math_answer (handler)", verdicts, seconds),
        ("math_verify, defaults", reference_verdicts, their_seconds),
    ):
        _, tpr, tnr = rates(values, right)
        print(
            f"   {name:<24} right accepted {tpr:6.1%}   wrong rejected {tnr:6.1%}"
            f"   {took * 1000:6.0f} ms"
        )


def first_import() -> None:
    """The one-time import the first LaTeX comparison pays (a fresh interpreter, median of 5)."""
    script = (
        "import sys, time; sys.path[:0] = ['lambda/reward', 'lambda/common'];"
        "from grading import mathverify; t = time.perf_counter(); mathverify.library();"
        "print(time.perf_counter() - t)"
    )
    runs = sorted(
        float(
            subprocess.run(
                [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(5)
    )
    print(
        "First LaTeX comparison of a warm function: importing Math-Verify and sympy takes"
        f" {runs[2] * 1000:.0f} ms (median of 5, once per function instance)"
    )


if __name__ == "__main__":
    main()
    math500(3)
    first_import()
