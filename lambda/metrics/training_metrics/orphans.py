"""The reconciler: no job of this environment trains without an owner.

Each scheduled run lists the environment's running jobs (``own_jobs``) and compares them with
the job record ``/bedrock-rft/<env>/job``. A running job that the record does not name is an
*orphan*: a deploy that failed or was cancelled left it behind, or CloudFormation did
something nobody foresaw. What happens to it is the environment's ``job.orphans`` setting:

* ``alarm``: report it (``OrphanedJobs`` metric, its alarm, one message on the topic); never
  stop it.
* ``stop``: report it and stop it in the same run.
* ``alarm_then_stop`` (default): report it, and stop it once it has been reported for the
  grace period (so a person has that long to set ``alarm`` and keep it).

Two things protect the jobs of a deploy that is still running:

* **Age.** A job younger than the grace period, measured from the creation time the service
  reports, is never counted, reported or stopped: the custom resource records a job right
  after creating it, but an in-flight deploy may not have written the record yet.
* **The stack's status.** While the environment's stack is ``*_IN_PROGRESS``, nothing is
  counted or stopped: an update records its new job first and stops the replaced one only in
  its clean-up phase, so the replaced job is legitimately unrecorded until then.

Per-job state (when each orphan was first reported) lives in its own SSM parameter
(``/bedrock-rft/<env>/orphans``), so a job is announced once, not on every run. The message
is sent before that state is saved: a failure in between repeats a message, never loses one.
A stop that fails is reported and then fails the run (the reconciler-failing alarm).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from training_metrics import catalog
from training_metrics.own_jobs import JobLister, OwnJob
from training_metrics.publish import notify
from training_metrics.store import read_job_record

ACTIONS = ("alarm", "stop", "alarm_then_stop")
ORPHANED_JOBS = "OrphanedJobs"
MAX_GRACE_MINUTES = 1440
# A standard SSM parameter holds 4 KB; an entry is about 150 bytes.
MAX_STATE_JOBS = 20
MAX_PARAMETER_BYTES = 4096


@dataclass(frozen=True)
class OrphanSettings:
    """The reconciler's configuration, from its Lambda environment variables."""

    environment: str
    backend: str
    name_prefix: str
    job_parameter: str
    state_parameter: str
    action: str
    grace: timedelta
    topic_arn: str | None = None
    namespace: str = catalog.NAMESPACE
    stack_name: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OrphanSettings:
        """Read ``RFT_ENVIRONMENT`` (required), ``RFT_BACKEND``, ``JOB_NAME_PREFIX``,
        ``JOB_PARAMETER``, ``ORPHANS_PARAMETER``, ``ORPHAN_ACTION``,
        ``ORPHAN_GRACE_MINUTES``, ``TOPIC_ARN``, ``METRICS_NAMESPACE`` and ``STACK_NAME``."""
        env = os.environ if env is None else env
        name = env.get("RFT_ENVIRONMENT", "")
        if not name:
            raise ValueError("environment variable RFT_ENVIRONMENT is not set")
        backend = env.get("RFT_BACKEND", "openai")
        if backend not in ("openai", "bedrock"):
            raise ValueError(
                f"environment variable RFT_BACKEND = {backend!r}; allowed: openai, bedrock"
            )
        action = env.get("ORPHAN_ACTION", "alarm_then_stop")
        if action not in ACTIONS:
            raise ValueError(
                f"environment variable ORPHAN_ACTION = {action!r}; allowed: {', '.join(ACTIONS)}"
            )
        raw_grace = env.get("ORPHAN_GRACE_MINUTES", "60")
        try:
            grace = int(raw_grace)
        except ValueError:
            grace = 0
        if not 1 <= grace <= MAX_GRACE_MINUTES:
            raise ValueError(
                f"environment variable ORPHAN_GRACE_MINUTES = {raw_grace!r}: "
                f"must be a whole number of minutes from 1 to {MAX_GRACE_MINUTES}"
            )
        return cls(
            environment=name,
            backend=backend,
            name_prefix=env.get("JOB_NAME_PREFIX") or f"rft-{name}",
            job_parameter=env.get("JOB_PARAMETER") or f"/bedrock-rft/{name}/job",
            state_parameter=env.get("ORPHANS_PARAMETER") or f"/bedrock-rft/{name}/orphans",
            action=action,
            grace=timedelta(minutes=grace),
            topic_arn=env.get("TOPIC_ARN") or None,
            namespace=env.get("METRICS_NAMESPACE") or catalog.NAMESPACE,
            stack_name=env.get("STACK_NAME") or None,
        )


