"""The training-signal health measures on their own: groups, repetition, unparsed answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lambda_loader import SHARED_DATA
from tests.reward_support import GRADERS, reward_module, rollout

health = reward_module("grading.signal_health")
grading = reward_module("grading")
samples_module = reward_module("grading.samples")


def _sample(response: str, prompt: str = "q", reference: Any = "1") -> Any:
    return samples_module.parse_rollout(rollout("x", response, reference, prompt=prompt))


def _definition(name: str = "gsm8k.json") -> Any:
    return grading.load_definition(GRADERS / name)


def test_groups_are_formed_by_prompt_and_single_rollouts_do_not_count() -> None:
    batch = [
        _sample("#### 1", "p"),
        _sample("#### 2", "p"),
        _sample("#### 1", "q"),
        _sample("#### 1", "q"),
        _sample("#### 1", "q"),
        _sample("#### 1", "alone"),
        None,  # an unparsable rollout joins no group
    ]
    found = health.measure(batch, [1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0], _definition())
    assert found.prompt_groups == 2
    assert found.zero_variance_share == 0.5
    assert found.reward_std == pytest.approx((0.5 + 0.0) / 2)
    assert found.responses == 6


def test_the_same_prompt_with_another_reference_is_another_group() -> None:
    batch = [_sample("#### 1", "p", "1"), _sample("#### 1", "p", "2")]
    assert health.measure(batch, [1.0, 0.0], _definition()).prompt_groups == 0


def test_a_batch_without_groups_publishes_no_group_figures() -> None:
    found = health.measure([_sample("#### 1")], [1.0], _definition())
    assert found.zero_variance_share is None
    assert found.reward_std is None
    assert found.unparsed_share == 0.0


def test_real_gsm8k_solutions_are_not_repetitive_and_loops_are() -> None:
    rows = [
        json.loads(line)
        for line in (SHARED_DATA / "gsm8k" / "train.jsonl").read_text().splitlines()[:3000]
    ]
    solutions = [row["answer"] for row in rows]
    # long responses: six different worked solutions in a row
    long = [" ".join(solutions[i : i + 6]) for i in range(0, len(solutions), 6)]
    assert not any(health.repetitive(text) for text in solutions + long)
    looping = solutions[0] + " " + " ".join(["Therefore the total is 42 dollars."] * 60)
    block = solutions[1] + "\n" + "\n".join(solutions[2].splitlines() * 8)
    assert health.repetitive(looping)
    assert health.repetitive(block)
    assert not health.repetitive("ha " * 100)  # 300 bytes: too short to judge


def test_only_the_end_of_a_long_response_is_read() -> None:
    rows = (SHARED_DATA / "gsm8k" / "train.jsonl").read_text().splitlines()[:400]
    varied = " ".join(json.loads(line)["answer"] for line in rows)  # ~100 KB of real prose
    assert len(varied) > 100_000
    assert not health.repetitive(varied)
    assert health.repetitive(varied + " again" * 2000)  # ends in a loop
    assert not health.repetitive("again " * 2000 + varied)  # looped early, recovered


@pytest.mark.parametrize(
    ("response", "unparsed"),
    [
        ("", True),
        ("   \n", True),
        ("I do not know.", True),
        ("The answer is unclear.", True),
        ("#### 18", False),
        ("It is 18 or 20.", False),  # a hedge is an answer (a wrong one)
        ("So $x = \\pi$.", False),  # math without digits
        ("\\boxed{\\pi}", False),
        ("<<3+4=7>> so I cannot say.", True),  # calculator notes are not the answer
        ("<<3+4=7>> so 7.", False),
    ],
)
def test_unparsed_for_math_graders(response: str, unparsed: bool) -> None:
    assert health.unparsed(_sample(response), "math") is unparsed


def test_unparsed_for_json_and_other_graders() -> None:
    assert health.unparsed(_sample('{"total": 1}'), "json") is False
    assert health.unparsed(_sample('```json\n{"total": 1}\n```'), "json") is False
    assert health.unparsed(_sample("total: 1"), "json") is True
    assert health.unparsed(_sample("anything"), "text") is False
    assert health.unparsed(_sample(" "), "text") is True


def test_the_answer_kind_follows_the_definition() -> None:
    assert health._answer_kind(_definition()) == "math"
    assert health._answer_kind(_definition("invoice_extraction.json")) == "json"


def test_percentiles_are_nearest_rank_and_fixed_in_count() -> None:
    assert health.percentiles([5]) == [5] * 21
    values = list(range(1, 1001))
    points = health.percentiles(values)
    assert len(points) == 21
    assert (points[0], points[10], points[19], points[20]) == (1, 501, 950, 1000)
