"""Shared pieces of the metrics collector's tests: moto-backed AWS and CloudWatch read-back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.lambda_loader import load_handler

REGION = "us-west-2"
ENVIRONMENT = "dev"
JOB_PARAMETER = f"/bedrock-rft/{ENVIRONMENT}/job"
CURSOR_PARAMETER = f"/bedrock-rft/{ENVIRONMENT}/metrics-cursor"

load_handler("metrics")  # puts lambda/metrics and lambda/common on sys.path

from training_metrics.collector import Aws, Settings  # noqa: E402


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


@pytest.fixture(name="fake_aws")
def fake_aws_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAws]:
    """moto for SSM, CloudWatch, SNS (+ SQS to read it), S3 and Bedrock; no real AWS."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
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