@dataclass(frozen=True)
class OrphanAws:
    """The AWS clients a run uses (``cloudformation`` only with ``stack_name``)."""

    ssm: Any
    cloudwatch: Any
    sns: Any
    cloudformation: Any = None


class StopFailedError(RuntimeError):
    """Stopping one or more orphans failed (after they were reported)."""


def reconcile(
    *, settings: OrphanSettings, aws: OrphanAws, lister: JobLister, now: datetime
) -> dict[str, Any]:
    """One run: find, report and (by the setting) stop orphans; returns a summary."""
    record = read_job_record(aws.ssm, settings.job_parameter)
    current = record.job_id if record is not None else None
    running = lister.running()
    unrecorded = [job for job in running if job.job_id != current]
    young = [job for job in unrecorded if now - job.created_at < settings.grace]
    aged = [job for job in unrecorded if job not in young]
    deploy = _deploy_in_progress(aws, settings.stack_name) if aged else None
    orphans = [] if deploy else aged

    loaded = _load_state(aws.ssm, settings.state_parameter)
    state = dict(loaded)
    lines: list[str] = []
    stopped: list[str] = []
    failed: list[str] = []
    for job in orphans:
        entry = state.get(job.job_id)
        reported = _reported_at(entry) or now
        is_new = entry is None
        if is_new:
            state[job.job_id] = {"reported": reported.timestamp()}
        if _due(settings, reported, now):
            if _recorded_now(aws, settings, job):
                # a deploy recorded it since this run read the record: it has an owner
                state.pop(job.job_id, None)
                continue
            try:
                if lister.stop(job):
                    stopped.append(job.job_id)
                    lines.append(_line(job, now, "stopped now"))
                elif is_new:
                    lines.append(_line(job, now, "ended by itself before it could be stopped"))
                state.pop(job.job_id, None)
            except Exception as err:
                failed.append(job.job_id)
                if not state[job.job_id].get("stop_failed"):  # announced once; the alarm stays
                    lines.append(_line(job, now, f"stopping it FAILED ({err}); stop it by hand"))
                state[job.job_id] = {**state[job.job_id], "stop_failed": True}
        elif is_new:
            lines.append(_line(job, now, _fate(settings, reported)))

    _publish(aws.cloudwatch, settings, len(orphans), now)
    if lines and settings.topic_arn:
        subject, message = _message(settings, current, lines, len(orphans), len(stopped))
        notify(aws.sns, settings.topic_arn, subject, message)
    # Forget jobs that are no longer unrecorded and running (stopped, ended, or recorded).
    keep = {job.job_id for job in unrecorded}
    _save_state(aws.ssm, settings.state_parameter, state, keep, loaded)
    summary: dict[str, Any] = {
        "action": settings.action,
        "recorded_job": current,
        "running": [job.job_id for job in running],
        "orphans": [job.job_id for job in orphans],
        "within_grace": [job.job_id for job in young],
        "deferred_for_deploy": [job.job_id for job in aged] if deploy else [],
        "stack_status": deploy,
        "stopped": stopped,
        "notified": bool(lines and settings.topic_arn),
    }
    if failed:
        raise StopFailedError(
            f"could not stop orphaned jobs {', '.join(failed)} (reported on the topic)"
        )
    return summary


def _recorded_now(aws: OrphanAws, settings: OrphanSettings, job: OwnJob) -> bool:
    """Whether the record names ``job`` now (read again right before a stop)."""
    record = read_job_record(aws.ssm, settings.job_parameter)
    return record is not None and record.job_id == job.job_id


