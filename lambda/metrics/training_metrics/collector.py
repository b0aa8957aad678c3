"""One collector run: find the job, publish what is new, follow its status.

Scheduled runs read the job the custom resource recorded; once that job has ended (and its
last points are out) a run costs one SSM read. ``{"job_id": "<id>"}`` collects that job now
(backfill); only the recorded job's status feeds the job-level metrics, the notifications and
the record, so backfilling an old failed job cannot fire the "job failed" alarm.

When the recorded job turns ``succeeded``, the run asks for its evaluation: it invokes the
evaluation's start function asynchronously (``EVALUATION_START_FUNCTION``) with
``{"job_id", "backend", "fine_tuned_model"}``, before it notifies and updates the record, so a
run that fails after it repeats the request, which the start function turns into "already
evaluated" (one execution per job, named after it). The start function, not the collector,
owns the execution name and the Step Functions grant. Native jobs are also started by their
EventBridge event; the collector's request is the backstop for that best-effort delivery.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from training_metrics import catalog
from training_metrics.model import (
    TERMINAL,
    Cursor,
    JobState,
    Source,
    normalize_bedrock_status,
    normalize_openai_status,
)
from training_metrics.publish import MetricPublisher, PublishError, notify, status_message
from training_metrics.store import CursorStore, JobRecord, read_job_record, update_job_record

BACKENDS = ("openai", "bedrock")
SourceFactory = Callable[[str, str | None], Source]


@dataclass(frozen=True)
class Settings:
    """The collector's configuration, from its Lambda environment variables."""

    environment: str
    backend: str
    job_parameter: str
    cursor_parameter: str
    topic_arn: str | None = None
    namespace: str = catalog.NAMESPACE
    # The evaluation's start function (None: the environment evaluates nothing).
    evaluation_function: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``RFT_ENVIRONMENT`` (required), ``RFT_BACKEND``, ``JOB_PARAMETER``,
        ``CURSOR_PARAMETER``, ``TOPIC_ARN``, ``METRICS_NAMESPACE`` and
        ``EVALUATION_START_FUNCTION``."""
        env = os.environ if env is None else env
        name = env.get("RFT_ENVIRONMENT", "")
        if not name:
            raise ValueError("environment variable RFT_ENVIRONMENT is not set")
        backend = env.get("RFT_BACKEND", "openai")
        if backend not in BACKENDS:
            raise ValueError(
                f"environment variable RFT_BACKEND = {backend!r}; allowed: openai, bedrock"
            )
        return cls(
            environment=name,
            backend=backend,
            job_parameter=env.get("JOB_PARAMETER") or f"/bedrock-rft/{name}/job",
            cursor_parameter=env.get("CURSOR_PARAMETER") or f"/bedrock-rft/{name}/metrics-cursor",
            topic_arn=env.get("TOPIC_ARN") or None,
            namespace=env.get("METRICS_NAMESPACE") or catalog.NAMESPACE,
            evaluation_function=env.get("EVALUATION_START_FUNCTION") or None,
        )


@dataclass(frozen=True)
class Aws:
    """The AWS clients a run uses."""

    ssm: Any
    cloudwatch: Any
    sns: Any
    lambda_client: Any = None  # to request evaluations (Settings.evaluation_function)


def backfill_request(event: Any) -> tuple[str, str | None] | None:
    """``(job_id, backend)`` of a backfill invocation, ``None`` for a scheduled one."""
    if not isinstance(event, Mapping) or "job_id" not in event:
        return None
    job_id = event["job_id"]
    if not isinstance(job_id, str) or not job_id.strip():
        raise ValueError("event.job_id: must be a non-empty string")
    backend = event.get("backend")
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"event.backend = {backend!r}; allowed: openai, bedrock")
    return job_id.strip(), backend


def recorded_status(record: JobRecord) -> str:
    """The common status word of the status the record holds (``unknown`` when absent)."""
    if not record.status:
        return "unknown"
    if record.backend == "bedrock":
        return normalize_bedrock_status(record.status)
    return normalize_openai_status(record.status)


def collect(
    event: Any,
    *,
    settings: Settings,
    aws: Aws,
    make_source: SourceFactory,
    now: datetime,
) -> dict[str, Any]:
    """Run once; returns a summary (also what the Lambda returns)."""
    request = backfill_request(event)
    record = read_job_record(aws.ssm, settings.job_parameter)
    if request is None:
        if record is None:
            return {"action": "idle", "reason": "no job recorded"}
        if recorded_status(record) in TERMINAL:
            return {"action": "idle", "job_id": record.job_id, "status": record.status}
        job_id, backend = record.job_id, record.backend
    else:
        job_id, wanted = request
        if record is not None and record.job_id == job_id:
            backend = wanted or record.backend
        else:
            backend = wanted or settings.backend
    current = record if record is not None and record.job_id == job_id else None

    source = make_source(backend, current.region if current else None)
    state = source.state(job_id)
    cursors = CursorStore(aws.ssm, settings.cursor_parameter)
    cursor = cursors.load(job_id)
    fetched = source.fetch(job_id, cursor)
    publisher = MetricPublisher(aws.cloudwatch, settings.namespace, settings.environment)
    try:
        result = publisher.publish(fetched.points, now)
    except PublishError as err:
        cursor.advance(err.published)  # keep what did go out; the rest is retried next run
        cursors.save(job_id, cursor, now)
        raise
    cursor.advance(result.published)
    cursor.seen_events(fetched)
    for point in result.published:
        if point.metric == "TotalSteps":
            cursor.total_steps = int(point.value)

    summary: dict[str, Any] = {
        "action": "backfill" if request else "collect",
        "job_id": job_id,
        "backend": backend,
        "status": state.raw_status,
        "published": len(result.published) - result.dropped,
        "dropped": result.dropped,
        "step": cursor.steps["train"] if cursor.steps["train"] >= 0 else None,
    }
    if current is not None:
        publisher.publish_gauges(_job_gauges(state, current, cursor, now), now)
    # The cursor is saved before anything that may fail on its own (SNS, the record), so
    # that such a failure can only repeat a notification, never a data point.
    cursors.save(job_id, cursor, now)
    if current is not None:
        summary.update(
            _follow_status(
                settings=settings, aws=aws, record=current, state=state, cursor=cursor, now=now
            )
        )
    return summary


def _job_gauges(
    state: JobState, record: JobRecord, cursor: Cursor, now: datetime
) -> dict[str, float]:
    """Job-level values: running flag, minutes without a new step, and the final outcome."""
    running = state.status == "running"
    gauges = {catalog.JOB_RUNNING: 1.0 if running else 0.0}
    if running:
        if cursor.running_since is None:
            cursor.running_since = now.timestamp()
        # since the last step; before the first step, since the job was first seen running
        since = cursor.last_step_at if cursor.last_step_at is not None else cursor.running_since
        gauges[catalog.MINUTES_SINCE_LAST_STEP] = round(max(0.0, now.timestamp() - since) / 60, 2)
    if state.terminal and recorded_status(record) not in TERMINAL:
        # published once, on the transition: the next runs are idle
        gauges[catalog.JOB_SUCCEEDED] = 1.0 if state.status == "succeeded" else 0.0
        gauges[catalog.JOB_FAILED] = 1.0 if state.status == "failed" else 0.0
    return gauges


def _follow_status(
    *,
    settings: Settings,
    aws: Aws,
    record: JobRecord,
    state: JobState,
    cursor: Cursor,
    now: datetime,
) -> dict[str, Any]:
    """Notify (OpenAI-compatible jobs) and update the record when the status changed."""
    changed = record.status != state.raw_status
    new_model = bool(state.fine_tuned_model) and state.fine_tuned_model != record.fine_tuned_model
    if not changed and not new_model:
        return {"status_changed": False}
    requested = False
    if changed and state.status == "succeeded" and settings.evaluation_function:
        request_evaluation(aws, settings.evaluation_function, state)
        requested = True
    notified = False
    # Native jobs are announced by the EventBridge rule; OpenAI-compatible jobs are not
    # known to emit those events ([open]), so the collector announces them itself.
    if changed and state.backend == "openai" and settings.topic_arn:
        step = cursor.steps["train"] if cursor.steps["train"] >= 0 else None
        subject, message = status_message(
            settings.environment, state, record.status, step, cursor.total_steps
        )
        notify(aws.sns, settings.topic_arn, subject, message)
        notified = True
    update_job_record(aws.ssm, settings.job_parameter, state, now)
    return {
        "status_changed": changed,
        "previous_status": record.status,
        "notified": notified,
        "evaluation_requested": requested,
    }


def request_evaluation(aws: Aws, function: str, state: JobState) -> None:
    """Ask the evaluation's start function (asynchronously) to evaluate ``state``'s job."""
    payload = {
        "job_id": state.job_id,
        "backend": state.backend,
        "fine_tuned_model": state.fine_tuned_model,
    }
    aws.lambda_client.invoke(
        FunctionName=function,
        InvocationType="Event",
        Payload=json.dumps(payload, sort_keys=True).encode(),
    )
