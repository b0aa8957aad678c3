"""Agreement of ``math_answer`` with Math-Verify on answer pairs in the formats of issue 19.

Run with ``make bench``. Prints figures; asserts nothing.

Each pair is a reference, a response and the verdict Math-Verify gives it (``verify`` of the
parsed reference and response, the reference written in ``$...$`` as Math-Verify's README
asks of a gold answer; the verdicts were taken by running ``math-verify`` on these pairs, see
``EXPECTED_FROM``). The pairs cover the categories the issue names, each with
correct and incorrect variants: lists, references in math delimiters, the Minerva phrasing and
answers stated in words, reasoning traces, bare expressions, units and text, number formats,
equations. ``handler()`` grades every pair with an inline ``math_answer`` definition; the
benchmark prints agreement with Math-Verify, the true-positive rate (right answers rewarded)
and the false-positive rate (wrong answers rewarded), per category and overall. Where the
project differs from Math-Verify on purpose (docs/graders.md), the pair says whether the
response is right apart from Math-Verify's verdict.

To compare with older code, run this file from a checkout of that code: it grades with the
``lambda/reward`` next to it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lambda_loader import load_handler  # noqa: E402

EXPECTED_FROM = "math-verify 0.8.0"
MINERVA = "Final Answer: The final answer is ${}$. I hope it is correct."
TRACE = "<think>Let me try {}. Hmm.</think>\n"

# (category, reference, response, whether the response is right, Math-Verify's verdict)
PAIRS: list[tuple[str, str, str, bool, bool]] = [
    ("lists", "19, 46, and 82", "The numbers are $19, 46, 82$.", True, True),
    ("lists", "19, 46, and 82", "The numbers are $21, 36, 82$.", False, False),
    ("lists", "19, 46, and 82", "The numbers are 21, 36, and 82.", False, False),
    # a deliberate difference: Math-Verify reads a list in prose by its last number (and so
    # rejects the right list too); math_answer reads the list
    ("lists", "19, 46, and 82", "The numbers are 19, 46, and 82.", True, False),
    ("lists", "19, 46, 82", "\\boxed{82, 46, 19}", True, True),
    ("lists", "19, 46, 82", "\\boxed{21, 36, 82}", False, False),
    ("lists", "3, 5", "$\\boxed{3}$ and $\\boxed{5}$", True, True),
    ("lists", "3, 5", "$\\boxed{3}$ and $\\boxed{4}$", False, False),
    ("lists", "\\{1,3\\}", "\\boxed{(3,1)}", True, True),
    ("lists", "\\{1,3\\}", "\\boxed{(3,2)}", False, False),
    ("lists", "(1,3)", "\\boxed{\\{1,3\\}}", True, True),
    ("lists", "(1,3)", "\\boxed{(3,1)}", False, False),
    ("delimiters", "$34$", "So the answer is $\\boxed{34}$.", True, True),
    ("delimiters", "$34$", "So the answer is $\\boxed{35}$.", False, False),
    ("delimiters", "\\(\\frac{3}{2}\\)", "\\boxed{\\frac{3}{2}}", True, True),
    ("delimiters", "\\(\\frac{3}{2}\\)", "\\boxed{\\frac{5}{2}}", False, False),
    ("delimiters", "\\[[0,1)\\]", "\\boxed{[0,1)}", True, True),
    ("delimiters", "\\[[0,1)\\]", "\\boxed{[0,1]}", False, False),
    ("delimiters", "$$\\sqrt{12}$$", "\\boxed{2\\sqrt{3}}", True, True),
    ("delimiters", "$$\\sqrt{12}$$", "\\boxed{3\\sqrt{2}}", False, False),
    ("minerva", "\\frac{3}{2}", MINERVA.format("\\frac{3}{2}"), True, True),
    ("minerva", "\\frac{3}{2}", MINERVA.format("\\frac{5}{2}"), False, False),
    ("minerva", "34", MINERVA.format("34"), True, True),
    ("minerva", "34", MINERVA.format("35"), False, False),
    ("minerva", "(3,-1)", MINERVA.format("(3,-1)"), True, True),
    ("minerva", "(3,-1)", MINERVA.format("(-1,3)"), False, False),
    ("minerva", "[0,1)", MINERVA.format("[0,1)"), True, True),
    ("minerva", "[0,1)", MINERVA.format("(0,1)"), False, False),
    ("stated", "$34$", "Final Answer: The largest $n$ is 34.", True, True),
    ("stated", "$34$", "Final Answer: The largest $n$ is 35.", False, False),
    ("stated", "$34$", "We check all cases.\nThe largest $n$ is $34$.", True, True),
    ("stated", "$34$", "We check all cases.\nThe largest $n$ is $35$.", False, False),
    ("stated", "\\frac{3}{2}", "Dividing, the ratio $r$ is $\\frac{3}{2}$.", True, True),
    ("stated", "\\frac{3}{2}", "Dividing, the ratio $r$ is $\\frac{5}{2}$.", False, False),
    ("trace", "34", TRACE.format("12 \\boxed{12}") + "The answer is $\\boxed{34}$.", True, True),
    ("trace", "34", TRACE.format("34 \\boxed{34}") + "The answer is $\\boxed{12}$.", False, False),
    ("trace", "\\frac{3}{2}", TRACE.format("$\\frac{1}{2}$") + "So $\\frac{3}{2}$.", True, True),
    ("trace", "\\frac{3}{2}", TRACE.format("$\\frac{3}{2}$") + "So $\\frac{1}{2}$.", False, False),
    ("bare", "10/9", "$\\frac{10}{9}$", True, True),
    ("bare", "9", "$\\frac{10}{9}$", False, False),
    ("bare", "\\sqrt{12}", "$2\\sqrt{3}$", True, True),
    ("bare", "3", "$2\\sqrt{3}$", False, False),
    ("bare", "2", "\\boxed{2}", True, True),
    ("bare", "2", "\\boxed{2k}", False, False),
    ("units", "\\frac{1}{3}", "\\boxed{\\frac{1}{3}\\text{ meters}}", True, True),
    ("units", "\\frac{1}{3}", "\\boxed{\\frac{2}{3}\\text{ meters}}", False, False),
    ("units", "\\text{(C)}", "\\boxed{\\textbf{(C)}}", True, True),
    ("units", "\\text{(C)}", "\\boxed{\\textbf{(D)}}", False, False),
    ("units", "30", "\\boxed{30^\\circ}", True, True),
    ("units", "30", "\\boxed{60^\\circ}", False, False),
    ("formats", "11111100", "\\boxed{11,\\! 111,\\! 100}", True, True),
    ("formats", "11111100", "\\boxed{11,\\! 111,\\! 101}", False, False),
    # a deliberate difference: math_answer reads LaTeX's thin space as a thousands separator
    ("formats", "11111100", "\\boxed{11\\,111\\,100}", True, False),
    ("formats", "11111100", "\\boxed{11\\,111\\,101}", False, False),
    ("formats", "4", "\\boxed{004}", True, True),
    ("formats", "4", "\\boxed{005}", False, False),
    ("formats", "1,234", "\\boxed{1234}", True, True),
    ("formats", "1,234", "\\boxed{1243}", False, False),
    ("equations", "11", "\\boxed{x = 11}", True, True),
    ("equations", "11", "\\boxed{x = 12}", False, False),
    ("equations", "11", "$x = 5+5+1 = 11$", True, True),
    ("equations", "11", "$x = 5+5+1 = 12$", False, False),
    ("equations", "x = 11", "\\boxed{11}", True, True),
    ("equations", "x = 11", "\\boxed{12}", False, False),
    ("equations", "y = 2x+3", "\\boxed{y = 3+2x}", True, True),
    ("equations", "y = 2x+3", "\\boxed{y = 2x-3}", False, False),
]


def event() -> list[dict[str, Any]]:
    """One rollout per pair."""
    return [
        {
            "id": f"p{index}",
            "messages": [
                {"role": "user", "content": "Solve it."},
                {"role": "assistant", "content": response},
            ],
            "metadata": {"reference_answer": {"final_answer": reference}},
        }
        for index, (_, reference, response, _, _) in enumerate(PAIRS)
    ]


def rates(rows: list[tuple[bool, bool, float]]) -> tuple[float, float, float]:
    """Agreement with Math-Verify, true-positive rate (right answers rewarded) and
    false-positive rate (wrong answers rewarded) of ``(right, Math-Verify, score)`` rows."""
    agree = sum((score == 1.0) == verdict for _, verdict, score in rows) / len(rows)
    right = [score for correct, _, score in rows if correct]
    wrong = [score for correct, _, score in rows if not correct]
    tpr = sum(right) / len(right) if right else float("nan")
    fpr = sum(wrong) / len(wrong) if wrong else float("nan")
    return agree, tpr, fpr


def main(rounds: int = 5) -> int:
    """Grade the pairs and print the figures."""
    os.environ["GRADER_CONFIG"] = json.dumps({"type": "math_answer", "name": "math"})
    handler = load_handler("reward", fresh=True).handler
    rollouts = event()
    with contextlib.redirect_stdout(io.StringIO()):
        graded = handler(rollouts, None)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            handler(rollouts, None)
        best = min(best, time.perf_counter() - started)
    scores = [output["aggregate_reward_score"] for output in graded]
    by_category: dict[str, list[tuple[bool, bool, float]]] = defaultdict(list)
    for (category, _, _, correct, verdict), score in zip(PAIRS, scores, strict=True):
        by_category[category].append((correct, verdict, score))
    print(
        f"Agreement with Math-Verify ({EXPECTED_FROM} verdicts): {len(PAIRS)} answer pairs,"
        f" {best * 1000:.1f} ms for all (best of {rounds})"
    )
    print(f"   {'category':<11} {'pairs':>5} {'agree':>7} {'TPR':>7} {'FPR':>7}")
    rows = [("all", [row for group in by_category.values() for row in group])]
    for category, group in [*by_category.items(), *rows]:
        agree, tpr, fpr = rates(group)
        print(f"   {category:<11} {len(group):>5} {agree:7.1%} {tpr:7.1%} {fpr:7.1%}")
    for (category, reference, response, correct, verdict), score in zip(PAIRS, scores, strict=True):
        if (score == 1.0) != verdict:
            what = "deliberate, " if (score == 1.0) == correct else ""
            print(
                f"   differs ({what}Math-Verify {verdict}): {category}: {reference!r} <- "
                f"{response!r} scores {score:.0f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
