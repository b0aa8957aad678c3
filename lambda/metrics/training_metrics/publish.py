"""Publishing: points to CloudWatch (with their own timestamps), status changes to SNS."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from training_metrics.catalog import BY_NAME
from training_metrics.model import JobState, Point

# CloudWatch accepts data points up to two weeks old; a margin keeps a slow request safe.
MAX_AGE = timedelta(days=14) - timedelta(minutes=10)
# PutMetricData takes up to 1,000 data points (and 1 MB) per request.
MAX_DATUMS = 500
# CloudWatch rejects magnitudes outside about 8.5e-109 .. 1.2e108.
_TINY, _HUGE = 1e-100, 1e100


class PublishError(RuntimeError):
    """A PutMetricData call failed after ``published`` points had gone out."""

    def __init__(self, published: list[Point], cause: Exception) -> None:
        super().__init__(f"PutMetricData failed after {len(published)} points: {cause}")
        self.published = published


@dataclass
class PublishResult:
    """Which points went out, and how many were dropped (too old or out of range)."""

    published: list[Point] = field(default_factory=list)
    dropped: int = 0


class MetricPublisher:
    """PutMetricData in the training namespace with the one ``Environment`` dimension."""

    def __init__(self, cloudwatch: Any, namespace: str, environment: str) -> None:
        self._cloudwatch = cloudwatch
        self._namespace = namespace
        self._dimensions = [{"Name": "Environment", "Value": environment}]

    def _datum(self, name: str, value: float, stamp: datetime, unit: str) -> dict[str, Any]:
        return {
            "MetricName": name,
            "Dimensions": self._dimensions,
            "Timestamp": stamp,
            "Value": 0.0 if abs(value) < _TINY else value,
            "Unit": unit,
        }

    def publish(self, points: list[Point], now: datetime) -> PublishResult:
        """Publish ``points`` (sorted by step) in requests that never split a step.

        Whole steps per request mean that after a failed request every step is either fully
        published or not at all, so the cursor can stop exactly at the last complete step.
        """
        result = PublishResult()
        oldest = now - MAX_AGE
        batch: list[Point] = []
        sendable = 0
        for step_points in _by_step(points):
            count = sum(1 for p in step_points if _sendable(p, oldest))
            if sendable + count > MAX_DATUMS and batch:
                self._send(batch, oldest, result)
                batch, sendable = [], 0
            batch.extend(step_points)
            sendable += count
        if batch:
            self._send(batch, oldest, result)
        return result

    def _send(self, batch: list[Point], oldest: datetime, result: PublishResult) -> None:
        """Send a batch of whole steps; points CloudWatch would reject count as dropped."""
        data = [
            self._datum(p.metric, p.value, _stamp(p), BY_NAME[p.metric].unit)
            for p in batch
            if _sendable(p, oldest)
        ]
        if data:
            try:
                self._cloudwatch.put_metric_data(Namespace=self._namespace, MetricData=data)
            except Exception as err:
                raise PublishError(result.published, err) from err
        result.dropped += len(batch) - len(data)
        result.published.extend(batch)

    def publish_gauges(self, values: dict[str, float], now: datetime) -> None:
        """Job-level values stamped ``now`` (status flags, minutes since the last step)."""
        if not values:
            return
        data = [self._datum(name, value, now, "None") for name, value in values.items()]
        self._cloudwatch.put_metric_data(Namespace=self._namespace, MetricData=data)


def _stamp(point: Point) -> datetime:
    return datetime.fromtimestamp(point.timestamp, UTC)


def _sendable(point: Point, oldest: datetime) -> bool:
    """Whether CloudWatch would accept the point (not too old, magnitude in range)."""
    return _stamp(point) >= oldest and abs(point.value) <= _HUGE


def _by_step(points: list[Point]) -> list[list[Point]]:
    groups: list[list[Point]] = []
    for point in points:
        if groups and groups[-1][0].step == point.step:
            groups[-1].append(point)
        else:
            groups.append([point])
    return groups


def status_message(
    environment: str, state: JobState, previous: str | None, step: int | None, total: int | None
) -> tuple[str, str]:
    """Subject and body of a status-change notification (same facts as the native rule's).

    The subject obeys SNS's rules: at most 100 printable characters, no line breaks.
    """
    subject = f"[bedrock-rft {environment}] RFT job {state.job_id}: {state.raw_status}"
    subject = "".join(ch for ch in subject if ch.isprintable())[:100]
    lines = [
        f"Bedrock RFT job {state.job_id} in environment {environment} is now "
        f"{state.raw_status}" + (f" (was {previous})." if previous else "."),
        f"Failure message: {state.failure or '-'}",
    ]
    if state.fine_tuned_model:
        lines.append(f"Fine-tuned model: {state.fine_tuned_model}")
    if step is not None:
        lines.append(f"Progress: step {step}" + (f" of {total}" if total else ""))
    lines.append(f"Backend: {state.backend}")
    return subject, "\n".join(lines)


def notify(sns: Any, topic_arn: str, subject: str, message: str) -> None:
    """Publish one notification to the environment's topic."""
    sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)
