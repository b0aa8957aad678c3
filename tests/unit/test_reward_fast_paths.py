"""The shortcuts of the rule graders' hot path give the rules' answers (through ``handler()``):
the spray scan over chunks of a batch, only on correct answers; ``\\boxed`` after a phrase; the
last number read from the end; plain integer references; debug lines only at debug level."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.reward_support import (
    GRADERS,
    check_contract,
    load_reward,
    log_records,
    reward_module,
    rollout,
    scores,
)

WORKING = "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n"
LISTING = "Candidates: 16, 17, 18, 19, 20, 21, 22, 23.\n#### 18"
COUNTING = " ".join(f"{n} + 1 = {n + 1}." for n in range(130)) + "\n#### 18"


@pytest.fixture(scope="module")
def gsm8k() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield load_reward(monkeypatch, GRADERS / "gsm8k.json")


def grade(module: Any, response: str, reference: Any = "18") -> float:
    score: float = scores(module.handler([rollout("s", response, reference)], None))[0]
    return score


def test_the_spray_rule_holds_across_a_batch_of_several_scan_chunks(gsm8k: Any) -> None:
    sprayers = {0: LISTING, 127: COUNTING, 128: LISTING, 255: COUNTING, 299: LISTING}
    event = [
        rollout(f"s{index}", sprayers.get(index, f"{WORKING}#### 18"), "18") for index in range(300)
    ]
    outputs = gsm8k.handler(event, None)
    check_contract(event, outputs)
    assert [index for index, score in enumerate(scores(outputs)) if score == 0.0] == sorted(
        sprayers
    )


def test_a_wrong_answer_scores_zero_whether_or_not_it_sprays(gsm8k: Any) -> None:
    assert grade(gsm8k, LISTING, "20") == 0.0
    assert grade(gsm8k, f"{WORKING}#### 18", "20") == 0.0


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [
        (f"{WORKING}So the final answer is $\\boxed{{18}}$.", "18", 1.0),
        (f"{WORKING}The answer is **$\\boxed{{1,800}}$**", "1800", 1.0),
        (f"{WORKING}The answer is $\\boxed{{-18}}$ .", "-18", 1.0),
        (f"{WORKING}The answer is \\boxed{{18}} or 20.", "18", 0.0),
        (f"{WORKING}The answer is $\\boxed{{18}}$.\n#### 20", "18", 0.0),
        ("$\\boxed{18}$ first, but the answer is $\\boxed{20}$.", "20", 0.0),
        (f"{WORKING}The answer is $\\boxed{{\\frac{{1}}{{2}}}}$.", "0.5", 1.0),
        (f"{WORKING}The answer is $\\boxed{{180}}$.", "18", 0.0),
    ],
)
def test_a_boxed_number_after_a_phrase(
    gsm8k: Any, response: str, reference: str, expected: float
) -> None:
    assert grade(gsm8k, response, reference) == expected


# LaTeX math near the end (x^2, \\sqrt) sends a plain-number reference's response to the typed
# comparison, unless its markers are all just a number: then both ways agree, and the numeric
# one is taken.
LATEX_WORKING = "So $x^2 = 324$ and $x = \\sqrt{324}$.\n"


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [
        (f"{LATEX_WORKING}#### 18", "18", 1.0),
        (f"{LATEX_WORKING}The answer is $\\boxed{{18}}$.", "18", 1.0),
        (f"{LATEX_WORKING}The answer is $\\boxed{{18}}$.", "324", 0.0),
        (f"{LATEX_WORKING}The answer is $\\boxed{{18}}$ or $\\boxed{{20}}$.", "18", 0.0),
        (f"{LATEX_WORKING}#### 18\nThe answer is 20.", "18", 0.0),
        (f"{LATEX_WORKING}The answer is $\\boxed{{\\sqrt{{324}}}}$.", "18", 1.0),
        (f"{LATEX_WORKING}The answer is $\\boxed{{\\sqrt{{18}}}}$.", "18", 0.0),
        (f"{LATEX_WORKING}The answer is $\\boxed{{2^{{4}}+2}}$.", "18", 1.0),
    ],
)
def test_a_plain_number_marker_beside_latex_math(
    gsm8k: Any, response: str, reference: str, expected: float
) -> None:
    assert grade(gsm8k, response, reference) == expected


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [
        ("GPT4 says the total is 18 dollars.", "18", 1.0),
        ("In all, 1,234,567 grains.", "1234567", 1.0),
        ("She pays 12.50 in total.", "12.5", 1.0),
        ("The temperature falls to \u221212 degrees.", "-12", 1.0),
        ("Each share is 3/4", "0.75", 1.0),
        ("It came to 1,23", "1", 1.0),  # "1,23" is no number: "1" is the last token
        ("The count is 5 and then 18-20", "18", 0.0),
        ("Between 18 and 20 eggs.", "18", 0.0),
        ("The v2 plan.", "2", 0.0),  # "v2" is not a number
    ],
)
def test_the_last_number_found_from_the_end(
    gsm8k: Any, response: str, reference: str, expected: float
) -> None:
    assert grade(gsm8k, response, reference) == expected


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ({"final_answer": "0018"}, 1.0),
        ({"final_answer": "18"}, 1.0),
        ({"final_answer": "18.0"}, 1.0),
        ({"final_answer": "180"}, 0.0),
    ],
)
def test_plain_integer_references(gsm8k: Any, reference: Any, expected: float) -> None:
    assert grade(gsm8k, "#### 18", reference) == expected


@pytest.mark.parametrize("reference", ["\u0661\u0668", "\u00b2"])
def test_digits_that_are_not_ascii_are_no_reference_number(gsm8k: Any, reference: str) -> None:
    outputs = gsm8k.handler([rollout("s", "#### 18", {"final_answer": reference})], None)
    assert scores(outputs) == [0.0]
    # no number; Math-Verify reads at most its text, and preflight reports it with its line
    registry = reward_module("grading")
    grader = registry.parse_definition(
        {"type": "math_answer", "name": "gsm8k"}, default_name="gsm8k"
    ).grader
    assert grader.reference_problem({"reference_answer": {"final_answer": reference}})


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO])
def test_no_final_answer_is_a_debug_line_only_at_debug_level(
    gsm8k: Any, capsys: pytest.CaptureFixture[str], level: int
) -> None:
    underlying = logging.getLogger("reward")
    before = underlying.level
    underlying.setLevel(level)
    try:
        capsys.readouterr()
        gsm8k.handler(
            [rollout("none", "I don't know.", "18"), rollout("list", LISTING, "18")], None
        )
        lines = [record["message"] for record in log_records(capsys.readouterr().out)]
    finally:
        underlying.setLevel(before)
    expected = [
        "sample 'none': no final answer (no_number)",
        "sample 'list': no final answer (spray)",
    ]
    assert lines == (expected if level == logging.DEBUG else [])
