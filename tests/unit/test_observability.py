"""The Observability construct in a bare stack: topic, rules, collector, dashboard, alarms."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from moto import mock_aws

from stacks.config import EnvironmentConfig
from stacks.nag import rule_packs
from stacks.observability import Observability
from tests.conftest import cdk_context
from tests.lambda_loader import ROOT

ACCOUNT = "123456789012"
# The documented sample event (Bedrock user guide, "How EventBridge for Amazon Bedrock
# works"), as published.
SAMPLE_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "UUID",
    "detail-type": "Model Customization Job State Change",
    "source": "aws.bedrock",
    "account": "123456789012",
    "time": "2023-08-11T12:34:56Z",
    "region": "us-east-1",
    "resources": ["arn:aws:bedrock:us-east-1:123456789012:model-customization-job/abcdefghwxyz"],
    "detail": {
        "version": "0.0",
        "jobName": "abcd-wxyz",
        "jobArn": "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/abcdefghwxyz",
        "outputModelName": "dummy-output-model-name",
        "outputModelArn": "arn:aws:bedrock:us-east-1:123456789012:dummy-output-model-name",
        "roleArn": "arn:aws:iam::123456789012:role/JobExecutionRole",
        "jobStatus": "Failed",
        "failureMessage": "Failure Message here.",
        "creationTime": "2023-08-11T10:11:12Z",
        "lastModifiedTime": "2023-08-11T12:34:56Z",
        "endTime": "2023-08-11T12:34:56Z",
        "baseModelArn": "arn:aws:bedrock:us-east-1:123456789012:base-model-name",
        "hyperParameters": {
            "batchSize": "1",
            "epochCount": "5",
            "learningRate": "0.05",
            "learningRateWarmupSteps": "10",
        },
        "trainingDataConfig": {"s3Uri": "s3://bucket/key"},
        "validationDataConfig": {"s3Uri": "s3://bucket/key"},
        "outputDataConfig": {"s3Uri": "s3://bucket/key"},
    },
}


def environment(name: str, **overrides: Any) -> EnvironmentConfig:
    raw = cdk_context()["environments"][name]
    return EnvironmentConfig.model_validate({"name": name, **raw, **overrides})


def build(
    tmp_path: Path,
    config: EnvironmentConfig,
    *,
    job_id: str | None = None,
    grader_name: str | None = None,
) -> tuple[cdk.Stack, Template]:
    """A bare stack: a key, an artifacts bucket named "bucket" (as in the sample event), a
    stand-in reward function, and the construct under test writing under "key"."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Obs", env=cdk.Environment(account=ACCOUNT, region=config.region))
    reward = lambda_.Function(
        stack,
        "Reward",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="handler.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return []\n"),
        timeout=cdk.Duration.seconds(config.reward_function.timeout_seconds),
    )
    Observability(
        stack,
        "Observability",
        config=config,
        key=kms.Key(stack, "Key"),
        artifacts_bucket=s3.Bucket(stack, "Artifacts", bucket_name="bucket"),
        output_prefix="key",
        reward_function=reward,
        job_id=job_id,
        code=lambda_.Code.from_asset(str(ROOT / "lambda" / "metrics")),
        grader_name=grader_name,
    )
    return stack, Template.from_stack(stack)


def only(template: Template, resource_type: str, prefix: str = "") -> dict[str, Any]:
    found = {
        k: v
        for k, v in template.find_resources(resource_type).items()
        if k.startswith(f"Observability{prefix}")
    }
    assert len(found) == 1, sorted(found)
    [resource] = found.values()
    return dict(resource)


