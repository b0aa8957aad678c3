"""The rules ``math_answer`` keeps beside Math-Verify (``grading/mathlists.py``), one by one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.reward_support import reward_module


@pytest.fixture(scope="module")
def lists() -> Any:
    return reward_module("grading.mathlists")


@pytest.mark.parametrize(
    ("text", "whole", "expected"),
    [
        ("19, 46, and 82", True, "19, 46, 82"),
        ("19, 46 and 82", True, "19, 46, 82"),
        ("3 and 5", True, "3, 5"),
        ("1; 2; 3", True, "1, 2, 3"),
        ("-1, 2.5", True, "-1, 2.5"),
        ("The numbers are 19, 46, and 82.", False, "19, 46, 82"),
        ("The numbers are 19, 46, and 82.", True, None),  # not the whole text
        ("The numbers are 19, 46, and 82 $", False, "19, 46, 82"),
        ("1,234,567", True, None),  # thousands separators: one number
        ("1,234", True, None),
        ("42", True, None),  # one number is no list
        ("x, y, and z", True, None),
        ("19, 46, and 82x", False, None),  # a letter after the last number
        ("2 3", True, None),  # no separator
        ("$1, 2$", True, "1, 2"),  # math delimiters around the whole list
    ],
)
def test_a_list_of_numbers_ends_the_text(
    lists: Any, text: str, whole: bool, expected: str | None
) -> None:
    assert lists.number_list(text, whole=whole) == expected


def test_a_list_is_read_only_in_an_answer_of_bounded_length(lists: Any) -> None:
    long = "x " * lists.MAX_ANSWER_LENGTH + "1, 2"
    assert lists.number_list(long) is None
    at_the_limit = "a " * ((lists.MAX_ANSWER_LENGTH - 4) // 2) + "1, 2"
    assert len(at_the_limit) == lists.MAX_ANSWER_LENGTH
    assert lists.number_list(at_the_limit) == "1, 2"
    assert lists.number_list("x" + at_the_limit) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2220\n\\pi\n-\\frac{\\pi}{6}\n9", True),
        ("1\n2\n3\n4", True),
        ("1\n2\n3", False),  # three are not yet a spray
        ("1\n1\n1\n1", False),  # one answer repeated
        ("1\n 1 \n1.\n$1$", False),  # the same answer, written with blanks and delimiters
        ("1.\n1,\n1;\n1", False),  # and with punctuation after it
        ("1+2\n1 + 2\n1 +2\n1+ 2", False),  # blanks inside do not make another answer
        ("$1$\n$2$\n\\(3\\)\n\\[4\\]", True),  # delimiters do not hide a line
        ("1\n2\n3\n4\nThe answer is 4", False),  # a marker names the answer
        ("1\n2\n3\n\\boxed{4}", False),
        ("#### 4\n1\n2\n3\n5", False),
        ("We have 1 apple\nand 2 pears\nthen 3 more\nso 4", False),  # words: prose
        ("1\n2\n3\n" + "x" * 41, False),  # a long line is no bare answer
        ("1\n2\n3\n" + "1" * 40, True),
    ],
)
def test_bare_answers_one_per_line_are_a_spray(lists: Any, text: str, expected: bool) -> None:
    assert lists.listed_candidates(text) is expected


def test_only_the_last_lines_are_looked_at(lists: Any) -> None:
    candidates = "1\n2\n3\n4\n"
    assert lists.listed_candidates(candidates + "We check it.\n" * 16) is True
    assert lists.listed_candidates(candidates + "We check it.\n" * 17) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{3}", False),
        ("\\boxed{3}\n\n**Final Answer**\n\\boxed{3}", False),  # the same answer again
        ("\\boxed{3}\n\\boxed{ 3 }", False),  # blanks do not matter
        ("\\boxed{3}\nActually \\boxed{5}", True),
        ("$\\boxed{3}$ and $\\boxed{5}$", False),  # one line: one answer (a set)
        ("\\boxed{3} and \\boxed{5}\n\\boxed{5} and \\boxed{3}", False),  # the same set
        ("\\boxed{3} and \\boxed{5}\n\\boxed{3}", True),
        ("\\boxed{\\frac{1}{2}}\n\\boxed{\\frac{1}{3}}", True),  # nested braces read whole
        ("\\boxed{\\frac{1}{2}}\n\\boxed{\\frac{1}{2}}", False),
        ("\\boxed{1\n\\boxed{2}", False),  # a box never closed on its line is no answer
        ("\\boxed{3}\nor \\boxed{oops\n\\boxed{5}", True),  # and the boxes before it count
        ("no box here", False),
    ],
)
def test_boxes_on_different_lines_must_agree(lists: Any, text: str, expected: bool) -> None:
    assert lists.boxes_disagree(text) is expected


def test_only_the_last_boxes_are_read(lists: Any) -> None:
    boxes = "\n".join(["\\boxed{7}"] * lists._LAST_BOXES)
    assert lists.boxes_disagree("\\boxed{1}\n" + boxes) is False
    shorter = "\n".join(["\\boxed{7}"] * (lists._LAST_BOXES - 1))
    assert lists.boxes_disagree("\\boxed{1}\n" + shorter) is True


def test_a_box_longer_than_its_limit_is_no_answer(lists: Any) -> None:
    long = "\\boxed{" + "1" * lists._BOX_CONTENT + "}"
    assert lists.boxes_disagree(long + "\n\\boxed{2}") is False
    fits = "\\boxed{" + "1" * (lists._BOX_CONTENT - 1) + "}"
    assert lists.boxes_disagree(fits + "\n\\boxed{2}") is True
