"""The math_answer rules of the issue, each with cases (graded through ``handler()``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.reward_support import GRADERS, load_reward, reward_module, rollout, scores


@pytest.fixture(scope="module")
def grade() -> Any:
    with pytest.MonkeyPatch.context() as monkeypatch:
        module = load_reward(monkeypatch, GRADERS / "gsm8k.json")

    def run(response: str, reference: Any) -> float:
        score: float = scores(module.handler([rollout("s", response, reference)], None))[0]
        return score

    return run


WORKING = "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n"


@pytest.mark.parametrize(
    "response",
    [
        f"{WORKING}#### 18",
        f"{WORKING}The answer is 18.",
        f"{WORKING}the answer is: 18",
        f"{WORKING}Answer: 18",
        f"{WORKING}Final Answer: 18 dollars",
        f"{WORKING}**Final answer:** 18",
        f"{WORKING}$\\boxed{{18}}$",
        f"{WORKING}<answer>18</answer>",
        "<answer>\n18\n</answer>",
        f"{WORKING}The answer is therefore 18.",
    ],
)
def test_every_marker_form_is_read(grade: Any, response: str) -> None:
    assert grade(response, "18") == 1.0


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        ("I first thought 20, then 25.\n#### 18", "18"),
        ("#### 18\nCheck: 9 eggs at $2 is right; she keeps 3 and bakes 4.", "18"),
        ("The answer is 18. (She keeps 3 eggs and uses 4.)", "18"),
        ("\\boxed{18}\nThat took 5 steps and 2 checks.", "18"),
    ],
)
def test_an_explicit_marker_wins_over_stray_numbers(
    grade: Any, response: str, reference: str
) -> None:
    assert grade(response, reference) == 1.0


def test_without_a_marker_the_last_number_counts(grade: Any) -> None:
    assert grade(f"{WORKING}So she makes 18 dollars a day.", "18") == 1.0
    assert grade("She has 18 eggs and sells them for 20 cents.", "18") == 0.0


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        ("#### 1,234", "1234"),
        ("#### 1234", "1,234"),
        ("The answer is $1,234.", "1234"),
        ("#### 18.0", "18"),
        ("#### 18.00", "18"),
        ("#### 18", "18.00"),
        ("#### 18 dollars", "18"),
        ("#### 18 eggs per day", "18"),
        ("The answer is **18**.", "18"),
        ("Answer: __18__", "18"),
        ("#### *18*", "18"),
        ("The answer is €5.", "5"),
        ("The answer is 25%.", "25"),
        ("The answer is \\boxed{\\$18}.", "18"),
        ("$\\boxed{18\\text{ eggs}}$", "18"),
        ("$\\boxed{\\frac{1}{2}}$", "0.5"),
        ("$\\boxed{1{,}000}$", "1000"),
        ("The answer is 3/4.", "0.75"),
        ("#### 2,520,000", "2520000"),
        ("#### -5", "-5"),
        ("The temperature dropped to -12 degrees.", "-12"),
        ("#### 0.5", ".5"),
        ("The answer is 5 + 3 = 8 apples.", "8"),
    ],
)
def test_numbers_normalize(grade: Any, response: str, reference: str) -> None:
    assert grade(response, reference) == 1.0


@pytest.mark.parametrize(
    "response",
    [
        "The answer is 18 or 20.",
        "It is either 18 or 20.",
        "The answer is between 18 and 20.",
        "Answer: 18-20",
        "Answer: 18 to 20 dollars",
        "Answer: 18 (or maybe 20)",
        "Answer: 18, 20",
        "#### 18 or 20",
        "#### 18\n#### 20",
        "The answer is 18.\n#### 20",
        "\\boxed{18} but the answer is 20",
        "<answer>18</answer> Final answer: 20",
        "So she makes 18 dollars or maybe 20 dollars.",
        "The answer is $\\boxed{18}$ or 20.",
        "\\boxed{18} or 20",
        "$\\boxed{18}$ or maybe $\\boxed{20}$",
        "**18** or 20",
        "The answer is **18** or 20.",
    ],
)
def test_two_different_final_answers_score_zero(grade: Any, response: str) -> None:
    assert grade(response, "18") == 0.0
    assert grade(response, "20") == 0.0


@pytest.mark.parametrize(
    "response",
    ["#### 18\n#### 18", "The answer is 18.\n#### 18", "\\boxed{18}\n#### 18.00", "18 or 18"],
)
def test_markers_that_agree_are_one_answer(grade: Any, response: str) -> None:
    assert grade(response, "18") == 1.0


@pytest.mark.parametrize(
    "response",
    [
        "She makes 9 * 2 = $18 a day, but then pays 2.\n#### 16",
        "18 is what I computed first. The answer is 16.",
        "Janet makes $18.\nWait, the eggs cost $3.\nSo the answer is 27.",
    ],
)
def test_a_wrong_final_answer_scores_zero_even_with_the_right_number_in_the_working(
    grade: Any, response: str
) -> None:
    assert grade(response, "18") == 0.0


@pytest.mark.parametrize("response", ["", "   \n\t", "I don't know.", "The answer is unclear."])
def test_an_empty_or_numberless_response_scores_zero(grade: Any, response: str) -> None:
    assert grade(response, "18") == 0.0


@pytest.mark.parametrize(
    "response", ["#### 180", "#### 118", "#### 1800", "#### 18.5", "#### -18", "#### 18/2"]
)
def test_a_number_that_merely_contains_the_reference_scores_zero(grade: Any, response: str) -> None:
    assert grade(response, "18") == 0.0


@pytest.mark.parametrize(
    "response",
    [
        "The answer might be 14 15 16 17 18 19 20 21 22.",
        "Candidates: 16, 17, 18, 19, 20, 21, 22, 23.\n#### 18",
        "Possible answers: 18; 19; 20; 21; 22; 23; 24; 25",
        "12 or 14 or 16 or 18 or 20 or 22 or 24 or 26",
        " ".join(f"{n} + 1 = {n + 1}." for n in range(130)) + "\n#### 18",
    ],
)
def test_a_response_that_sprays_numbers_scores_zero(grade: Any, response: str) -> None:
    assert grade(response, "18") == 0.0


def test_tolerance_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    loose = load_reward(monkeypatch, {"type": "math_answer", "tolerance": 0.01})
    assert scores(loose.handler([rollout("1", "#### 3.333", "3.33")], None)) == [1.0]
    assert scores(loose.handler([rollout("1", "#### 3.35", "3.33")], None)) == [0.0]
    relative = load_reward(monkeypatch, {"type": "math_answer", "relative_tolerance": 0.01})
    assert scores(relative.handler([rollout("1", "#### 1005", "1000")], None)) == [1.0]
    assert scores(relative.handler([rollout("1", "#### 1011", "1000")], None)) == [0.0]
    strict = load_reward(monkeypatch, {"type": "math_answer"})
    assert scores(strict.handler([rollout("1", "#### 3.333", "3.33")], None)) == [0.0]


def test_spray_limits_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = "Days 1, 2, 3, 4, 5, 6, 7, 8, 9 and 10 are covered.\n#### 18"
    default = load_reward(monkeypatch, {"type": "math_answer"})
    assert scores(default.handler([rollout("1", listing, "18")], None)) == [0.0]
    relaxed = load_reward(monkeypatch, {"type": "math_answer", "max_number_run": 20})
    assert scores(relaxed.handler([rollout("1", listing, "18")], None)) == [1.0]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("72", 72.0),
        (72, 72.0),
        (7.5, 7.5),
        ("$1,234", 1234.0),
        ({"final_answer": "72"}, 72.0),
        ({"answer": 72}, 72.0),
        ({"text": "72"}, 72.0),
        ({"value": "72"}, 72.0),
        ({"text": "Natalia sold 48+24 = 72 clips.\n#### 72"}, 72.0),
        ("She sold 48 in April and 24 in May, 72 in all.", 72.0),
    ],
)
def test_reference_shapes(reference: Any, expected: float) -> None:
    math_answer = reward_module("grading.graders.math_answer")
    assert math_answer.reference_value(reference) == expected


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        (None, "no reference_answer"),
        (True, "boolean"),
        ({"label": "72"}, "none of final_answer"),
        ("seventy-two", "no single number"),
        ([72], "list"),
        (float("nan"), "not a finite number"),
    ],
)
def test_unusable_references_are_sample_errors(reference: Any, problem: str) -> None:
    math_answer = reward_module("grading.graders.math_answer")
    errors = reward_module("grading.errors")
    with pytest.raises(errors.SampleError, match=problem):
        math_answer.reference_value(reference)


def test_a_reference_template(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_reward(
        monkeypatch, {"type": "math_answer", "reference": "{{ item.solution.total }}"}
    )
    event = [
        rollout("1", "#### 9", solution={"total": 9}),
        rollout("2", "#### 9", solution={"count": 9}),
    ]
    outputs = module.handler(event, None)
    assert scores(outputs) == [1.0, 0.0]
    assert outputs[1]["metrics_list"][-1]["name"] == "grader_error"
