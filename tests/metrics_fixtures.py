"""Shared pieces of the metrics collector's tests: moto-backed AWS and CloudWatch read-back, and
a synthetic RFT run served by the local OpenAI-compatible server."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import fake_credentials
from tests.lambda_loader import load_handler
from tests.openai_server import FineTuning

REGION = "us-west-2"
ENVIRONMENT = "dev"
JOB_PARAMETER = f"/bedrock-rft/{ENVIRONMENT}/job"
CURSOR_PARAMETER = f"/bedrock-rft/{ENVIRONMENT}/metrics-cursor"

load_handler("metrics")  # puts lambda/metrics and lambda/common on sys.path

from training_metrics.collector import Aws, Settings, collect  # noqa: E402
from training_metrics.model import Source  # noqa: E402


@dataclass
class FakeAws:
    """moto clients plus an SQS queue subscribed to the topic (to read notifications)."""

    aws: Aws
    sqs: Any
    queue_url: str
    topic_arn: str
    settings: Settings

    def record_job(
        self, job_id: str, backend: str = "openai", status: str | None = "queued"
    ) -> None:
        """Write the job record the way the job custom resource does."""
        record = {
            "job_id": job_id,
            "backend": backend,
            "region": REGION,
            "status": status,
            "updated_at": "2026-11-20T00:00:00+00:00",
        }
        self.aws.ssm.put_parameter(
            Name=JOB_PARAMETER, Value=json.dumps(record), Type="String", Overwrite=True
        )

    def job_record(self) -> dict[str, Any]:
        """The job record as stored."""
        value = self.aws.ssm.get_parameter(Name=JOB_PARAMETER)["Parameter"]["Value"]
        return dict(json.loads(value))

    def notifications(self) -> list[dict[str, str]]:
        """Messages delivered to the topic since the last call (subject and body)."""
        found: list[dict[str, str]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                envelope = json.loads(message["Body"])
                found.append(
                    {"subject": envelope.get("Subject", ""), "message": envelope["Message"]}
                )
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def series(
        self, metric: str, stat: str = "SampleCount", period: int = 60
    ) -> dict[datetime, float]:
        """One metric's values per period, read back with GetMetricData."""
        now = datetime.now(UTC)
        result = self.aws.cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "BedrockRft/Training",
                            "MetricName": metric,
                            "Dimensions": [{"Name": "Environment", "Value": ENVIRONMENT}],
                        },
                        "Period": period,
                        "Stat": stat,
                    },
                }
            ],
            StartTime=now - timedelta(days=13),
            EndTime=now + timedelta(hours=1),
        )["MetricDataResults"][0]
        return dict(zip(result["Timestamps"], result["Values"], strict=True))


def collect_once(fake: FakeAws, backend: str, source: Source, event: Any) -> dict[str, Any]:
    """One collector run, as the Lambda makes it, reading the job from ``source`` (the
    collector must ask for the recorded job's ``backend``)."""

    def make_source(asked: str, region: str | None) -> Source:
        assert asked == backend
        return source

    summary: dict[str, Any] = collect(
        event,
        settings=fake.settings,
        aws=fake.aws,
        make_source=make_source,
        now=datetime.now(UTC),
    )
    return summary


@pytest.fixture(name="fake_aws")
def fake_aws_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAws]:
    """moto for SSM, CloudWatch, SNS (+ SQS to read it), S3 and Bedrock; no real AWS."""
    fake_credentials(monkeypatch, REGION)
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic_arn = sns.create_topic(Name="rft-dev")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        aws = Aws(
            ssm=boto3.client("ssm", region_name=REGION),
            cloudwatch=boto3.client("cloudwatch", region_name=REGION),
            sns=sns,
        )
        settings = Settings(
            environment=ENVIRONMENT,
            backend="openai",
            job_parameter=JOB_PARAMETER,
            cursor_parameter=CURSOR_PARAMETER,
            topic_arn=topic_arn,
        )
        yield FakeAws(aws, sqs, queue_url, topic_arn, settings)


def synthetic_step(step: int, total: int, rng: random.Random) -> dict[str, Any]:
    """One step's metrics in the documented event shape (bedrock-rft.md §4)."""
    progress = step / total
    reward = 0.32 + 0.5 * (1 - math.exp(-step / (0.3 * total))) + rng.gauss(0, 0.045)
    grad = 0.0009 * (1 + abs(rng.gauss(0, 0.25)))
    if step == int(0.45 * total):
        grad *= 7  # one instability spike, as real runs show
    return {
        "step": step,
        "total_steps": total,
        "critic_rewards_mean": round(min(1.0, max(0.0, reward)), 4),
        "actor_pg_loss": round(0.11 * (1 - 0.6 * progress) + rng.gauss(0, 0.02), 5),
        "actor_entropy": round(1.02 - 0.28 * progress + rng.gauss(0, 0.025), 4),
        "actor_grad_norm": round(grad, 6),
        "critic_advantages_mean": round(rng.gauss(0, 0.012), 5),
        "response_length_mean": round(515 + 95 * progress + rng.gauss(0, 14), 2),
    }


def synthetic_run(
    service: FineTuning,
    job_id: str,
    *,
    total_steps: int = 67,
    steps: int | None = None,
    seed: int = 7,
    start: int | None = None,
    step_seconds: int = 90,
    eval_every: int = 10,
) -> dict[str, Any]:
    """A running job in ``service`` with ``steps`` (default all) steps of metrics and a
    checkpoint per eval: a plausible RFT run (rising reward, slowly falling entropy, one
    grad-norm spike, slowly growing responses) from a seed. Test data, not a real job."""
    rng = random.Random(seed)
    steps = total_steps if steps is None else steps
    start = int(time.time()) - (steps + 3) * step_seconds if start is None else start
    job = service.add_job(job_id, status="running", created_at=start - 600)
    service.add_event(job_id, "Fine-tuning job created", created_at=start - 600)
    service.add_event(job_id, "Validating training file", created_at=start - 300)
    service.add_event(job_id, "Fine-tuning job started", created_at=start)
    extend_run(
        service,
        job_id,
        1,
        steps,
        total_steps=total_steps,
        rng=rng,
        start=start,
        step_seconds=step_seconds,
        eval_every=eval_every,
    )
    return job


def extend_run(
    service: FineTuning,
    job_id: str,
    first: int,
    last: int,
    *,
    total_steps: int,
    rng: random.Random,
    start: int,
    step_seconds: int = 90,
    eval_every: int = 10,
) -> None:
    """Add steps ``first``..``last`` (metrics events, and checkpoints every ``eval_every``)."""
    for step in range(first, last + 1):
        stamp = start + step * step_seconds
        service.add_metrics(job_id, created_at=stamp, **synthetic_step(step, total_steps, rng))
        if step % eval_every == 0:
            val = 0.3 + 0.48 * (1 - math.exp(-step / (0.35 * total_steps))) + rng.gauss(0, 0.02)
            service.add_checkpoint(
                job_id, step=step, metrics={"val_reward_mean": round(val, 4)}, created_at=stamp + 5
            )
            service.add_event(job_id, f"Checkpoint created at step {step}", created_at=stamp + 5)
