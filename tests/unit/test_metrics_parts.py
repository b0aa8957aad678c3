"""The collector's parts on their own: names, statuses, cursor, CSV, publishing, the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from tests.lambda_loader import load_handler
from tests.metrics_fixtures import CURSOR_PARAMETER, JOB_PARAMETER, FakeAws, fake_aws_fixture  # noqa: F401

load_handler("metrics")  # lambda/metrics and lambda/common on sys.path, as in the bundle

from training_metrics.catalog import canonical, metric_for  # noqa: E402
from training_metrics.collector import Settings  # noqa: E402
from training_metrics.csv_metrics import parse_metrics_csv, parse_time  # noqa: E402
from training_metrics.model import (  # noqa: E402
    Cursor,
    JobState,
    Point,
    normalize_bedrock_status,
    normalize_openai_status,
)
from training_metrics.points import points_from_mapping  # noqa: E402
from training_metrics.publish import MAX_DATUMS, MetricPublisher, PublishError, status_message  # noqa: E402
from training_metrics.store import CursorStore, read_job_record  # noqa: E402

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("source", "metric"),
    [
        ("critic_rewards_mean", "RewardMean"),
        ("critic/rewards/mean", "RewardMean"),
        ("val-score/rewards/mean@1", "ValidationRewardMean"),
        ("actor/entropy", "Entropy"),
        ("Actor/Grad_Norm", "GradNorm"),
        ("actor_pg_loss", "PolicyLoss"),
        ("response_length/mean", "ResponseLengthMean"),
        ("response/aborted_ratio", "AbortedRatio"),
        ("perf/throughput", None),
        ("train_loss", None),
    ],
)
def test_both_spellings_map_to_one_metric(source: str, metric: str | None) -> None:
    found = metric_for(source)
    assert (found.name if found else None) == metric


def test_canonical_folds_separators() -> None:
    assert canonical(" val-score/rewards/mean@1 ") == "val_score_rewards_mean_1"


@pytest.mark.parametrize(
    ("raw", "details", "status"),
    [
        ("InProgress", None, "running"),
        ("InProgress", {"validationDetails": {"status": "InProgress"}}, "validating"),
        ("InProgress", {"trainingDetails": {"status": "InProgress"}}, "running"),
        ("Completed", None, "succeeded"),
        ("Failed", None, "failed"),
        ("Stopping", None, "stopping"),
        ("Stopped", None, "cancelled"),
        ("Exploded", None, "unknown"),
    ],
)
def test_native_statuses(raw: str, details: dict[str, Any] | None, status: str) -> None:
    assert normalize_bedrock_status(raw, details) == status


def test_openai_statuses() -> None:
    assert normalize_openai_status("validating_files") == "validating"
    assert normalize_openai_status("succeeded") == "succeeded"
    assert normalize_openai_status("paused") == "unknown"


def test_mapping_skips_bad_values_and_derives_progress() -> None:
    data = {
        "step": 4,
        "total_steps": 8,
        "critic_rewards_mean": "nan",
        "actor_entropy": 0.6,
        "actor_grad_norm": True,
        "mystery": 3,
    }
    points = {p.metric: p.value for p in points_from_mapping(data, 100.0)}
    assert points == {"Entropy": 0.6, "TotalSteps": 8.0, "Step": 4.0, "Progress": 50.0}


def test_validation_only_mapping_does_not_move_the_training_step() -> None:
    points = list(points_from_mapping({"step": 10, "val_reward_mean": 0.7}, 1.0))
    assert [p.metric for p in points] == ["ValidationRewardMean"]


def test_cursor_round_trip_and_garbage() -> None:
    cursor = Cursor()
    cursor.advance([Point("RewardMean", 5, 50.0, 0.1), Point("ValidationRewardMean", 3, 60.0, 0.2)])
    cursor.running_since, cursor.total_steps = 10.0, 67
    again = Cursor.from_json(json.loads(json.dumps(cursor.to_json())))
    assert again == cursor
    assert again.steps == {"train": 5, "validation": 3} and again.last_step_at == 50.0
    assert Cursor.from_json("nonsense") == Cursor()
    assert Cursor.from_json({"steps": {"train": "7", "validation": True}}).steps == {
        "train": -1,
        "validation": -1,
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1763640000", 1763640000.0),
        ("1763640000123", 1763640000.123),
        ("2025-11-20T12:00:00Z", 1763640000.0),
        ("2025-11-20T13:00:00+01:00", 1763640000.0),
        ("2025-11-20T12:00:00", None),  # no zone: not guessed
        ("soon", None),
    ],
)
def test_parse_time(raw: str, expected: float | None) -> None:
    assert parse_time(raw) == (pytest.approx(expected) if expected else None)


def test_csv_first_spelling_wins_and_unknown_columns_are_ignored() -> None:
    text = "step,critic/rewards/mean,critic_rewards_mean,extra\n1,0.5,0.9,x\n"
    points = parse_metrics_csv(text, source="f.csv", default_time=5.0)
    rewards = [p.value for p in points if p.metric == "RewardMean"]
    assert rewards[0] == 0.5
    assert {p.metric for p in points} == {"RewardMean", "Step"}


def test_csv_empty_file_is_no_data() -> None:
    assert parse_metrics_csv("", source="f.csv", default_time=0.0) == []


def _points(steps: int, per_step: int, stamp: datetime) -> list[Point]:
    names = [
        "RewardMean",
        "Entropy",
        "GradNorm",
        "PolicyLoss",
        "AdvantageMean",
        "ResponseLengthMean",
        "Step",
        "TotalSteps",
        "Progress",
    ][:per_step]
    return [Point(n, s, stamp.timestamp(), float(s)) for s in range(1, steps + 1) for n in names]


def test_publisher_batches_never_split_a_step() -> None:
    cloudwatch = boto3.client(
        "cloudwatch", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    points = _points(steps=120, per_step=9, stamp=NOW - timedelta(hours=1))  # 1,080 points
    sizes: list[int] = []
    cloudwatch.meta.events.register(
        "before-parameter-build.cloudwatch.PutMetricData",
        lambda params, **_: sizes.append(len(params["MetricData"])),
    )
    with Stubber(cloudwatch) as stub:
        for _ in range(3):
            stub.add_response(
                "put_metric_data", {}, {"Namespace": "BedrockRft/Training", "MetricData": ANY}
            )
        result = MetricPublisher(cloudwatch, "BedrockRft/Training", "dev").publish(points, NOW)
        stub.assert_no_pending_responses()
    assert sum(sizes) == 1080 and all(size <= MAX_DATUMS and size % 9 == 0 for size in sizes)
    assert len(result.published) == 1080 and result.dropped == 0


def test_publisher_drops_points_cloudwatch_would_reject() -> None:
    cloudwatch = boto3.client(
        "cloudwatch", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    old = Point("RewardMean", 1, (NOW - timedelta(days=15)).timestamp(), 0.5)
    huge = Point("GradNorm", 2, NOW.timestamp(), 1e120)
    fine = Point("GradNorm", 3, NOW.timestamp(), 1e-120)  # tiny: sent as 0
    with Stubber(cloudwatch) as stub:
        stub.add_response(
            "put_metric_data",
            {},
            {
                "Namespace": "N",
                "MetricData": [
                    {
                        "MetricName": "GradNorm",
                        "Dimensions": [{"Name": "Environment", "Value": "dev"}],
                        "Timestamp": NOW,
                        "Value": 0.0,
                        "Unit": "None",
                    }
                ],
            },
        )
        result = MetricPublisher(cloudwatch, "N", "dev").publish([old, huge, fine], NOW)
    assert result.dropped == 2 and len(result.published) == 3


def test_publisher_failure_reports_the_whole_steps_that_went_out() -> None:
    cloudwatch = boto3.client(
        "cloudwatch", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    points = _points(steps=60, per_step=9, stamp=NOW)  # 540 points: two requests
    with Stubber(cloudwatch) as stub:
        stub.add_response("put_metric_data", {})
        stub.add_client_error("put_metric_data", "Throttling", "Rate exceeded")
        with pytest.raises(PublishError) as caught:
            MetricPublisher(cloudwatch, "N", "dev").publish(points, NOW)
    published = caught.value.published
    assert len(published) % 9 == 0 and 0 < len(published) < 540
    cursor = Cursor()
    cursor.advance(published)
    assert cursor.steps["train"] == len(published) // 9


def test_status_message_subject_is_sns_safe() -> None:
    state = JobState("ftjob-" + "x" * 120, "openai", "failed", "failed", failure="boom\nbad")
    subject, body = status_message("dev", state, "running", 12, 67)
    assert len(subject) <= 100 and "\n" not in subject
    assert body.splitlines()[0].endswith("is now failed (was running).")
    assert "Progress: step 12 of 67" in body


def test_cursor_store_keeps_recent_jobs_within_the_parameter_limit(fake_aws: FakeAws) -> None:
    store = CursorStore(fake_aws.aws.ssm, CURSOR_PARAMETER)
    for index in range(12):
        cursor = Cursor(event_id=f"ftevent-{'y' * 200}-{index}")
        cursor.steps["train"] = index
        store.save(f"ftjob-{index}", cursor, NOW + timedelta(minutes=index))
    stored = fake_aws.aws.ssm.get_parameter(Name=CURSOR_PARAMETER)["Parameter"]["Value"]
    assert len(stored.encode()) <= 4096
    jobs = json.loads(stored)["jobs"]
    assert "ftjob-11" in jobs and "ftjob-0" not in jobs
    assert store.load("ftjob-11").steps["train"] == 11
    assert store.load("ftjob-never").steps["train"] == -1


def test_damaged_cursor_starts_over(fake_aws: FakeAws) -> None:
    fake_aws.aws.ssm.put_parameter(Name=CURSOR_PARAMETER, Value="{not json", Type="String")
    assert CursorStore(fake_aws.aws.ssm, CURSOR_PARAMETER).load("ftjob-1") == Cursor()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{oops", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"backend": "openai"}', "job_id is missing"),
        ('{"job_id": "j", "backend": "vertex"}', "backend = 'vertex'"),
    ],
)
def test_bad_job_record_is_named(fake_aws: FakeAws, value: str, message: str) -> None:
    fake_aws.aws.ssm.put_parameter(Name=JOB_PARAMETER, Value=value, Type="String")
    with pytest.raises(ValueError, match=f"SSM parameter {JOB_PARAMETER}: {message}"):
        read_job_record(fake_aws.aws.ssm, JOB_PARAMETER)


def test_settings_from_environment() -> None:
    settings = Settings.from_env({"RFT_ENVIRONMENT": "prod", "TOPIC_ARN": "arn:t"})
    assert settings.job_parameter == "/bedrock-rft/prod/job"
    assert settings.cursor_parameter == "/bedrock-rft/prod/metrics-cursor"
    assert settings.backend == "openai" and settings.topic_arn == "arn:t"
    with pytest.raises(ValueError, match="RFT_ENVIRONMENT is not set"):
        Settings.from_env({})
    with pytest.raises(ValueError, match="RFT_BACKEND = 'sagemaker'"):
        Settings.from_env({"RFT_ENVIRONMENT": "x", "RFT_BACKEND": "sagemaker"})
