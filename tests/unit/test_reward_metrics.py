"""Per-batch EMF metrics: namespace, the two low-cardinality dimensions, and the values."""

from __future__ import annotations

import pytest

from tests.lambda_loader import LambdaContext
from tests.reward_support import GRADERS, emf_records, load_reward, rollout


def test_batch_metrics(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    module = load_reward(monkeypatch, GRADERS / "gsm8k.json", environment="prod")
    event = [
        rollout("1", "#### 18", "18"),
        rollout("2", "#### 17", "18"),
        rollout("3", "#### 18", "18"),
        {"id": "4"},
    ]
    capsys.readouterr()
    module.handler(event, LambdaContext())
    (record,) = [r for r in emf_records(capsys.readouterr().out) if "Samples" in r]
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "BedrockRft/Grader"
    assert directive["Dimensions"] == [["Environment", "Grader"]]
    assert record["Environment"] == "prod"
    assert record["Grader"] == "gsm8k"
    assert "service" not in record
    units = {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
    assert units == {
        "Samples": "Count",
        "GraderErrors": "Count",
        "RewardMean": "None",
        "ZeroRewardShare": "None",
    }
    assert record["Samples"] == [4.0]
    assert record["GraderErrors"] == [1.0]
    assert record["RewardMean"] == [0.5]
    assert record["ZeroRewardShare"] == [0.5]


def test_the_namespace_follows_powertools_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_reward(monkeypatch, GRADERS / "gsm8k.json")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Custom/Space")
    capsys.readouterr()
    module.handler([rollout("1", "#### 1", "1")], None)
    (record,) = [r for r in emf_records(capsys.readouterr().out) if "Samples" in r]
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Custom/Space"


def test_metrics_can_be_switched_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_reward(monkeypatch, GRADERS / "gsm8k.json")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    capsys.readouterr()
    assert module.handler([rollout("1", "#### 1", "1")], None)[0]["aggregate_reward_score"] == 1.0
    assert emf_records(capsys.readouterr().out) == []
