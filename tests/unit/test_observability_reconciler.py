"""The orphaned-job reconciler construct in a bare stack: function, schedule, state, least
privilege per backend, and its alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from tests.unit.test_observability import _alarms, _dashboard, build, environment, only


@pytest.fixture(scope="module")
def openai_dev(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.Stack, Template]:
    return build(tmp_path_factory.mktemp("dev"), environment("dev"))


@pytest.fixture(scope="module")
def nova(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.Stack, Template]:
    return build(tmp_path_factory.mktemp("nova"), environment("nova-dev"))


def _all_statements(template: Template) -> list[dict[str, Any]]:
    policy = only(template, "AWS::IAM::Policy", "ReconcilerRole")["Properties"]
    return list(policy["PolicyDocument"]["Statement"])


def _statements(template: Template) -> dict[str, dict[str, Any]]:
    """The statements by Sid (those CDK's grants add have none: under their position)."""
    return {s.get("Sid", str(n)): s for n, s in enumerate(_all_statements(template))}


def _actions(statements: dict[str, dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements.values():
        action = statement["Action"]
        found.update([action] if isinstance(action, str) else action)
    return found


def _text(value: Any) -> str:
    """A template value with its references, as text (to compare ARNs)."""
    return json.dumps(value, sort_keys=True)


def test_function_runs_the_reconciler_entry_with_the_environments_settings(
    openai_dev: tuple[cdk.Stack, Template],
) -> None:
    _, template = openai_dev
    props = only(template, "AWS::Lambda::Function", "ReconcilerFunction")["Properties"]
    assert props["Handler"] == "reconcile.handler"
    assert (props["Runtime"], props["Architectures"]) == ("python3.13", ["arm64"])
    variables = props["Environment"]["Variables"]
    assert {
        k: variables[k]
        for k in (
            "RFT_ENVIRONMENT",
            "RFT_BACKEND",
            "JOB_NAME_PREFIX",
            "JOB_PARAMETER",
            "ORPHANS_PARAMETER",
            "ORPHAN_ACTION",
            "ORPHAN_GRACE_MINUTES",
            "METRICS_NAMESPACE",
        )
    } == {
        "RFT_ENVIRONMENT": "dev",
        "RFT_BACKEND": "openai",
        "JOB_NAME_PREFIX": "rft-dev",
        "JOB_PARAMETER": "/bedrock-rft/dev/job",
        "ORPHANS_PARAMETER": "/bedrock-rft/dev/orphans",
        "ORPHAN_ACTION": "alarm_then_stop",
        "ORPHAN_GRACE_MINUTES": "60",
        "METRICS_NAMESPACE": "BedrockRft/Training",
    }
    assert variables["STACK_NAME"] == "Obs" and "TOPIC_ARN" in variables
    state = only(template, "AWS::SSM::Parameter", "ReconcilerState")["Properties"]
    assert (state["Name"], json.loads(state["Value"])) == ("/bedrock-rft/dev/orphans", {"jobs": {}})
    rule = only(template, "AWS::Events::Rule", "ReconcilerSchedule")["Properties"]
    assert rule["ScheduleExpression"] == "rate(15 minutes)"
    assert rule["Targets"][0]["RetryPolicy"] == {"MaximumRetryAttempts": 0}


def test_settings_come_from_job_orphans(tmp_path: Path) -> None:
    config = environment(
        "prod",
        job={"orphans": {"action": "stop", "grace_minutes": 90, "schedule_minutes": 30}},
    )
    _, template = build(tmp_path, config)
    variables = only(template, "AWS::Lambda::Function", "ReconcilerFunction")["Properties"][
        "Environment"
    ]["Variables"]
    assert (variables["ORPHAN_ACTION"], variables["ORPHAN_GRACE_MINUTES"]) == ("stop", "90")
    rule = only(template, "AWS::Events::Rule", "ReconcilerSchedule")["Properties"]
    assert rule["ScheduleExpression"] == "rate(30 minutes)"
    orphaned = _alarms(template)["bedrock-rft-prod-OrphanedJobs"]
    assert orphaned["Period"] == 1800
    assert "over 90 minutes" in orphaned["AlarmDescription"]


def test_retained_jobs_default_to_alarm_only(tmp_path: Path) -> None:
    retain = environment("dev", job={"on_delete": "retain"})
    assert retain.job.orphan_action == "alarm"
    explicit = environment("dev", job={"on_delete": "retain", "orphans": {"action": "stop"}})
    assert explicit.job.orphan_action == "stop"
    assert environment("dev").job.orphan_action == "alarm_then_stop"


def test_openai_grants_list_and_cancel_on_projects_only(
    openai_dev: tuple[cdk.Stack, Template],
) -> None:
    _, template = openai_dev
    statements = _statements(template)
    jobs = statements["FindAndCancelFineTuningJobs"]
    assert sorted(jobs["Action"]) == [
        "bedrock-mantle:CancelFineTuningJob",
        "bedrock-mantle:GetFineTuningJob",
        "bedrock-mantle:ListFiles",
        "bedrock-mantle:ListFineTuningJobs",
    ]
    assert ":project/*" in _text(jobs["Resource"])
    assert statements["UseShortTermApiKey"]["Action"] == "bedrock-mantle:CallWithBearerToken"
    actions = _actions(statements)
    assert not any(a.startswith("bedrock:") for a in actions)
    # nothing that creates, uploads or deletes files or jobs
    assert {a for a in actions if a.startswith("bedrock-mantle:")} == {
        *jobs["Action"],
        "bedrock-mantle:CallWithBearerToken",
    }


def test_native_grants_list_everywhere_and_stop_on_jobs_only(
    nova: tuple[cdk.Stack, Template],
) -> None:
    _, template = nova
    statements = _statements(template)
    assert statements["FindJobsByName"]["Action"] == "bedrock:ListModelCustomizationJobs"
    assert statements["FindJobsByName"]["Resource"] == "*"
    stop = statements["StopOrphanedJobs"]
    assert stop["Action"] == "bedrock:StopModelCustomizationJob"
    resource = _text(stop["Resource"])
    assert ":bedrock:us-east-1:123456789012:model-customization-job/*" in resource
    actions = _actions(statements)
    assert not any(a.startswith("bedrock-mantle:") for a in actions)
    assert not any(
        a.startswith("bedrock:")
        and a
        not in {
            "bedrock:ListModelCustomizationJobs",
            "bedrock:StopModelCustomizationJob",
        }
        for a in actions
    )


@pytest.mark.parametrize("fixture", ["openai_dev", "nova"])
def test_common_grants_are_scoped(fixture: str, request: pytest.FixtureRequest) -> None:
    _, template = request.getfixturevalue(fixture)
    statements = _statements(template)
    assert statements["ReadJobRecord"]["Action"] == "ssm:GetParameter"
    assert "parameter/bedrock-rft/" in _text(statements["ReadJobRecord"]["Resource"])
    state_id = next(
        k for k in template.find_resources("AWS::SSM::Parameter") if "ReconcilerState" in k
    )
    assert state_id in _text(statements["KeepOrphanState"]["Resource"])
    assert statements["PublishOrphanedJobs"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "BedrockRft/Training"}
    }
    assert statements["ReadOwnStackStatus"] == {
        "Sid": "ReadOwnStackStatus",
        "Action": "cloudformation:DescribeStacks",
        "Effect": "Allow",
        "Resource": {"Ref": "AWS::StackId"},
    }
    topic_id = next(iter(template.find_resources("AWS::SNS::Topic")))
    publish = [s for s in _all_statements(template) if s["Action"] == "sns:Publish"]
    assert [s["Resource"] for s in publish] == [{"Ref": topic_id}]


def test_orphaned_jobs_alarm_and_dashboard(openai_dev: tuple[cdk.Stack, Template]) -> None:
    _, template = openai_dev
    alarms = _alarms(template)
    orphaned = alarms["bedrock-rft-dev-OrphanedJobs"]
    assert (
        orphaned["Namespace"],
        orphaned["MetricName"],
        orphaned["Statistic"],
        orphaned["Threshold"],
        orphaned["ComparisonOperator"],
        orphaned["Period"],
        orphaned["TreatMissingData"],
    ) == (
        "BedrockRft/Training",
        "OrphanedJobs",
        "Maximum",
        0,
        "GreaterThanThreshold",
        900,
        "notBreaching",
    )
    assert orphaned["Dimensions"] == [{"Name": "Environment", "Value": "dev"}]
    failing = alarms["bedrock-rft-dev-ReconcilerFailing"]
    assert (failing["MetricName"], failing["EvaluationPeriods"]) == ("Errors", 2)
    function_id = next(
        k for k in template.find_resources("AWS::Lambda::Function") if "ReconcilerFunction" in k
    )
    assert failing["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    widgets = _dashboard(template)["widgets"]
    [progress] = [w for w in widgets if w["properties"].get("title") == "Job progress (latest)"]
    assert ["BedrockRft/Training", "OrphanedJobs", "Environment", "dev"] in [
        m[:4] for m in progress["properties"]["metrics"]
    ]
