"""The handover record: the environment's current job in SSM parameter
``/bedrock-rft/<environment>/job``.

A JSON string ``{"job_id", "backend", "region", "status", "fine_tuned_model" (optional),
"updated_at"}`` plus ``identity`` (the job's identity digest) and ``reward_function_arn`` (the
reward Lambda version the job grades with: the evaluation grades with that same version).
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
    current = read(name, region) if reward_function_arn else None
    if current is not None and current.get("job_id") == job.job_id:
        reward_function_arn = current.get("reward_function_arn") or reward_function_arn
    ssm = aws.client("ssm", region)
    ssm.put_parameter(
        Name=name,
        Value=json.dumps(record_of(job, identity, reward_function_arn), sort_keys=True),
        Type="String",
        Overwrite=True,
        Description="The environment's current RFT job (written by the job custom resource)",
    )
    logger.info("recorded job", parameter=name, job_id=job.job_id, status=job.status)


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