def flatten(value: Any) -> str:
    """A token-bearing template value as text, tokens as TOKEN (for JSON-in-a-string)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(flatten(p) for p in parts)
    return "TOKEN"


# The module-scoped synthesis is made once: every test of this module runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("observability")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.Stack, Template]:
    config = environment("dev", alarm_email="ml-team@example.com")
    return build(tmp_path_factory.mktemp("dev"), config, job_id="ftjob-abc123")


def test_topic_is_encrypted_with_its_own_rotated_key(dev: tuple[cdk.Stack, Template]) -> None:
    _, template = dev
    topic = only(template, "AWS::SNS::Topic")["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = template.to_json()["Resources"][key_id]
    assert key_id.startswith("ObservabilityTopicKey")
    assert key["Properties"]["EnableKeyRotation"] is True
    services = {
        s["Principal"]["Service"]
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if "Service" in s.get("Principal", {})
    }
    assert services == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}


def test_topic_policy_denies_plain_http_and_lets_this_accounts_alarms_publish(
    dev: tuple[cdk.Stack, Template],
) -> None:
    _, template = dev
    statements = only(template, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"][
        "Statement"
    ]
    deny = next(s for s in statements if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    alarms = next(s for s in statements if s.get("Sid") == "AllowAlarmsOfThisAccount")
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}


def test_email_subscription_only_when_configured(
    dev: tuple[cdk.Stack, Template], tmp_path: Path
) -> None:
    _, template = dev
    subscription = only(template, "AWS::SNS::Subscription")["Properties"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == (
        "email",
        "ml-team@example.com",
    )
    _, without = build(tmp_path, environment("staging"))
    assert without.find_resources("AWS::SNS::Subscription") == {}


def test_collector_runs_on_the_configured_schedule(tmp_path: Path) -> None:
    config = environment("dev", observability={"collector_schedule_minutes": 10})
    _, template = build(tmp_path, config)
    rule = only(template, "AWS::Events::Rule", "CollectorSchedule")["Properties"]
    assert rule["ScheduleExpression"] == "rate(10 minutes)"
    [target] = rule["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("ObservabilityCollectorFunction")
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0}


def test_collector_function_settings(dev: tuple[cdk.Stack, Template]) -> None:
    _, template = dev
    props = only(template, "AWS::Lambda::Function", "CollectorFunction")["Properties"]
    assert (props["Runtime"], props["Architectures"]) == ("python3.13", ["arm64"])
    variables = props["Environment"]["Variables"]
    assert variables["RFT_ENVIRONMENT"] == "dev" and variables["RFT_BACKEND"] == "openai"
    assert variables["JOB_PARAMETER"] == "/bedrock-rft/dev/job"
    assert variables["METRICS_NAMESPACE"] == "BedrockRft/Training"
    assert "TOPIC_ARN" in variables and "KmsKeyArn" in props
    cursor = only(template, "AWS::SSM::Parameter", "MetricsCursor")["Properties"]
    assert cursor["Name"] == "/bedrock-rft/dev/metrics-cursor"
    assert json.loads(cursor["Value"]) == {"jobs": {}}


def _statements(template: Template) -> list[dict[str, Any]]:
    policy = only(template, "AWS::IAM::Policy", "CollectorRole")["Properties"]
    return list(policy["PolicyDocument"]["Statement"])


def test_collector_permissions_follow_the_backend(
    dev: tuple[cdk.Stack, Template], tmp_path: Path
) -> None:
    _, openai_template = dev
    openai_actions = {a for s in _statements(openai_template) for a in _list(s["Action"])}
    assert "bedrock-mantle:GetFineTuningJob" in openai_actions
    assert not any(a.startswith(("s3:", "bedrock:Get")) for a in openai_actions)
    put = next(s for s in _statements(openai_template) if s.get("Sid") == "PublishTrainingMetrics")
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": "BedrockRft/Training"}}

    _, native = build(tmp_path, environment("nova-dev"))
    statements = {s.get("Sid"): s for s in _statements(native)}
    assert "bedrock:GetModelCustomizationJob" in _list(
        statements["ReadCustomizationJobs"]["Action"]
    )
    assert statements["ListJobOutput"]["Condition"] == {"StringLike": {"s3:prefix": ["key*"]}}
    assert not any(
        a.startswith("bedrock-mantle:") for s in statements.values() for a in _list(s["Action"])
    )


def _list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_job_state_rule_matches_the_documented_sample_event(
    dev: tuple[cdk.Stack, Template], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The synthesized pattern, in moto's EventBridge rule engine, against the doc's sample."""
    _, template = dev
    rule = only(template, "AWS::Events::Rule", "JobStateRule")["Properties"]
    pattern = json.loads(
        json.dumps(rule["EventPattern"]).replace(
            json.dumps({"Fn::Join": ["", ["s3://", {"Ref": _bucket_id(template)}, "/key"]]}),
            json.dumps("s3://bucket/key"),
        )
    )
    assert pattern["detail"]["outputDataConfig"]["s3Uri"] == [{"prefix": "s3://bucket/key"}]

    other_bucket = json.loads(json.dumps(SAMPLE_EVENT))
    other_bucket["detail"]["outputDataConfig"]["s3Uri"] = "s3://someone-else/key"
    batch = {**SAMPLE_EVENT, "detail-type": "Batch Inference Job State Change"}
    completed = json.loads(json.dumps(SAMPLE_EVENT))
    completed["detail"]["jobStatus"] = "Completed"
    del completed["detail"]["failureMessage"]
    delivered = _deliver(monkeypatch, pattern, [SAMPLE_EVENT, other_bucket, batch, completed])
    assert [d["detail"]["jobStatus"] for d in delivered] == ["Failed", "Completed"]