def _due(settings: OrphanSettings, reported: datetime, now: datetime) -> bool:
    if settings.action == "stop":
        return True
    if settings.action == "alarm":
        return False
    return now - reported >= settings.grace


def _fate(settings: OrphanSettings, reported: datetime) -> str:
    if settings.action == "alarm":
        return "left running (job.orphans.action is alarm): stop it if nobody needs it"
    stop_at = (reported + settings.grace).isoformat(timespec="minutes")
    return (
        f"will be stopped after {stop_at} unless job.orphans.action is set to alarm "
        "(and deployed) before then"
    )


def _line(job: OwnJob, now: datetime, fate: str) -> str:
    minutes = int((now - job.created_at).total_seconds() // 60)
    return (
        f"- {job.job_id} ({job.label}), status {job.status}, created "
        f"{job.created_at.isoformat(timespec='minutes')} ({minutes} min ago): {fate}"
    )


def _message(
    settings: OrphanSettings, current: str | None, lines: list[str], found: int, stopped: int
) -> tuple[str, str]:
    subject = (
        f"[bedrock-rft {settings.environment}] {found} orphaned RFT job"
        f"{'' if found == 1 else 's'}" + (f", {stopped} stopped" if stopped else "")
    )
    body = [
        f"Environment {settings.environment} started these jobs, they are still running (and "
        "may be billing), and its job record does not name them as its current job "
        f"({'the record names ' + current if current else 'no job is recorded'}).",
        "",
        *lines,
        "",
        f"Setting: job.orphans.action = {settings.action}, grace "
        f"{int(settings.grace.total_seconds() // 60)} minutes (see docs/observability.md).",
    ]
    subject = "".join(ch for ch in subject if ch.isprintable())[:100]
    return subject, "\n".join(body)


def _deploy_in_progress(aws: OrphanAws, stack_name: str | None) -> str | None:
    """The stack's status while a deploy, update or rollback is running, else ``None``.

    A failure to read it fails the run: acting without knowing could stop a deploy's job.
    """
    if not stack_name or aws.cloudformation is None:
        return None
    stacks = aws.cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    status = str(stacks[0]["StackStatus"]) if stacks else ""
    return status if status.endswith("_IN_PROGRESS") else None


def _publish(cloudwatch: Any, settings: OrphanSettings, count: int, now: datetime) -> None:
    """``OrphanedJobs`` (every run, zero too, so the alarm returns to OK)."""
    cloudwatch.put_metric_data(
        Namespace=settings.namespace,
        MetricData=[
            {
                "MetricName": ORPHANED_JOBS,
                "Dimensions": [{"Name": "Environment", "Value": settings.environment}],
                "Timestamp": now,
                "Value": float(count),
                "Unit": "Count",
            }
        ],
    )


def _load_state(ssm: Any, name: str) -> dict[str, Any]:
    try:
        text = str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        # Damaged state only delays a stop by one grace period (the job is reported anew).
        return {}
    jobs = raw.get("jobs") if isinstance(raw, dict) else None
    return dict(jobs) if isinstance(jobs, dict) else {}


def _stamp(entry: Any) -> float:
    value = entry.get("reported") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def _reported_at(entry: Any) -> datetime | None:
    value = entry.get("reported") if isinstance(entry, dict) else None
    if not isinstance(value, (int, float)):
        return None
    return datetime.fromtimestamp(value, UTC)


def _save_state(
    ssm: Any, name: str, state: dict[str, Any], keep: set[str], loaded: dict[str, Any]
) -> None:
    """Write the state if it changed: only jobs still unrecorded and running, the most
    recently reported first when the parameter's size forces a choice."""
    entries = sorted(
        ((job_id, entry) for job_id, entry in state.items() if job_id in keep),
        key=lambda item: (-_stamp(item[1]), item[0]),
    )[:MAX_STATE_JOBS]
    while True:
        value = json.dumps({"jobs": dict(sorted(entries))}, separators=(",", ":"))
        if len(value.encode()) <= MAX_PARAMETER_BYTES or len(entries) <= 1:
            break
        entries = entries[:-1]
    if dict(entries) == loaded:
        return
    ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
