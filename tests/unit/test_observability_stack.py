"""Observability in every environment's stack, wired to that stack's own reward function."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import resources_of, role_statements
from tests.unit.test_observability import flatten

ENVIRONMENTS = ["dev", "staging", "prod", "nova-dev"]


def _reward_function_id(template: Any) -> str:
    [function_id] = [
        k for k in resources_of(template, "AWS::Lambda::Function") if k.startswith("RewardFunction")
    ]
    return function_id


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_has_topic_rules_collector_dashboard_and_alarms(
    templates: dict[str, Any], env: str
) -> None:
    template = templates[env]
    [topic_id] = resources_of(template, "AWS::SNS::Topic")
    topic = resources_of(template, "AWS::SNS::Topic")[topic_id]["Properties"]
    assert "KmsMasterKeyId" in topic

    rules = [r["Properties"] for r in resources_of(template, "AWS::Events::Rule").values()]
    assert any(r.get("ScheduleExpression") == "rate(5 minutes)" for r in rules)
    # the notification rule (native environments also have the evaluation's trigger rule)
    [job_state] = [
        r for r in rules if "EventPattern" in r and r["Targets"][0]["Arn"] == {"Ref": topic_id}
    ]
    assert job_state["EventPattern"]["source"] == ["aws.bedrock"]
    assert job_state["EventPattern"]["detail-type"] == ["Model Customization Job State Change"]
    assert job_state["Targets"][0]["Arn"] == {"Ref": topic_id}

    alarms = [a["Properties"] for a in resources_of(template, "AWS::CloudWatch::Alarm").values()]
    assert len(alarms) >= 4
    assert all(a["AlarmActions"] == [{"Ref": topic_id}] for a in alarms)

    [dashboard] = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"bedrock-rft-{env}"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_reward_lambda_panels_and_alarms_watch_this_stacks_reward_function(
    templates: dict[str, Any], env: str
) -> None:
    template = templates[env]
    function_id = _reward_function_id(template)
    [dashboard] = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    # the function name enters the body as a Ref to the stack's own reward function
    refs = [p for p in body["Fn::Join"][1] if isinstance(p, dict)]
    assert {"Ref": function_id} in refs
    widgets = json.loads(flatten(body))["widgets"]
    [duration] = [
        w for w in widgets if w["properties"].get("title") == "Reward Lambda: duration (ms)"
    ]
    timeouts = [a["value"] for a in duration["properties"]["annotations"]["horizontal"]]
    assert 300_000 in timeouts

    errors = next(
        a["Properties"]
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == f"bedrock-rft-{env}-RewardLambdaErrors"
    )
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]


@pytest.mark.parametrize("env", ["dev", "nova-dev"])
def test_outputs_name_the_dashboard_topic_and_collector(
    templates: dict[str, Any], env: str
) -> None:
    outputs = templates[env].to_json()["Outputs"]
    assert {"DashboardUrl", "NotificationTopicArn", "MetricsCollectorName"} <= set(outputs)
    url = flatten(outputs["DashboardUrl"]["Value"])
    assert url.endswith(f"#dashboards:name=bedrock-rft-{env}")


@pytest.mark.parametrize(("env", "policy"), [("dev", "Delete"), ("prod", "Retain")])
def test_topic_key_follows_the_removal_policy(
    templates: dict[str, Any], env: str, policy: str
) -> None:
    keys = resources_of(templates[env], "AWS::KMS::Key")
    [topic_key] = [v for k, v in keys.items() if k.startswith("ObservabilityTopicKey")]
    assert topic_key["DeletionPolicy"] == policy


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_has_the_reconciler_its_alarm_and_only_its_grants(
    templates: dict[str, Any], env: str
) -> None:
    template = templates[env]
    [topic_id] = resources_of(template, "AWS::SNS::Topic")
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
    }
    orphaned = alarms[f"bedrock-rft-{env}-OrphanedJobs"]
    assert (orphaned["MetricName"], orphaned["Threshold"]) == ("OrphanedJobs", 0)
    assert orphaned["ComparisonOperator"] == "GreaterThanThreshold"
    assert orphaned["AlarmActions"] == [{"Ref": topic_id}]
    assert alarms[f"bedrock-rft-{env}-ReconcilerFailing"]["AlarmActions"] == [{"Ref": topic_id}]

    functions = resources_of(template, "AWS::Lambda::Function")
    [function] = [
        f for f in functions.values() if f["Properties"]["Handler"] == "reconcile.handler"
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["RFT_ENVIRONMENT"] == env
    assert variables["JOB_NAME_PREFIX"] == f"rft-{env}"
    assert variables["ORPHAN_ACTION"] in ("alarm", "stop", "alarm_then_stop")

    statements = role_statements(template, "ObservabilityReconcilerRole")
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    backend = variables["RFT_BACKEND"]
    if backend == "bedrock":
        stop = next(s for s in statements if s.get("Sid") == "StopOrphanedJobs")
        assert "model-customization-job/*" in json.dumps(stop["Resource"])
        expected = {"bedrock:ListModelCustomizationJobs", "bedrock:StopModelCustomizationJob"}
    else:
        expected = {
            "bedrock-mantle:ListFiles",
            "bedrock-mantle:ListFineTuningJobs",
            "bedrock-mantle:GetFineTuningJob",
            "bedrock-mantle:CancelFineTuningJob",
            "bedrock-mantle:CallWithBearerToken",
        }
    assert {a for a in actions if a.startswith("bedrock")} == expected