def _bucket_id(template: Template) -> str:
    [bucket_id] = template.find_resources("AWS::S3::Bucket")
    return str(bucket_id)


def _deliver(
    monkeypatch: pytest.MonkeyPatch, pattern: dict[str, Any], events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Put ``events`` on a moto event bus with one rule (``pattern``) -> SQS; read them back."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        eventbridge = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="matched")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        eventbridge.put_rule(Name="job-state", EventPattern=json.dumps(pattern))
        eventbridge.put_targets(Rule="job-state", Targets=[{"Id": "q", "Arn": arn}])
        entries = [
            {
                "Source": e["source"],
                "DetailType": e["detail-type"],
                "Detail": json.dumps(e["detail"]),
                "Resources": e["resources"],
            }
            for e in events
        ]
        assert eventbridge.put_events(Entries=entries)["FailedEntryCount"] == 0
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def render(template: str, paths: dict[str, str], event: dict[str, Any]) -> str:
    """EventBridge's plain-text input transformation: ``<name>`` -> the value at its path."""

    def value_at(path: str) -> str:
        node: Any = event
        for part in path.removeprefix("$.").split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return "" if node is None else str(node)

    return re.sub(r"<([\w.-]+)>", lambda m: value_at(paths[m.group(1)]), template)


def test_job_state_message_is_readable(dev: tuple[cdk.Stack, Template]) -> None:
    _, template = dev
    [target] = only(template, "AWS::Events::Rule", "JobStateRule")["Properties"]["Targets"]
    transformer = target["InputTransformer"]
    placeholders = set(re.findall(r"<([\w.-]+)>", transformer["InputTemplate"]))
    assert placeholders == set(transformer["InputPathsMap"])
    message = render(transformer["InputTemplate"], transformer["InputPathsMap"], SAMPLE_EVENT)
    assert message.splitlines() == [
        "Bedrock RFT job abcd-wxyz in environment dev is now Failed.",
        "Failure message: Failure Message here.",
        "Job ARN: arn:aws:bedrock:us-east-1:123456789012:model-customization-job/abcdefghwxyz",
        "Output model: dummy-output-model-name",
        "Event time: 2023-08-11T12:34:56Z",
        "Backend: bedrock (native)",
    ]


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        v["Properties"]["AlarmName"]: v["Properties"]
        for v in template.find_resources("AWS::CloudWatch::Alarm").values()
    }


def test_alarms_notify_the_topic(dev: tuple[cdk.Stack, Template]) -> None:
    _, template = dev
    alarms = _alarms(template)
    assert set(alarms) == {
        f"bedrock-rft-dev-{n}"
        for n in (
            "RewardLambdaErrors",
            "RewardLambdaThrottles",
            "RewardLambdaDurationNearTimeout",
            "JobFailed",
            "EntropyCollapse",
            "ResponseLengthRunaway",
            "TrainingStalled",
            "CollectorFailing",
            "OrphanedJobs",
            "ReconcilerFailing",
        )
    }
    topic_id = next(iter(template.find_resources("AWS::SNS::Topic")))
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_alarm_thresholds_come_from_config(tmp_path: Path) -> None:
    config = environment(
        "prod",
        observability={
            "entropy_floor": 0.35,
            "entropy_points": 4,
            "response_length_ceiling": 2048,
            "stall_minutes": 45,
            "reward_lambda_duration_ratio": 0.5,
            "reward_lambda_errors": 3,
            "collector_schedule_minutes": 10,
        },
    )
    _, template = build(tmp_path, config)
    alarms = _alarms(template)
    entropy = alarms["bedrock-rft-prod-EntropyCollapse"]
    assert (entropy["Threshold"], entropy["EvaluationPeriods"], entropy["DatapointsToAlarm"]) == (
        0.35,
        4,
        4,
    )
    assert entropy["ComparisonOperator"] == "LessThanThreshold"
    assert entropy["TreatMissingData"] == "missing"
    assert alarms["bedrock-rft-prod-ResponseLengthRunaway"]["Threshold"] == 2048
    stalled = alarms["bedrock-rft-prod-TrainingStalled"]
    assert (stalled["Threshold"], stalled["MetricName"], stalled["Period"]) == (
        45,
        "MinutesSinceLastStep",
        600,
    )
    duration = alarms["bedrock-rft-prod-RewardLambdaDurationNearTimeout"]
    assert (duration["Threshold"], duration["ExtendedStatistic"]) == (150_000, "p99")
    assert alarms["bedrock-rft-prod-RewardLambdaErrors"]["Threshold"] == 3
    training = [a for a in alarms.values() if a.get("Namespace") == "BedrockRft/Training"]
    for alarm in training:
        assert alarm["Dimensions"] == [{"Name": "Environment", "Value": "prod"}]


