"""Rollout samples and training-signal health as deployed, in every fixture environment: the
reward role's grant (the samples prefix only), the expiry, the dashboard row and the alarms;
and the switches that turn each off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from stacks.reward import RewardFunction, RolloutDestination
from tests.conftest import resources_of, role_statements, template_text
from tests.unit.test_observability import _alarms, _dashboard, build, environment

ENVIRONMENTS = ["dev", "staging", "prod", "nova-dev"]


def _reward_variables(template: Any) -> dict[str, Any]:
    [function] = [
        f
        for k, f in resources_of(template, "AWS::Lambda::Function").items()
        if k.startswith("RewardFunction")
    ]
    return dict(function["Properties"]["Environment"]["Variables"])


def _artifacts_bucket(template: Any) -> tuple[str, dict[str, Any]]:
    [(bucket_id, bucket)] = [
        (k, v)
        for k, v in resources_of(template, "AWS::S3::Bucket").items()
        if k.startswith("StagingArtifacts")
    ]
    return bucket_id, bucket["Properties"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_reward_role_may_put_samples_under_its_prefix_and_nowhere_else(
    templates: dict[str, Any], env: str
) -> None:
    template = templates[env]
    bucket_id, _ = _artifacts_bucket(template)
    variables = _reward_variables(template)
    assert template_text(variables["ROLLOUT_SAMPLES_URI"]) == f"s3://<{bucket_id}>/rollouts/{env}"
    assert variables["ROLLOUT_SAMPLE_RATE"] == "0.02"
    statements = role_statements(template, "RewardRole")
    s3_statements = [s for s in statements if any(a.startswith("s3:") for a in _list(s["Action"]))]
    assert len(s3_statements) == 1
    [put] = s3_statements
    assert put["Action"] == "s3:PutObject"
    assert template_text(put["Resource"]) == f"<{bucket_id}.Arn>/rollouts/{env}/*"
    [kms_statement] = [s for s in statements if s.get("Sid") == "EncryptRolloutSamples"]
    assert kms_statement["Action"] == "kms:GenerateDataKey"
    assert kms_statement["Condition"]["StringEquals"] == {
        "kms:ViaService": f"s3.{'us-east-1' if env == 'nova-dev' else 'us-west-2'}.amazonaws.com"
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_samples_expire(templates: dict[str, Any], env: str) -> None:
    _, bucket = _artifacts_bucket(templates[env])
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    samples = rules["expire-rollout-samples"]
    assert samples["Prefix"] == "rollouts/"
    assert samples["ExpirationInDays"] == 30
    assert samples["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert samples["Status"] == "Enabled"
    assert (
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        == "aws:kms"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_signal_alarms_watch_this_grader_and_notify_the_topic(
    templates: dict[str, Any], env: str
) -> None:
    template = templates[env]
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
    }
    [topic_id] = [k for k in resources_of(template, "AWS::SNS::Topic")]
    dimensions = [
        {"Name": "Environment", "Value": env},
        {"Name": "Grader", "Value": "gsm8k"},
    ]
    hacking = alarms[f"bedrock-rft-{env}-RewardHacking"]
    assert hacking["AlarmActions"] == [{"Ref": topic_id}]
    assert (hacking["EvaluationPeriods"], hacking["DatapointsToAlarm"]) == (3, 3)
    assert hacking["TreatMissingData"] == "notBreaching"
    [expression] = [m for m in hacking["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True
    assert "DIFF(reward) > 0" in expression["Expression"]
    assert "DIFF(unparsed) > 0 AND unparsed >= 0.05" in expression["Expression"]
    assert "DIFF(repetition) > 0 AND repetition >= 0.05" in expression["Expression"]
    watched = {m["Id"]: m["MetricStat"] for m in hacking["Metrics"] if "MetricStat" in m}
    assert {k: v["Metric"]["MetricName"] for k, v in watched.items()} == {
        "reward": "RewardMean",
        "unparsed": "UnparsedShare",
        "repetition": "RepetitionShare",
    }
    for stat in watched.values():
        assert stat["Metric"]["Namespace"] == "BedrockRft/Grader"
        assert stat["Metric"]["Dimensions"] == dimensions
        assert (stat["Period"], stat["Stat"]) == (900, "Average")
    flat = alarms[f"bedrock-rft-{env}-NoLearningSignal"]
    assert flat["AlarmActions"] == [{"Ref": topic_id}]
    assert (flat["MetricName"], flat["Namespace"], flat["Dimensions"]) == (
        "ZeroVarianceShare",
        "BedrockRft/Grader",
        dimensions,
    )
    assert (flat["Threshold"], flat["ComparisonOperator"]) == (0.8, "GreaterThanThreshold")
    assert (flat["EvaluationPeriods"], flat["Period"]) == (6, 300)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_dashboard_has_the_learning_row(templates: dict[str, Any], env: str) -> None:
    [dashboard] = resources_of(templates[env], "AWS::CloudWatch::Dashboard").values()
    body = template_text(dashboard["Properties"]["DashboardBody"])
    widgets = json.loads(body)["widgets"]
    titles = [w["properties"].get("title", "") for w in widgets]
    [row_start] = [i for i, t in enumerate(titles) if t.startswith("What the model is learning")]
    row = widgets[row_start : row_start + 4]
    assert len({w["y"] for w in row}) == 1, "one row"
    queries = json.dumps([w["properties"]["metrics"] for w in row])
    for metric in ("RewardMean", "ZeroVarianceShare", "RewardStd", "UnparsedShare"):
        assert metric in queries
    assert "RepetitionShare" in queries and "ResponseChars" in queries
    assert "'p95'" in queries and "'p50'" in queries
    assert "BedrockRft/Training" in queries  # the job's own reward curve beside them


def test_thresholds_come_from_config_and_each_alarm_switches_off(tmp_path: Path) -> None:
    tuned = environment(
        "prod",
        observability={
            "reward_hacking_period_minutes": 30,
            "reward_hacking_periods": 4,
            "reward_hacking_share_floor": 0.1,
            "zero_variance_ceiling": 0.9,
            "zero_variance_periods": 12,
        },
    )
    _, template = build(tmp_path / "tuned", tuned, grader_name="math")
    alarms = _alarms(template)
    hacking = alarms["bedrock-rft-prod-RewardHacking"]
    assert (hacking["EvaluationPeriods"], hacking["DatapointsToAlarm"]) == (4, 4)
    [expression] = [m for m in hacking["Metrics"] if "Expression" in m]
    assert "unparsed >= 0.1" in expression["Expression"]
    assert {m["MetricStat"]["Period"] for m in hacking["Metrics"] if "MetricStat" in m} == {1800}
    flat = alarms["bedrock-rft-prod-NoLearningSignal"]
    assert (flat["Threshold"], flat["EvaluationPeriods"]) == (0.9, 12)
    assert {"Name": "Grader", "Value": "math"} in flat["Dimensions"]

    off = environment(
        "prod", observability={"reward_hacking_alarm": False, "zero_variance_alarm": False}
    )
    _, template = build(tmp_path / "off", off, grader_name="math")
    names = set(_alarms(template))
    assert "bedrock-rft-prod-RewardHacking" not in names
    assert "bedrock-rft-prod-NoLearningSignal" not in names
    assert "bedrock-rft-prod-EntropyCollapse" in names
    # the row stays (the metrics are published either way), without the alarm lines
    widgets = _dashboard(template)["widgets"]
    [signal] = [w for w in widgets if w["properties"].get("title", "").startswith("Learning sig")]
    assert "annotations" not in signal["properties"] or not signal["properties"]["annotations"].get(
        "horizontal"
    )


@pytest.mark.parametrize(
    ("rate", "granted"), [(0.0, False), (0.5, True), (1.0, True)], ids=["off", "half", "all"]
)
def test_rate_zero_leaves_the_function_without_destination_or_grant(
    tmp_path: Path, project_root: Path, rate: float, granted: bool
) -> None:
    config = environment("dev", observability={"rollout_sample_rate": rate})
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(
        app, "Reward", env=cdk.Environment(account="123456789012", region="us-west-2")
    )
    bucket = s3.Bucket(stack, "Artifacts")
    RewardFunction(
        stack,
        "Reward",
        config=config,
        key=kms.Key(stack, "Key"),
        project_root=project_root,
        rollouts=RolloutDestination(bucket, "rollouts/dev"),
    )
    template = Template.from_stack(stack)
    variables = _reward_variables(template)
    assert ("ROLLOUT_SAMPLES_URI" in variables) is granted
    if granted:
        assert variables["ROLLOUT_SAMPLE_RATE"] == f"{rate:g}"
    actions = {
        a
        for policy in resources_of(template, "AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        for a in _list(s["Action"])
    }
    assert ("s3:PutObject" in actions) is granted


def _list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]
