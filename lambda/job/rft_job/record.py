"""The handover record: the environment's current job in SSM parameter
``/bedrock-rft/<environment>/job``.

A JSON string ``{"job_id", "backend", "region", "status", "fine_tuned_model" (optional),
"updated_at"}`` plus ``identity`` (the job's identity digest), ``job_name`` (native jobs),
``reward_function_arn`` (the reward Lambda version the job grades with: the evaluation grades
with that same version) and ``orphan_candidates``: jobs a Delete could not stop (a 403, 5xx
after retries, a conflict), each ``{"job_id", "backend", "region", "reason", "noted_at"}``,
kept across later writes (the newest ``MAX_ORPHANS``) so the reconciler and a human see them.
The job custom resource writes it when it starts or adopts a job; the metrics collector reads
it and updates ``status`` / ``fine_tuned_model``. ``status`` is the service's own value (e.g.
``running`` or ``InProgress``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from rft_job import aws
from rft_job.model import JobView

logger = Logger(service="job", child=True)

MAX_ORPHANS = 10


def record_of(
    job: JobView, identity: str | None, reward_function_arn: str | None = None
) -> dict[str, Any]:
    """The record for ``job`` (trained with the reward version ``reward_function_arn``)."""
    record: dict[str, Any] = {
        "job_id": job.job_id,
        "backend": job.backend,
        "region": job.region,
        "status": job.status,
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if job.fine_tuned_model:
        record["fine_tuned_model"] = job.fine_tuned_model
    if job.name:
        record["job_name"] = job.name
    if identity:
        record["identity"] = identity
    if reward_function_arn:
        record["reward_function_arn"] = reward_function_arn
    return record


def read(name: str, region: str) -> dict[str, Any] | None:
    """The record in parameter ``name``, or ``None`` if absent or unreadable as a record."""
    ssm = aws.client("ssm", region)
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except Exception as err:
        if aws.error_code(err) == "ParameterNotFound":
            return None
        raise
    try:
        record = json.loads(value)
    except json.JSONDecodeError:
        logger.warning("job record is not JSON; ignoring it", parameter=name)
        return None
    return record if isinstance(record, dict) and "job_id" in record else None


def write(
    name: str,
    region: str,
    job: JobView,
    identity: str | None,
    reward_function_arn: str | None = None,
) -> None:
    """Record ``job`` as the environment's current job (with the reward version it uses).

    A job keeps grading with the version it started with, while a configuration-only change
    (memory, timeout) publishes a new one and keeps the job: a record that already names
    ``job`` keeps its ``reward_function_arn``. (A job adopted after its record was deleted is
    recorded with the current version, the best knowledge there is without asking the
    service which grader the job names.)
    """
    current = read(name, region)
    if current is not None and current.get("job_id") == job.job_id and reward_function_arn:
        reward_function_arn = current.get("reward_function_arn") or reward_function_arn
    value = record_of(job, identity, reward_function_arn)
    orphans = [o for o in _orphans(current) if o.get("job_id") != job.job_id]
    if orphans:
        value["orphan_candidates"] = orphans
    _put(name, region, value)
    logger.info("recorded job", parameter=name, job_id=job.job_id, status=job.status)


def _orphans(current: dict[str, Any] | None) -> list[dict[str, Any]]:
    raw = (current or {}).get("orphan_candidates")
    return [o for o in raw if isinstance(o, dict)] if isinstance(raw, list) else []


def _put(name: str, region: str, value: dict[str, Any]) -> None:
    aws.client("ssm", region).put_parameter(
        Name=name,
        Value=json.dumps(value, sort_keys=True),
        Type="String",
        Overwrite=True,
        Description="The environment's current RFT job (written by the job custom resource)",
    )


def note_orphan(name: str, region: str, job: JobView, reason: str) -> bool:
    """Add ``job`` to the record's ``orphan_candidates``; ``False`` if there is no record to
    note it in (the error log is then all that says so; the collector needs a ``job_id``, so
    no record is made up)."""
    current = read(name, region)
    if current is None:
        logger.error("no job record to note the orphan candidate in", job_id=job.job_id)
        return False
    entry = {
        "job_id": job.job_id,
        "backend": job.backend,
        "region": job.region,
        "reason": reason,
        "noted_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    orphans = [o for o in _orphans(current) if o.get("job_id") != job.job_id] + [entry]
    _put(name, region, {**current, "orphan_candidates": orphans[-MAX_ORPHANS:]})
    logger.info("noted orphan candidate", parameter=name, job_id=job.job_id)
    return True


def move(old_name: str, new_name: str, region: str, job_id: str) -> None:
    """Move the record naming ``job_id`` from ``old_name`` to ``new_name`` (SSM only)."""
    current = read(old_name, region)
    if current is None or current.get("job_id") != job_id:
        return
    _put(new_name, region, current)
    forget(old_name, region, job_id)


def forget(name: str, region: str, job_id: str) -> None:
    """Delete the record if, and only if, it still names ``job_id``.

    After an Update started a new job, CloudFormation deletes the old one; by then the record
    names the new job and must stay.
    """
    current = read(name, region)
    if current is None or current.get("job_id") != job_id:
        return
    ssm = aws.client("ssm", region)
    try:
        ssm.delete_parameter(Name=name)
    except Exception as err:
        if aws.error_code(err) != "ParameterNotFound":
            raise
    logger.info("removed job record", parameter=name, job_id=job_id)
