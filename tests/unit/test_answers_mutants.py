"""The GSM8K answer rules of ``grading/answers.py`` at their edges, where mutation testing
(``make mutation``) found no test that would notice a change: the public entry points
(``final_answer``, ``candidate_answer``, ``sprays``), the spray rule's exact limits over a batch,
every final-answer marker read (and none read twice or skipped), hedges and normalization inside
a marker's text, the last-number rule's line, deeply nested boxes and the cut of a long response.

Direct calls of the module (rules 1 to 5 of its docstring, and docs/graders.md), then a few cases
through ``handler()`` where the reward itself says it best.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product
from typing import Any

import pytest

from tests.reward_support import GRADERS, load_reward, reward_module, rollout, scores

answers: Any = reward_module("grading.answers")

RUN = "1 2 3 4 5 6 7 8"  # the shortest run of the default max_number_run (8)
SUM_OF_11 = "1+2+3+4+5+6+7+8+9+10+11"  # 11 numbers, none joined by a list separator


def small(max_numbers: int = 10, max_number_run: int = 50) -> Any:
    """Limits small enough to test their edges with short texts."""
    return answers.Limits(max_numbers=max_numbers, max_number_run=max_number_run)


# -- the public entry points -------------------------------------------------------------------


def test_final_answer_applies_every_rule_including_the_spray_rule() -> None:
    assert answers.final_answer("#### 18") == answers.Answer(18.0, "plain_marker")
    assert answers.final_answer("no number here") == answers.Answer(None, "no_number")
    assert answers.final_answer(f"Candidates: {RUN} 9\n#### 18") == answers.Answer(None, "spray")


def test_final_answer_uses_the_limits_it_is_given() -> None:
    text = "First 1, 2, 3, then #### 3"
    assert answers.final_answer(text) == answers.Answer(3.0, "plain_marker")
    assert answers.final_answer(text, small(max_number_run=3)) == answers.Answer(None, "spray")


def test_candidate_answer_is_every_rule_but_the_spray_rule() -> None:
    assert answers.candidate_answer("#### 18") == answers.Answer(18.0, "plain_marker")
    assert answers.candidate_answer(f"{RUN}\n#### 18") == answers.Answer(18.0, "plain_marker")


def test_a_number_too_large_for_a_float_is_no_number() -> None:
    # hundreds of digits are infinite as a float: no answer, not a value that equals nothing
    assert answers.candidate_answer("#### " + "9" * 400) == answers.Answer(None, "no_number")


def test_sprays_is_the_spray_rule_of_one_text() -> None:
    assert answers.sprays(f"{RUN} 9") is True
    assert answers.sprays("#### 18") is False
    assert answers.sprays("1, 2, 3") is False
    assert answers.sprays("1, 2, 3", small(max_number_run=3)) is True


# -- the spray rule: a run of max_number_run numbers ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (RUN, {0}),  # the whole text, from its first character
        (f"Pick {RUN}!", {0}),
        ("Pick 1 2 3 4 5 6 7!", set()),  # one number short
        ("So 1 or 2 or 3 or 4 or 5 or 6 or 7 or 8.", {0}),
        ("So 1 and 2 and 3 and 4 and 5 and 6 and 7 and 8.", {0}),
        ("So 1 OR 2 OR 3 OR 4 OR 5 OR 6 OR 7 OR 8.", {0}),
        ("So 1, or 2, or 3, or 4, or 5, or 6, or 7, or 8.", {0}),
        ("Ü: 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 €", {0}),  # other characters do not hide a run
        ("So 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8.", set()),  # a sum is no list
    ],
)
def test_a_run_of_eight_numbers_joined_by_separators_sprays(text: str, expected: set[int]) -> None:
    assert answers.spraying([text]) == expected


def test_every_spraying_text_of_a_chunk_is_found() -> None:
    texts = [f"{RUN} 9", "#### 18", "1, 2, 3, 4, 5, 6, 7, 8", "ok", RUN.replace(" ", " or ")]
    assert answers.spraying(texts) == {0, 2, 4}


def test_calculator_annotations_are_invisible_to_the_spray_rule() -> None:
    # GSM8K's <<a*b=c>> adds no numbers ...
    working = "".join(
        f"Day {day}: she earns 2*{day} = <<2*{day}={2 * day}>>{2 * day} dollars.\n"
        for day in range(1, 51)
    )
    assert len(answers._NUMBER.findall(answers._CALCULATOR.sub("", working))) == 200
    assert len(answers._NUMBER.findall(working)) > answers.Limits().max_numbers
    assert answers.spraying([working]) == set()
    # ... and breaks no run
    assert answers.spraying(["Answers: 1, 2, <<2+1=3>>3, 4, 5, 6, 7, 8"]) == {0}


# -- the spray rule: more than max_numbers numbers -----------------------------------------------


def test_more_numbers_than_max_numbers_sprays_at_the_exact_limit() -> None:
    assert answers.spraying([SUM_OF_11], small()) == {0}  # 11 numbers in 23 characters
    assert answers.spraying(["1+2+3+4+5+6+7+8+9+10 in all"], small()) == set()  # 10
    # a number at the very start of a text counts once, a word there not at all
    assert answers.spraying(["1+2+3+4+5+6+7+8+9+10+1111"], small()) == {0}
    assert answers.spraying(["a 1+2+3+4+5+6+7+8+9+10"], small()) == set()


def test_every_text_of_a_batch_is_counted_at_its_own_offsets() -> None:
    sum_of_11 = "1+2+3+4+5+6+7+8+9+10+1111"
    assert answers.spraying([sum_of_11, sum_of_11], small()) == {0, 1}
    # a text that loses its calculator annotations does not shift the next one
    assert answers.spraying(["Total: <<1+1=2>>2", sum_of_11, "9"], small()) == {1}


# -- what the spray rule is made of: documented tables ------------------------------------------


def test_the_shape_table_maps_digits_to_0_list_blanks_to_a_blank_and_the_rest_to_x() -> None:
    kept = {**dict.fromkeys("0123456789", "0"), **dict.fromkeys(" \t\n\r;|", " ")}
    kept.update({",": ",", ".": "."})
    expected = bytes(ord(kept.get(chr(byte), "x")) for byte in range(256))
    assert answers._shape_table() == expected


def test_the_run_table_keeps_what_a_run_of_numbers_can_be_made_of() -> None:
    allowed = set("0123456789 \t\n\r;|,.") | set("orandOR")
    expected = bytes(ord("0" if chr(byte) in allowed else "x") for byte in range(256))
    assert answers._run_table() == expected


def test_the_list_separators_are_up_to_three_blanks_or_a_word() -> None:
    blanks = " ,;|\t\n"
    expected = {"".join(chars) for size in (1, 2, 3) for chars in product(blanks, repeat=size)}
    expected |= {f"{before}{word} " for word in ("or", "and", "OR") for before in (" ", ", ")}
    assert answers._list_separators() == expected


# -- rule 1: an empty response -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "  \n\t "])
def test_an_empty_or_blank_response_has_no_answer(text: str) -> None:
    assert answers.candidate(text) == (None, "empty")


# -- rule 3: markers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # every marker just a number: a plain marker (read as a number whatever else is there)
        ("The answer is $\\boxed{72}$.", (72.0, "plain_marker")),
        ("#### 72\nThe answer is 72", (72.0, "plain_marker")),
        ("#### 18\n" * 5, (18.0, "plain_marker")),
        # one marker with words after its number
        ("The answer is 72 apples.\n#### 72", (72.0, "marker")),
        # a marker at the very start of the response, in capitals, or as a tag
        ("Answer: 18\nThat is 2 more than 16", (18.0, "plain_marker")),
        ("FINAL ANSWER: 18\nThat is 2 more than 16", (18.0, "plain_marker")),
        # "answers" is no marker, and neither is a word that ends in "answer"
        ("My answers follow.\nThe answer is 18.\nFinal answer: 20.", (None, "conflict")),
        ("The counteranswer: 20 is wrong.\n#### 18", (18.0, "plain_marker")),
        # every marker is read, the middle one too
        ("The answer is 18.\nAnswer: 20", (None, "conflict")),
        ("Answer: 18\nAnswer: 20\nFinal answer: 18", (None, "conflict")),
        # GSM8K's calculator annotations are not part of the answer
        ("The answer is <<70+2=72>>72", (72.0, "plain_marker")),
        ("Natalia sold 48 + 24 = <<48+24=72>>72 clips.", (72.0, "last_number")),
    ],
)
def test_markers(text: str, expected: tuple[float | None, str]) -> None:
    assert answers.candidate(text) == expected


# -- a marker's text: normalization -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{1{,}000}", 1000.0),  # LaTeX's {,} thousands separator
        ("\\boxed{11,\\! 111,\\! 100}", 11111100.0),  # ,\! between digit groups
        ("\\boxed{10{,}\\!000}", 10000.0),
        ("The answer is $11\\,111\\,100$ apples.", 11111100.0),  # \, between digit groups
        ("The answer is $\\dfrac{3}{4}$ cup.", 0.75),
        ("The answer is 15 * 8 = 120 pints, 15 per crate.", 120.0),  # the result of "="
        ("The answer is 3 * 4 = 12 + 6 = 18 apples.", 18.0),  # the last result
        ("The answer is (after week 3) 18 apples.", 18.0),  # an aside is set aside
        ("The answer is (about)18.", 18.0),
        # a first sentence without a number: the marker's text goes on into the next
        ("The final answer is as follows. Natalia sold 72 clips, 24 more than in April.", 72.0),
        # the same number again is no alternative
        ("The answer is 18 or 18.", 18.0),
        ("The answer is 18 (18 eggs).", 18.0),
    ],
)
def test_a_marker_text_is_normalized(text: str, expected: float) -> None:
    assert answers.candidate(text) == (expected, "marker")


def test_a_fraction_over_zero_is_no_fraction_and_no_error() -> None:
    # every sample gets a score: "a/b" divides only by a b that is not 0
    assert answers.candidate("The answer is 7/0.") == (7.0, "marker")


# -- rule 5: hedges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "The answer is \\$18 or \\$20.",  # LaTeX-escaped dollars
        "The answer is $18$ or $\\mathbf{20}$",
        "The answer is 8 (or 9).",  # an alternative in an aside
        "The answer is 8 (or maybe 9) boxes. That leaves 3 spare.",
        "The answer is between 18 and 20 dollars.\nSo I pick 20.",
        "\\boxed{{{{18}}}} or 20",  # after a box whose braces nest deeper than two
        "She sells either 18 or 20 eggs every 2 days.",
        "I think it's 18 or 20\nThanks",  # the last number's own line, not the last line
        "9 or 18",
    ],
)
def test_an_answer_offered_with_an_alternative_is_a_hedge(text: str) -> None:
    assert answers.candidate(text) == (None, "hedge")


# -- rule 4: the last number ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She has 18 apples.", 18.0),
        ("7 apples", 7.0),  # a number at the very start
        # a number ending the line before is no alternative to the last one
        ("Total = 4 + 5\n9", 9.0),
        ("Janet's count:\nTotal = 4 + 5\n9", 9.0),
        ("Either way, 2 bags cost $18.", 18.0),  # "either" without an alternative
    ],
)
def test_the_last_number(text: str, expected: float) -> None:
    assert answers.candidate(text) == (expected, "last_number")


# -- boxes ---------------------------------------------------------------------------------------


def test_boxes_whose_braces_nest_deeper_than_two_keep_their_text_after_them() -> None:
    assert answers.boxed("\\boxed{{{{1}}}} or 2") == [("{{{1}}}", " or 2")]
    assert answers.boxed("\\boxed{{{{1}}}} and \\boxed{2}") == [("{{{1}}}", " and "), ("2", "")]
    assert answers.boxed("\\boxed{{{{1}}}}\\boxed{2}") == [("{{{1}}}", ""), ("2", "")]


def test_a_box_of_more_than_2000_characters_is_no_answer_whatever_it_ends_with() -> None:
    assert answers.boxed("\\boxed{" + "1 " * 1000 + "\\frac{1}{2}}") == []
    assert answers.boxed("\\boxed{" + "1" * 1999 + "}") == [("1" * 1999, "")]


# -- the part of a long response that is read ---------------------------------------------------


def test_a_response_of_exactly_max_answer_chars_is_read_whole() -> None:
    text = "word " * (answers.MAX_ANSWER_CHARS // 5)
    assert len(text) == answers.MAX_ANSWER_CHARS
    assert answers.answer_part(text) == text


def test_a_longer_response_is_read_from_the_first_blank_after_the_cut() -> None:
    text = "word " * 1800  # 9,000 characters: the cut falls on the "w" of a word
    cut = len(text) - answers.MAX_ANSWER_CHARS
    assert text[cut : cut + 5] == "word "
    assert answers.answer_part(text) == text[cut + 5 :]


def test_without_a_blank_near_the_cut_the_last_max_answer_chars_are_read() -> None:
    text = "a " + "7" * 9000 + " end"
    assert answers.answer_part(text) == text[-answers.MAX_ANSWER_CHARS :]


# -- the reward -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gsm8k() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield load_reward(monkeypatch, GRADERS / "gsm8k.json")


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [
        ("FINAL ANSWER: 18\nThat is 2 more than 16", "18", 1.0),
        ("Answer: 18\nAnswer: 20\nFinal answer: 18", "18", 0.0),
        ("The answer is 8 (or 9).", "8", 0.0),
        ("The answer is between 18 and 20 dollars.\nSo I pick 20.", "20", 0.0),
        ("Janet's count:\nTotal = 4 + 5\n9", "9", 1.0),
        ("Answers: 1, 2, <<2+1=3>>3, 4, 5, 6, 7, 8\n#### 8", "8", 0.0),
    ],
)
def test_the_reward_follows_the_rules(
    gsm8k: Any, response: str, reference: str, expected: float
) -> None:
    assert scores(gsm8k.handler([rollout("s", response, reference)], None)) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a LaTeX command around the answer leaves a blank before the closing "$"
        ("The answer is $\\mathbf{18}$ or 20.", (None, "hedge")),
        ("The answer is $\\textbf{18}$ or $20$.", (None, "hedge")),
        ("The answer is $\\mathbf{18}$.", (18.0, "marker")),
        # a second marker on the same line is read, as on a line of its own
        ("The answer is 18. Final answer: 20.", (None, "conflict")),
        ("The answer is 18. The answer is 20.", (None, "conflict")),
        ("The answer is 18. Final answer: 18.", (18.0, "marker")),
        ("The answer is 18, which answers the question.", (18.0, "marker")),
    ],
)
def test_hedges_and_conflicts_found_since_mutation_testing(
    text: str, expected: tuple[float | None, str]
) -> None:
    # Both once scored 1.0 against a reference of 18 (found by make mutation's survivors).
    assert answers.candidate(text) == expected
