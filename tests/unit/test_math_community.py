"""math_answer on the answer formats the community feeds Math-Verify (issue 19): each case is
a response, a reference and the score Math-Verify's rules give (graded through ``handler()``).
Every case here failed on the code before the change that added it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.reward_support import load_reward, rollout, scores


@pytest.fixture(scope="module")
def grade() -> Any:
    with pytest.MonkeyPatch.context() as monkeypatch:
        handler = load_reward(monkeypatch, {"type": "math_answer", "name": "math"}).handler

    def run(response: str, reference: Any) -> float:
        score: float = scores(handler([rollout("s", response, reference)], None))[0]
        return score

    return run


# Lists are compared element by element: a list sharing only its last number is wrong.
LISTS = [
    ("The numbers are 21, 36, and 82.", "19, 46, and 82", 0),
    ("The numbers are 19, 46, and 82.", "19, 46, and 82", 1),
    ("The numbers are 82, 46 and 19.", "19, 46, and 82", 1),  # a bare list is a set
    ("So $\\boxed{19, 36, 82}$.", "19, 46, and 82", 0),
    ("$\\boxed{3}$ and $\\boxed{5}$", "3, 5", 1),
    ("$\\boxed{5}$ and $\\boxed{3}$", "3, 5", 1),
    ("$\\boxed{3}$ and $\\boxed{4}$", "3, 5", 0),
    ("\\boxed{3}, \\boxed{5}", "(3, 5)", 1),
    ("\\boxed{5}, \\boxed{3}", "(3, 5)", 0),
    # Math-Verify's rule: a set answering a tuple keeps its written order...
    ("\\boxed{\\{1,3\\}}", "(1,3)", 1),
    ("\\boxed{\\{3,1\\}}", "(1,3)", 0),
    # ...and a tuple answering a set is a set
    ("\\boxed{(3,1)}", "\\{1,3\\}", 1),
    ("\\boxed{(3,2)}", "\\{1,3\\}", 0),
    # "1,234" is a number, not a list
    ("The total is 1,234.", "1,234", 1),
    ("The total is 1,234.", "234", 0),
]


@pytest.mark.parametrize(("response", "reference", "expected"), LISTS)
def test_lists_are_compared_element_by_element(
    grade: Any, response: str, reference: str, expected: float
) -> None:
    assert grade(response, reference) == expected


def test_boxes_on_separate_lines_are_two_answers(grade: Any) -> None:
    # a changed mind, not one answer of two parts
    assert grade("First \\boxed{3}\nNo wait: \\boxed{5}", "3") == 0


DELIMITED_RESPONSES = [
    ("Final Answer: The largest $n$ is 34.", "34", 1),
    ("We check every case.\nSo the answer is $\\boxed{34}$.", "34", 1),
    ("So the answer is $\\boxed{35}$.", "34", 0),
    ("I get 34.", "34", 1),
    ("The answer is $\\frac{3}{2}$.", "\\frac{3}{2}", 1),
    ("The answer is $\\frac{5}{2}$.", "\\frac{3}{2}", 0),
    ("\\boxed{[0, 1)}", "[0,1)", 1),
    ("\\boxed{[0, 1]}", "[0,1)", 0),
]


@pytest.mark.parametrize("delimiters", [("$", "$"), ("$$", "$$"), ("\\(", "\\)"), ("\\[", "\\]")])
@pytest.mark.parametrize(("response", "reference", "expected"), DELIMITED_RESPONSES)
def test_a_reference_in_math_delimiters_grades_as_without_them(
    grade: Any, delimiters: tuple[str, str], response: str, reference: str, expected: float
) -> None:
    left, right = delimiters
    assert grade(response, reference) == expected
    assert grade(response, f"{left}{reference}{right}") == expected
    assert grade(response, {"final_answer": f" {left} {reference} {right} "}) == expected


MINERVA = "Final Answer: The final answer is ${}$. I hope it is correct."
STATED = [
    (MINERVA.format("\\frac{3}{2}"), "\\frac{3}{2}", 1),
    (MINERVA.format("\\frac{5}{2}"), "\\frac{3}{2}", 0),
    (MINERVA.format("[0,1)"), "[0,1)", 1),
    (MINERVA.format("(0,1)"), "[0,1)", 0),
    (MINERVA.format("(3,-1)"), "(3,-1)", 1),
    (MINERVA.format("\\text{(B)}"), "B", 1),
    (MINERVA.format("\\text{(C)}"), "B", 0),
    (MINERVA.format("2\\sqrt{3}"), "\\sqrt{12}", 1),
    (f"Solving, $n^2 < 1200$.\n{MINERVA.format('34')}", "34", 1),
    # a final answer stated in words at the end
    ("We check all cases.\nThe largest $n$ is 34.", "$34$", 1),
    ("We check all cases.\nThe largest $n$ is 35.", "$34$", 0),
    ("Dividing, the ratio $r$ is 3/2.", "\\frac{3}{2}", 1),
    ("Dividing, the ratio $r$ is 5/2.", "\\frac{3}{2}", 0),
    ("Final Answer: The largest $n$ is $\\sqrt{12}$.", "2\\sqrt{3}", 1),
    ("Final Answer: The largest $n$ is $\\sqrt{11}$.", "2\\sqrt{3}", 0),
]


@pytest.mark.parametrize(("response", "reference", "expected"), STATED)
def test_the_minerva_phrasing_and_an_answer_stated_in_words(
    grade: Any, response: str, reference: str, expected: float
) -> None:
    assert grade(response, reference) == expected


THINKING = [
    ("<think>Maybe 12? \\boxed{12}</think>\nThe answer is \\boxed{34}.", "34", 1),
    ("<think>It is 34: \\boxed{34}</think>\nThe answer is \\boxed{12}.", "34", 0),
    ("<think>Maybe 12.</think>\n34", "34", 1),
    ("<think>Maybe \\frac{1}{2}.</think>\nSo $\\frac{3}{2}$", "\\frac{3}{2}", 1),
    ("<think>It is \\frac{3}{2}.</think>\nSo $\\frac{1}{2}$", "\\frac{3}{2}", 0),
    # the chat template opened the trace in the prompt: only its end is in the response
    ("Maybe 12, maybe 7.</think>\n#### 34", "34", 1),
    ("It is 34 for sure.</think>\n#### 12", "34", 0),
    # a trace never closed is a rollout cut off while thinking: no final answer
    ("<think>I think the answer is 34 \\boxed{34}", "34", 0),
    ("<think>I think the answer is $\\frac{3}{2}$", "\\frac{3}{2}", 0),
]


@pytest.mark.parametrize(("response", "reference", "expected"), THINKING)
def test_a_reasoning_trace_is_skipped(
    grade: Any, response: str, reference: str, expected: float
) -> None:
    assert grade(response, reference) == expected


def test_a_long_trace_is_skipped_whatever_its_length(grade: Any) -> None:
    # the answer part is cut from the text after the trace, never from the trace itself
    trace = "<think>" + "Is it 7? " * 5000 + "</think>"
    assert grade(trace + "The answer is 34.", "34") == 1
    assert grade(trace + "The answer is 7.", "34") == 0


BARE = [
    ("\\frac{10}{9}", "10/9", 1),
    ("\\frac{10}{9}", "\\frac{10}{9}", 1),
    ("\\frac{10}{9}", "9", 0),  # the fraction, not its last number
    ("\\dfrac{10}{9}", "1.1111111111", 1),
    ("\\frac{9}{10}", "10/9", 0),
    ("2\\sqrt{3}", "\\sqrt{12}", 1),
    ("2\\sqrt{3}", "3", 0),
    ("We simplify.\n\\frac{10}{9}", "10/9", 1),
    # a number times a variable is not the number
    ("\\boxed{2k}", "2", 0),
    ("The answer is $\\boxed{2k}$.", "2", 0),
    ("The answer is 3x.", "3", 0),
    ("\\boxed{2k}", "2k", 1),
    ("\\boxed{2}", "2", 1),
]


@pytest.mark.parametrize(("response", "reference", "expected"), BARE)
def test_a_bare_expression_is_read_as_the_expression(
    grade: Any, response: str, reference: str, expected: float
) -> None:
    assert grade(response, reference) == expected


def test_bare_answers_listed_one_per_line_are_a_spray(grade: Any) -> None:
    # bare answers now read as math: a list of them must not pay for the one that is right
    listed = "3\\times10^{5}\n\\sqrt{5}\n\\{1,2\\}\nx^2+2x+1\n\\frac{1}{2}\n(3,-1)\n"
    assert grade(listed + "\\text{(B)}", "\\text{(B)}") == 0
    assert grade(listed + "\\frac{10}{9}", "10/9") == 0
    assert grade("\\text{(B)}", "\\text{(B)}") == 1


def test_a_spray_ending_in_the_plain_number_is_no_answer(grade: Any) -> None:
    # preflight's spray probe on MATH-500 (bare rendering): other answers, some in LaTeX, one
    # per line, the right plain number last; the plain-number rules alone read only the 9
    spray = "2220\n\\pi\n10\n720\n23\n6\n-\\frac{\\pi}{6}\n9"
    assert grade(spray, "9") == 0
    assert grade("We have $x^2 = 81$ and $x > 0$, so\n9", "9") == 1


FORMATS = [
    # units and text inside the answer
    ("\\boxed{\\frac{1}{3}\\text{ meters}}", "\\frac{1}{3}", 1),
    ("\\boxed{\\frac{2}{3}\\text{ meters}}", "\\frac{1}{3}", 0),
    ("\\boxed{\\frac{1}{3}\\text{ meters}}", "\\frac{1}{3}\\text{ meters}", 1),
    # Math-Verify drops units: another unit than the reference's is not told apart
    ("\\boxed{\\frac{1}{3}\\text{ seconds}}", "\\frac{1}{3}\\text{ meters}", 1),
    ("\\boxed{\\textbf{(C)}}", "\\text{(C)}", 1),
    ("\\boxed{\\textbf{(D)}}", "\\text{(C)}", 0),
    ("\\boxed{\\text{(C)}}", "C", 1),
    ("\\boxed{\\textbf{12}}", "\\frac{24}{2}", 1),
    # number formatting
    ("\\boxed{11,\\! 111,\\! 100}", "11111100", 1),
    ("\\boxed{11,\\! 111,\\! 101}", "11111100", 0),
    ("\\boxed{11 111 100}", "11111100", 1),
    ("\\boxed{11 111 100}", "11,111,100", 1),
    ("\\boxed{11 111 101}", "11111100", 0),
    ("\\boxed{11\\,111\\,100}", "11111100", 1),
    ("\\boxed{004}", "4", 1),
    ("\\boxed{004}", "\\frac{8}{2}", 1),
    ("\\boxed{005}", "4", 0),
    ("The answer is 11, 12.", "11", 0),  # still a hedge, not a thousands separator
    # equations: the value of x = 11, and the last side of a chain
    ("\\boxed{x = 11}", "11", 1),
    ("\\boxed{x = 11}", "\\frac{22}{2}", 1),
    ("\\boxed{x = 12}", "\\frac{22}{2}", 0),
    ("$x = 5+5+1 = 11$", "\\frac{22}{2}", 1),
    ("$x = 5+5+1 = 12$", "\\frac{22}{2}", 0),
    ("\\boxed{x = 5+5+1 = 11}", "x = 11", 1),
    ("\\boxed{x = 5+5+1 = 12}", "x = 11", 0),
    ("She gets $\\frac{36}{2} = 18$ dollars.", "18", 1),
    ("She gets $\\frac{36}{2} = 17$ dollars.", "18", 0),
]


@pytest.mark.parametrize(("response", "reference", "expected"), FORMATS)
def test_units_text_number_formats_and_equations(
    grade: Any, response: str, reference: str, expected: float
) -> None:
    assert grade(response, reference) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("The numbers are 19, 46, and 82.", 1),
        ("The numbers are 19, 46, and 82,", 0),  # a list left open
        ("The numbers are x19, 46, and 82.", 0),  # "x19" is no number
        ("The numbers are 19, 46, and 82 cm.", 0),  # the list does not end the sentence
        ("Listed: " + "7, " * 600 + "19, 46, and 82.", 0),  # the right numbers among many
    ],
)
def test_a_list_in_prose_is_read_from_its_end(grade: Any, response: str, expected: float) -> None:
    assert grade(response, "19, 46, and 82") == expected


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [
        ("\\boxed{(p,q)=(3,2)}", "(3,2)", 1),
        ("\\boxed{(p,q)=(2,3)}", "(3,2)", 0),
        ("\\boxed{(p,q)=(3,2)}", "\\{2,3\\}", 1),
        ("\\boxed{x \\in [-2,7]}", "[-2,7]", 1),
        ("\\boxed{x \\in (-2,7]}", "[-2,7]", 0),
        ("\\boxed{(1,2)=(3,2)}", "(3,2)", 0),  # a label is variables, not numbers
        ("\\boxed{(p+1,q)=(3,2)}", "(3,2)", 0),
    ],
)
def test_a_labelled_answer_answers_its_value(
    grade: Any, response: str, reference: str, expected: float
) -> None:
    assert grade(response, reference) == expected
