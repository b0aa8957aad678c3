"""math_answer beyond plain numbers: every answer kind with equal and unequal pairs (near
misses included), hedging, the time budget, unparseable references (graded through
``handler()``)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.lambda_loader import ROOT
from tests.reward_support import load_reward, reward_module, rollout, scores

DEFINITION = {"type": "math_answer", "name": "math"}


@pytest.fixture(scope="module")
def handler() -> Any:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return load_reward(monkeypatch, DEFINITION).handler


@pytest.fixture(scope="module")
def grade(handler: Any) -> Any:
    def run(response: str, reference: Any) -> float:
        score: float = scores(handler([rollout("s", response, reference)], None))[0]
        return score

    return run


def boxed(answer: str) -> str:
    return f"We work it out step by step.\nSo the answer is $\\boxed{{{answer}}}$."


# (reference, answer, expected score): each kind with equal and unequal pairs.
PAIRS = [
    # numbers: fractions, decimals, mixed numbers, radicals, pi, powers, scientific notation
    ("\\frac{1}{2}", "0.5", 1),
    ("\\frac{1}{2}", "1/2", 1),
    ("\\frac{1}{2}", "\\tfrac12", 1),
    ("\\frac{1}{2}", "\\dfrac{1}{2}", 1),
    ("\\frac{1}{2}", "\\frac{2}{1}", 0),
    ("\\frac{10}{9}", "10/9", 1),
    ("\\frac{10}{9}", "1.1", 0),
    ("2\\frac{1}{2}", "\\frac{5}{2}", 1),
    ("2\\frac{1}{2}", "1", 0),
    ("2\\sqrt{3}", "\\sqrt{12}", 1),
    ("2\\sqrt{3}", "\\sqrt{3}", 0),
    ("2\\sqrt{3}", "3.46", 0),
    ("\\sqrt[3]{8}", "2", 1),
    ("\\pi/4", "\\frac{\\pi}{4}", 1),
    ("\\pi/4", "\\frac{\\pi}{2}", 0),
    ("2^{10}", "1024", 1),
    ("3\\times10^{5}", "300000", 1),
    ("3\\times10^{5}", "3e5", 0),  # Math-Verify reads "3e5" as 3
    ("3\\times10^{5}", "3\\times10^{6}", 0),
    ("e^2", "e^{2}", 1),
    ("-\\frac{3}{4}", "-0.75", 1),
    ("-\\frac{3}{4}", "0.75", 0),
    ("\\binom{5}{2}", "10", 1),
    ("5!", "120", 1),
    # a plain-number reference and an answer in LaTeX math: read as math, not as its digits
    ("12", "\\sqrt{12}", 0),
    ("12", "2\\sqrt{36}", 1),
    ("18", "18", 1),
    # percentages, units and degrees, thousands separators
    ("50\\%", "50\\%", 1),
    ("50\\%", "50", 0),  # Math-Verify: 50\% is 0.5
    ("50\\%", "40\\%", 0),
    ("3\\text{ cm}", "3\\text{ cm}", 1),
    ("3\\text{ cm}", "3", 1),
    ("3\\text{ cm}", "3\\text{ m}", 1),  # Math-Verify drops units
    ("3\\text{ cm}", "4\\text{ cm}", 0),
    ("30^\\circ", "30", 1),
    ("30^\\circ", "30^{\\circ}", 1),
    ("30^\\circ", "60^\\circ", 0),
    ("1\\,000", "1000", 1),
    ("1{,}000", "1,000", 1),
    ("1\\,000", "100", 0),
    # expressions with variables
    ("x^2+2x+1", "(x+1)^2", 1),
    ("x^2+2x+1", "(x-1)^2", 0),
    ("\\frac{x}{2}", "0.5x", 1),
    ("2a+b", "b+2a", 1),
    ("2a+b", "2b+a", 0),
    # intervals: open and closed ends, infinity, inequalities
    ("[0,1)", "[0,1)", 1),
    ("[0,1)", "[0,1]", 0),
    ("[0,1)", "(0,1)", 0),
    ("[0,9)", "[0,1)", 0),
    ("(-\\infty, 2]", "(-\\infty,2]", 1),
    ("(-\\infty, 2]", "x \\le 2", 0),  # Math-Verify: a relation is no interval
    ("(-\\infty, 2]", "x < 2", 0),
    ("[2, \\infty)", "x\\geq 2", 0),  # (its default comparison)
    ("[-1, 3]", "-1 \\le x \\le 3", 0),
    ("[-1, 3]", "-1 < x \\le 3", 0),
    ("(-\\infty,0)\\cup(1,\\infty)", "(1,\\infty)\\cup(-\\infty,0)", 1),
    ("(-\\infty,0)\\cup(1,\\infty)", "(-\\infty,0]\\cup(1,\\infty)", 0),
    # sets (order does not matter) and tuples (order matters)
    ("\\{1,2\\}", "\\{2,1\\}", 1),
    ("\\{1,2\\}", "\\{1,3\\}", 0),
    ("\\{1,2\\}", "\\{1,2,3\\}", 0),
    ("\\{1,2\\}", "2, 1", 1),
    ("1, 2", "2,1", 1),
    ("(3,-1)", "(3,-1)", 1),
    ("(3,-1)", "(-1,3)", 0),
    ("(3,-1)", "(3,-1,0)", 0),
    ("(\\frac12, \\sqrt2)", "(0.5, \\sqrt{2})", 1),
    # equations whose right side is the answer
    ("x=2", "x=2", 1),
    ("x=2", "2", 1),
    ("x=2", "x=-2", 0),
    ("x=2", "y=2", 0),
    ("y=2x+3", "y=3+2x", 1),
    ("y=2x+3", "y=2x-3", 0),
    # multiple choice
    ("\\text{(B)}", "(B)", 1),
    ("\\text{(B)}", "B", 1),
    ("\\text{(B)}", "\\text{(B)}", 1),
    ("\\text{(B)}", "(C)", 0),
    ("(D)", "\\textbf{(D)}", 1),
    # text answers
    ("\\text{Tuesday}", "\\text{Tuesday}", 1),
    ("\\text{Tuesday}", "\\text{tuesday}", 1),
    ("\\text{Tuesday}", "\\text{Wednesday}", 0),
    ("\\text{Route 66}", "\\text{route 66}", 1),
    ("\\text{Route 66}", "66", 0),  # a text answer is never read as its number
    # competition notation: \\left / \\right sizing, a command before a letter, escaped
    # currency, \\! thousands, unions of open intervals, \\in, \\pm, degrees in words
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)", 1),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\left(\\frac{\\pi}{2}, 3\\right)", 0),
    ("\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(0.6, 8/3]", 1),
    ("\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "\\left[\\frac{3}{5},\\frac{8}{3}\\right]", 0),
    ("\\cot x", "\\frac{\\cos x}{\\sin x}", 1),
    ("\\cot x", "\\tan x", 0),
    ("2\\pi r", "2r\\pi", 1),
    ("2\\pi r", "\\pi r^2", 0),
    ("\\$32,\\!348", "32348", 1),
    ("\\$32,\\!348", "\\{32, 348\\}", 0),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100", 1),
    ("\\$18.90", "$\\$18.9$", 1),
    ("\\$18.90", "18.09", 0),
    ("(0,9) \\cup (9,36)", "(9,36) \\cup (0,9)", 1),
    ("(0,9) \\cup (9,36)", "(0,9] \\cup (9,36)", 0),
    ("x \\in [-2,7]", "[-2, 7]", 1),
    ("x \\in [-2,7]", "-2 \\le x \\le 7", 0),  # Math-Verify's default
    ("x \\in [-2,7]", "(-2, 7)", 0),
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}", 1),
    ("1 \\pm \\sqrt{19}", "1-\\sqrt{19}, 1 + \\sqrt{19}", 1),
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}", 0),
    ("\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt5, 1-\\sqrt5", 1),
    ("\\{1\\pm\\sqrt{5},-2\\}", "1\\pm\\sqrt{5}", 0),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}^\\circ", 1),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", 1),
    ("\\frac{270}7\\text{ degrees}", "\\frac{207}{7}^\\circ", 0),
]


@pytest.mark.parametrize(("reference", "answer", "expected"), PAIRS)
def test_answer_kinds(grade: Any, reference: str, answer: str, expected: int) -> None:
    assert grade(boxed(answer), reference) == expected


@pytest.mark.parametrize(
    ("answer", "kind", "expected"),
    [
        ("(1,2)", "interval", 1),
        ("1 < x < 2", "interval", 0),  # Math-Verify: a relation is no interval
        ("[1,2]", "interval", 0),
        ("(1,2)", "tuple", 1),
        ("1 < x < 2", "tuple", 0),  # a point is no inequality
        ("[1,2)", "tuple", 0),
        ("(2,1)", "tuple", 0),
    ],
)
def test_the_reference_says_whether_a_pair_is_a_tuple_or_an_interval(
    grade: Any, answer: str, kind: str, expected: int
) -> None:
    assert grade(boxed(answer), {"final_answer": "(1,2)", "kind": kind}) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("The answer is $\\frac{10}{9}$.", 1),
        ("Answer: 10/9", 1),
        ("#### $\\frac{10}{9}$", 1),
        ("<answer>\\frac{10}{9}</answer>", 1),
        ("We get $x = \\frac{10}{9}$", 1),  # the last math of the text, no marker
        ("So it is 10/9", 1),  # the last number, as for GSM8K
        # an answer mid-text, a different final one: the final one counts
        ("At first I thought $\\frac{10}{9}$.\nBut then $\\boxed{\\frac{9}{10}}$", 0),
        ("At first I thought $\\frac{9}{10}$.\nBut then $\\boxed{\\frac{10}{9}}$", 1),
        # hedging: boxes that disagree, "either ... or", an alternative after the answer
        ("$\\boxed{\\frac{10}{9}}$ or $\\boxed{\\frac{9}{10}}$", 0),
        ("$\\boxed{\\frac{10}{9}}$\n\nActually $\\boxed{\\frac{9}{10}}$", 0),
        ("$\\boxed{\\frac{10}{9}}$ and, to be safe, $\\boxed{\\frac{10}{9}}$", 1),  # agree
        # one line: Math-Verify reads the set {10/9, 1.1111111111}, not 10/9
        ("$\\boxed{\\frac{10}{9}}$ and $\\boxed{1.1111111111}$", 0),
        ("The answer is either $\\frac{10}{9}$ or $\\frac{9}{10}$.", 0),
        ("$\\boxed{\\frac{10}{9}}$ or maybe $\\frac{9}{10}$", 0),
        ("The answer is $\\frac{10}{9}$ or $\\frac{9}{10}$", 0),
        ("", 0),
        ("I do not know.", 0),
    ],
)
def test_where_the_answer_is_and_hedging(grade: Any, response: str, expected: int) -> None:
    assert grade(response, "\\frac{10}{9}") == expected


def test_hedging_applies_to_every_kind(grade: Any) -> None:
    assert grade("$\\boxed{[0,1)}$ or $\\boxed{[0,1]}$", "[0,1)") == 0
    assert grade("The answer is (B) or (C).", "\\text{(B)}") == 0
    assert grade("$\\boxed{x=2}$ or $x=-2$", "x=2") == 0
    assert grade("$\\boxed{x=2}$", "x=2") == 1


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        # Math-Verify reads no letter in prose (a box or the letter alone: below)
        ("The answer is (B) because the area doubles.", 0),
        ("Answer: B. The area doubles.", 0),
        ("The area doubles: $\\boxed{B}$", 1),
        ("The answer is (C) because the area doubles.", 0),
        ("The answer is because of (B).", 0),  # no letter opens the answer
    ],
)
def test_a_choice_explained_after_its_letter(grade: Any, response: str, expected: int) -> None:
    assert grade(response, "\\text{(B)}") == expected


def test_spraying_candidates_does_not_pay(grade: Any) -> None:
    spray = "Candidates: " + ", ".join(str(n) for n in range(1, 40)) + ". $\\boxed{\\frac{1}{2}}$"
    assert grade(spray, "\\frac{1}{2}") == 0
    assert grade("$\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}") == 1
    # a long tuple is an answer, not a spray
    long = "(" + ",".join(str(n) for n in range(1, 11)) + ")"
    assert grade(boxed(long), long) == 1


def _graded(handler: Any, reference: Any, response: str) -> dict[str, Any]:
    output: dict[str, Any] = handler([rollout("s", response, reference)], None)[0]
    return output


@pytest.mark.parametrize("reference", ["???", "[0,1", "\\frac{1}{", "\\foo{3}"])
def test_a_reference_math_verify_reads_only_as_text_pays_only_its_own_text(
    handler: Any, reference: str
) -> None:
    # Math-Verify finds no math in it and compares the text as written (preflight reports it)
    for response in ("1", boxed("0"), boxed("[0,1)"), "\\boxed{x}"):
        assert _graded(handler, reference, response)["aggregate_reward_score"] == 0.0


def test_a_matrix_reference_is_read() -> None:
    registry = reward_module("grading")
    grader = registry.parse_definition(DEFINITION, default_name="math").grader
    matrix = "\\begin{pmatrix}1\\\\2\\end{pmatrix}"
    assert grader.reference_problem({"reference_answer": matrix}) is None


def test_an_unknown_kind_is_an_error(handler: Any) -> None:
    output = _graded(handler, {"final_answer": "(1,2)", "kind": "vector"}, boxed("(1,2)"))
    assert output["aggregate_reward_score"] == 0.0
    assert "grader_error" in {metric["name"] for metric in output["metrics_list"]}


def test_a_pathological_expression_costs_its_sample_not_the_batch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = load_reward(monkeypatch, {**DEFINITION, "time_budget": 0.05}).handler
    engine = reward_module("grading.mathverify")
    library = engine.library()
    # A comparison that never ends (as sympy's can): the budget's timer interrupts it, even
    # though Math-Verify catches every Exception around its comparisons.
    stalls: list[float] = []
    verify = library.verify

    def slow(gold: Any, answer: Any, **options: Any) -> Any:
        import time

        if "sin" not in str(answer):
            return verify(gold, answer, **options)
        stalls.append(time.monotonic())
        while True:
            try:
                time.sleep(0.001)
            except Exception:  # as the library does: the timer must get through
                continue

    monkeypatch.setattr(library, "verify", slow)
    event = [
        rollout("slow", boxed("(x+1)^2 + \\sin(x)^2 + \\cos(x)^2 - 1"), "x^2+2x+1"),
        rollout("fast", boxed("\\frac{1}{2}"), "0.5"),
        rollout("interval", boxed("[0,1)"), "[0,1)"),
    ]
    for item in event:  # parsed once before: the 0.05 s go to the comparison, on any machine
        engine.parse(item["messages"][-1]["content"])
    outputs = handler(event, None)
    assert scores(outputs) == [0.0, 1.0, 1.0]
    assert stalls, "the slow comparison ran"
    assert "grader_error" in {metric["name"] for metric in outputs[0]["metrics_list"]}
    assert "exceeded its budget (time budget; 0.05 s)" in capsys.readouterr().out


def test_the_symbolic_check_decides_what_floats_cannot(monkeypatch: pytest.MonkeyPatch) -> None:
    # a budget no loaded test machine exceeds (sympy's first simplify warms its caches)
    handler = load_reward(monkeypatch, {**DEFINITION, "time_budget": 10}).handler

    def grade(response: str, reference: str) -> float:
        score: float = scores(handler([rollout("s", response, reference)], None))[0]
        return score

    # equal at every point: sympy confirms
    assert grade(boxed("\\sin^2 x + \\cos^2 x"), "1") == 1
    assert grade(boxed("(a+b)^2"), "a^2+2ab+b^2") == 1
    # unequal: a test point tells, without sympy
    assert grade(boxed("(a+b)^2"), "a^2+b^2") == 0


def _modules_after(script: str) -> dict[str, bool]:
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_sympy_is_imported_only_when_a_reference_needs_it() -> None:
    script = (
        "import os, sys, json, contextlib, io\n"
        "os.environ['GRADER_CONFIG'] = 'tests/fixtures/graders/gsm8k.json'\n"
        "from tests.lambda_loader import load_handler\n"
        "from tests.reward_support import rollout\n"
        "handler = load_handler('reward').handler\n"
        "seen = {'cold start': 'sympy' in sys.modules}\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    handler([rollout('a', '#### 18', '18'), rollout('b', 'so 1/2', '\\\\frac12'),\n"
        "             rollout('c', '$\\\\boxed{[0,1)}$', '[0,1)')], None)\n"
        "seen['numbers and intervals'] = 'math_verify' in sys.modules\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    handler([rollout('d', '$\\\\boxed{(x+1)^2}$', 'x^2+2x+1')], None)\n"
        "seen['an identity'] = 'math_verify' in sys.modules\n"
        "print(json.dumps(seen))\n"
    )
    assert _modules_after(script) == {
        "cold start": False,
        "numbers and intervals": True,  # an interval is Math-Verify's
        "an identity": True,
    }


def test_references_are_read_once_per_text() -> None:
    math_answer = reward_module("grading.graders.math_answer")
    math_answer._reference_from_text.cache_clear()
    for _ in range(3):
        math_answer.reference_value({"final_answer": "[0,1)"})
    info = math_answer._reference_from_text.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def test_reference_problems_are_named_for_preflight() -> None:
    registry = reward_module("grading")
    grader = registry.parse_definition(DEFINITION, default_name="math").grader
    assert grader.reference_problem({"reference_answer": "[0,1)"}) is None
    assert grader.reference_problem({"reference_answer": "18"}) is None
    problem = grader.reference_problem({"reference_answer": "[0,1"})
    assert problem is not None
    assert problem.startswith("the reference answer is not math this grader reads")


def test_math_verify_keeps_the_parsed_answers_of_a_batch() -> None:
    # the rollouts of one prompt repeat their answers: Math-Verify's LaTeX parse, nearly all
    # of a comparison's cost, is kept for thousands of them (it ships with 20)
    engine = reward_module("grading.mathverify")
    parser = engine.library().parser
    for name in ("parse_latex_cached", "parse_expr_cached"):
        assert getattr(parser, name).cache_info().maxsize == engine.PARSE_CACHE
    parser.parse_latex_cached.cache_clear()
    for _ in range(3):
        assert engine.parse("$\\boxed{\\frac{10}{9}}$")
    info = parser.parse_latex_cached.cache_info()
    assert (info.misses, info.hits) == (1, 2)
