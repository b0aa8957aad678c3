"""The Bedrock grader contract (reference §2), end to end through ``handler()``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lambda_loader import LambdaContext
from tests.reward_support import (
    FIXTURES,
    GRADERS,
    check_contract,
    emf_records,
    fixture,
    load_reward,
    log_records,
    rollout,
    rollouts,
    scores,
)

SHAPES = sorted(
    path.name for path in FIXTURES.glob("*.json") if path.name.startswith(("shape_", "malformed_"))
)


@pytest.fixture
def gsm8k(monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_reward(monkeypatch, GRADERS / "gsm8k.json", environment="dev")


def test_every_documented_shape_is_a_fixture() -> None:
    assert len(SHAPES) >= 7


@pytest.mark.parametrize("name", SHAPES)
def test_event_shapes(name: str, gsm8k: Any, capsys: pytest.CaptureFixture[str]) -> None:
    data = fixture(name)
    outputs = gsm8k.handler(data["event"], LambdaContext())
    check_contract(rollouts(data["event"]), outputs)
    assert scores(outputs) == data["expected_scores"]
    flagged = [
        any(metric["name"] == "grader_error" for metric in output["metrics_list"])
        for output in outputs
    ]
    assert flagged == data["expected_errors"]
    for output in outputs:
        reward = output["metrics_list"][0]
        score = output["aggregate_reward_score"]
        assert reward == {"name": "gsm8k", "value": score, "type": "Reward"}


def test_malformed_samples_are_logged_by_id_without_the_response(
    gsm8k: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "Natalia's secret working 31337"
    event = [
        rollout("no-ref", f"{secret}\n#### 72"),
        rollout("fine", f"{secret}\n#### 72", {"final_answer": "72"}),
        {"id": "no-messages"},
    ]
    outputs = gsm8k.handler(event, LambdaContext())
    check_contract(event, outputs)
    assert scores(outputs) == [0.0, 1.0, 0.0]
    printed = capsys.readouterr().out
    warnings = [record for record in log_records(printed) if record["level"] == "WARNING"]
    assert [record["sample_id"] for record in warnings] == ["no-ref", "no-messages"]
    assert "no-ref" in warnings[0]["message"]
    assert "reference_answer" in warnings[0]["reason"]
    assert "messages" in warnings[1]["reason"]
    assert secret not in printed, "response text is never logged at the default level"


def test_the_request_id_is_on_every_log_line(
    gsm8k: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    gsm8k.handler([{"id": "broken"}], LambdaContext(request_id="abc-123"))
    out = capsys.readouterr().out
    warnings = [r for r in log_records(out) if r["level"] == "WARNING"]
    assert warnings
    assert warnings[0]["request_id"] == "abc-123"


def test_the_envelope_and_the_single_object_are_fixtures() -> None:
    shapes = {type(fixture(name)["event"]).__name__ for name in SHAPES}
    assert shapes == {"list", "dict"}
    assert any("trajectories" in fixture(name)["event"] for name in SHAPES)


@pytest.mark.parametrize("event", ["[]", None, 42, 1.5, True])
def test_only_an_event_that_is_neither_array_nor_object_fails(gsm8k: Any, event: Any) -> None:
    with pytest.raises(TypeError, match="must be a JSON array of rollouts, an object"):
        gsm8k.handler(event, LambdaContext())


@pytest.mark.parametrize(
    "event",
    [{"id": "1"}, {"rollouts": []}, {"trajectories": "not a list", "id": "t"}],
)
def test_an_object_that_is_no_rollout_scores_zero_as_one_sample(gsm8k: Any, event: Any) -> None:
    outputs = gsm8k.handler(event, LambdaContext())
    check_contract([event], outputs)
    assert scores(outputs) == [0.0]
    error = {"name": "grader_error", "value": 1.0, "type": "Metric"}
    assert outputs[0]["metrics_list"][-1] == error


def test_an_empty_trajectories_envelope_is_an_empty_batch(gsm8k: Any) -> None:
    assert gsm8k.handler({"trajectories": []}, LambdaContext()) == []


def test_an_empty_batch_is_answered_with_an_empty_list(
    gsm8k: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gsm8k.handler([], LambdaContext()) == []
    (record,) = [r for r in emf_records(capsys.readouterr().out) if "Samples" in r]
    assert record["Samples"] == [0.0]
    assert "RewardMean" not in record


def test_ids_are_echoed_verbatim_in_order_even_when_repeated(gsm8k: Any) -> None:
    event = [
        rollout("b", "#### 2", "2"),
        rollout("a", "#### 1", "1"),
        rollout("b", "#### 3", "2"),
        {**rollout("x", "#### 5", "5"), "id": 17},
    ]
    outputs = gsm8k.handler(event, LambdaContext())
    check_contract(event, outputs)
    assert [output["id"] for output in outputs] == ["b", "a", "b", 17]
    assert scores(outputs) == [1.0, 1.0, 0.0, 1.0]


def test_works_without_a_lambda_context(gsm8k: Any) -> None:
    outputs = gsm8k.handler([rollout("1", "#### 4", "4")], None)
    assert scores(outputs) == [1.0]


def test_the_response_is_strict_json_after_a_round_trip(gsm8k: Any) -> None:
    data = fixture("malformed_samples.json")
    outputs = gsm8k.handler(json.loads(json.dumps(data["event"])), LambdaContext())
    assert json.loads(json.dumps(outputs, allow_nan=False)) == outputs


def test_deadline_leaves_a_margin(gsm8k: Any) -> None:
    import time

    deadline = gsm8k.deadline_from(LambdaContext(remaining_ms=10_000))
    left = deadline - time.monotonic()
    assert 8.0 < left < 8.6
    short = gsm8k.deadline_from(LambdaContext(remaining_ms=1_000)) - time.monotonic()
    assert 0.7 < short < 0.85
    assert gsm8k.deadline_from(None) is None