def _dashboard(template: Template) -> dict[str, Any]:
    body = only(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]
    return dict(json.loads(flatten(body)))


def test_dashboard_shows_training_grader_and_reward_lambda(
    dev: tuple[cdk.Stack, Template],
) -> None:
    _, template = dev
    widgets = _dashboard(template)["widgets"]
    titles = [w["properties"].get("title", "") for w in widgets]
    for expected in (
        "Reward (training mean, validation mean)",
        "Policy entropy",
        "Gradient norm",
        "Policy-gradient loss",
        "Advantages (mean)",
        "Response length (tokens)",
        "Job progress (latest)",
        "Grader: reward mean and share of zero rewards",
        "Grader: samples and errors",
        "Grader: judge latency (ms) and errors",
        "Reward Lambda: invocations, errors, throttles",
        "Reward Lambda: concurrent executions",
        "Reward Lambda: duration (ms)",
        "Alarms",
    ):
        assert expected in titles, expected
    text = json.dumps(widgets)
    for metric in (
        "RewardMean",
        "ValidationRewardMean",
        "Entropy",
        "GradNorm",
        "PolicyLoss",
        "AdvantageMean",
        "ResponseLengthMean",
        "Progress",
    ):
        assert f'"BedrockRft/Training", "{metric}", "Environment", "dev"' in text.replace(
            '","', '", "'
        ), metric
    for grader_metric in ("ZeroRewardShare", "GraderErrors", "JudgeLatency", "JudgeErrors"):
        assert f'MetricName=\\\\\\"{grader_metric}\\\\\\"' in text or grader_metric in text
    for lambda_metric in ("Invocations", "Errors", "Throttles", "ConcurrentExecutions", "Duration"):
        assert f'"AWS/Lambda", "{lambda_metric}"' in text.replace('","', '", "'), lambda_metric

    duration = widgets[titles.index("Reward Lambda: duration (ms)")]["properties"]
    stats = {m[-1].get("stat") for m in duration["metrics"]}
    assert stats == {"p50", "p99"}
    annotations = {a["label"]: a["value"] for a in duration["annotations"]["horizontal"]}
    assert annotations["timeout"] == 300_000
    entropy = widgets[titles.index("Policy entropy")]["properties"]
    assert entropy["annotations"]["horizontal"][0]["value"] == 0.2


def test_dashboard_text_names_the_job_and_how_to_read_the_curves(
    dev: tuple[cdk.Stack, Template], tmp_path: Path
) -> None:
    _, template = dev
    [text] = [w for w in _dashboard(template)["widgets"] if w["type"] == "text"]
    markdown = text["properties"]["markdown"]
    assert "`ftjob-abc123`" in markdown
    for phrase in (
        "Entropy",
        "mode collapse",
        "Grad norm",
        "reward hacking",
        "/bedrock-rft/dev/job",
    ):
        assert phrase in markdown, phrase
    _, no_job = build(tmp_path, environment("dev"))
    [text] = [w for w in _dashboard(no_job)["widgets"] if w["type"] == "text"]
    assert "starts no job" in text["properties"]["markdown"]


@pytest.mark.parametrize("env", ["dev", "nova-dev"])
def test_nag_packs_find_nothing_unacknowledged_in_the_construct(tmp_path: Path, env: str) -> None:
    stack, _ = build(tmp_path, environment(env, alarm_email="ml-team@example.com"))
    for pack in rule_packs():
        report = pack.validate_scope(stack)
        ours = [
            (v.rule_name, r.construct_path)
            for v in report.violations
            for r in v.violating_resources
            if "/Observability/" in (r.construct_path or "")
        ]
        assert ours == []
