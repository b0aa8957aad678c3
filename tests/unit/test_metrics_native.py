"""The collector on the native path: moto Bedrock for the job, moto S3 for its metrics files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.lambda_loader import load_handler
from tests.metrics_fixtures import (
    FakeAws,
    collect_once,
    fake_aws_fixture,  # noqa: F401 (fixture)
)

load_handler("metrics")  # lambda/metrics and lambda/common on sys.path, as in the bundle

from training_metrics.bedrock_source import BedrockSource, job_folder  # noqa: E402

NATIVE_REGION = "us-east-1"
BUCKET = "rft-artifacts"
JOB = "rft-nova-dev-0001"
FOLDER = f"output/model-customization-job-{JOB}/"
METRICS_KEY = f"{FOLDER}training_artifacts/step_wise_training_metrics.csv"
# The documented console names, one column Bedrock might add (perf/...) that must be ignored,
# and the validation score filled only at evaluation steps.
HEADER = (
    "step_number,epoch_number,timestamp,critic/rewards/mean,critic/rewards/max,actor/entropy,"
    "actor/pg_loss,actor/grad_norm,response_length/mean,perf/throughput,val-score/rewards/mean@1"
)


def rows(first: int, last: int, start: datetime) -> list[str]:
    """CSV rows for steps first..last, two minutes apart, with validation every 5 steps."""
    out = []
    for step in range(first, last + 1):
        stamp = (start + timedelta(minutes=2 * step)).strftime("%Y-%m-%dT%H:%M:%SZ")
        val = f"{0.4 + step / 100:.3f}" if step % 5 == 0 else ""
        out.append(
            f"{step},1,{stamp},{0.3 + step / 50:.3f},1.0,{1.0 - step / 200:.4f},0.08,0.0011,"
            f"{500 + step},1234.5,{val}"
        )
    return out


@pytest.fixture
def native(fake_aws: FakeAws) -> dict[str, Any]:
    bedrock = boto3.client("bedrock", region_name=NATIVE_REGION)
    s3 = boto3.client("s3", region_name=NATIVE_REGION)
    s3.create_bucket(Bucket=BUCKET)
    bedrock.create_model_customization_job(
        jobName=JOB,
        customModelName="rft-nova-dev-model",
        roleArn="arn:aws:iam::123456789012:role/rft-bedrock",
        baseModelIdentifier="amazon.nova-2-lite-v1:0:256k",
        customizationType="REINFORCEMENT_FINE_TUNING",
        trainingDataConfig={"s3Uri": "s3://rft-data/train.jsonl"},
        outputDataConfig={"s3Uri": f"s3://{BUCKET}/output/"},
        hyperParameters={},
    )
    fake_aws.record_job(JOB, backend="bedrock", status="InProgress")
    return {"bedrock": bedrock, "s3": s3}


def run(fake: FakeAws, clients: dict[str, Any], event: Any = None) -> dict[str, Any]:
    """One collector run against moto's Bedrock and S3."""
    source = BedrockSource(clients["bedrock"], clients["s3"])
    return collect_once(fake, "bedrock", source, event or {})


def put_csv(clients: dict[str, Any], lines: list[str], key: str = METRICS_KEY) -> None:
    clients["s3"].put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())


def test_missing_metrics_file_is_no_data_yet(fake_aws: FakeAws, native: dict[str, Any]) -> None:
    summary = run(fake_aws, native)
    assert summary["published"] == 0 and summary["step"] is None
    assert list(fake_aws.series("JobRunning", stat="Maximum").values()) == [1.0]


def test_columns_by_name_one_point_per_step_and_only_new_rows(
    fake_aws: FakeAws, native: dict[str, Any]
) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    put_csv(native, [HEADER, *rows(1, 12, start)])
    assert run(fake_aws, native)["step"] == 12

    counts = fake_aws.series("RewardMean")
    assert len(counts) == 12 and set(counts.values()) == {1.0}
    entropy = fake_aws.series("Entropy", stat="Average")
    assert [entropy[t] for t in sorted(entropy)] == pytest.approx(
        [1.0 - s / 200 for s in range(1, 13)]
    )
    assert sorted(fake_aws.series("ValidationRewardMean", stat="Average").values()) == (
        pytest.approx([0.45, 0.5])
    )
    assert len(fake_aws.series("ResponseLengthMean")) == 12
    assert len(fake_aws.series("RewardMax")) == 12

    # Bedrock appends: only the new rows go out, re-runs publish nothing
    put_csv(native, [HEADER, *rows(1, 20, start)])
    assert run(fake_aws, native)["step"] == 20
    assert run(fake_aws, native)["published"] == 0
    counts = fake_aws.series("RewardMean")
    assert len(counts) == 20 and set(counts.values()) == {1.0}
    assert len(fake_aws.series("ValidationRewardMean")) == 4


def test_half_written_last_row_waits_for_the_next_run(
    fake_aws: FakeAws, native: dict[str, Any]
) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    full = rows(1, 4, start)
    put_csv(native, [HEADER, *full[:3], "4,1,"])  # Bedrock is mid-write on step 4
    assert run(fake_aws, native)["step"] == 3
    put_csv(native, [HEADER, *full])
    assert run(fake_aws, native)["step"] == 4
    assert set(fake_aws.series("RewardMean").values()) == {1.0}


def test_rows_without_a_time_take_the_files_time(fake_aws: FakeAws, native: dict[str, Any]) -> None:
    put_csv(native, ["step,critic/rewards/mean", "1,0.2", "2,0.3"])
    run(fake_aws, native)
    # both rows carry the file's last-modified time: one period, two samples
    assert list(fake_aws.series("RewardMean").values()) == [2.0]


def test_a_file_without_a_step_column_is_named(fake_aws: FakeAws, native: dict[str, Any]) -> None:
    put_csv(native, ["epoch,critic/rewards/mean", "1,0.2"])
    with pytest.raises(ValueError, match=rf"s3://{BUCKET}/{METRICS_KEY}: no step column"):
        run(fake_aws, native)


def test_stopped_job_updates_the_record_without_a_message(
    fake_aws: FakeAws, native: dict[str, Any]
) -> None:
    put_csv(native, [HEADER, *rows(1, 3, datetime.now(UTC) - timedelta(hours=1))])
    native["bedrock"].stop_model_customization_job(jobIdentifier=JOB)
    summary = run(fake_aws, native)
    assert summary["step"] == 3
    assert fake_aws.job_record()["status"] == "Stopped"
    assert fake_aws.notifications() == []  # native jobs are announced by the EventBridge rule
    assert list(fake_aws.series("JobFailed", stat="Maximum").values()) == [0.0]
    assert run(fake_aws, native)["action"] == "idle"


def test_job_folder_follows_the_documented_layout() -> None:
    description = {
        "jobArn": "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/abcdefghwxyz",
        "outputDataConfig": {"s3Uri": "s3://bucket/rft/output"},
    }
    assert job_folder(description) == ("bucket", "rft/output/model-customization-job-abcdefghwxyz/")
    description["outputDataConfig"] = {"s3Uri": "s3://bucket"}
    assert job_folder(description) == ("bucket", "model-customization-job-abcdefghwxyz/")
    description["outputDataConfig"] = {"s3Uri": "https://bucket/x"}
    with pytest.raises(ValueError, match="not an s3:// URI"):
        job_folder(description)
