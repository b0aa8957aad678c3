"""What Create, Update and Delete do to the environment's fine-tuning job.

- **Create** adopts an active or succeeded job of the same identity (a retried Create, or a
  redeploy after the stack was deleted with ``retain``) or starts one, records it in SSM and
  returns its id as the physical id. If anything fails after the job started, the job is
  cancelled and its uploads deleted before raising: CloudFormation sends no Delete for a
  failed Create.
- **is_complete** (after Create, or an Update that started a job) waits until the service has
  accepted the data (``wait_for_validation``), raising with the service's failure text if it
  rejects it, and cancelling the job itself before the Provider framework's own timeout would
  leave it running unrecorded. What "accepted" means per backend: OpenAI-compatible, the job
  left ``validating_files`` (``queued``, ``running`` or ``succeeded``); native, the validation
  sub-status is ``Completed``, or, when the job reports no sub-status at all, it is
  ``InProgress`` (see ``bedrock_backend``: the deploy cannot tell more).
- **Update** with an unchanged identity keeps the physical id and the job. A changed identity
  starts (or adopts) the new job and returns its id; CloudFormation then sends Delete for the
  old id (after the whole update succeeded; a rollback instead sends an Update back to the
  old inputs, which adopts the old job again).
- **Delete** cancels an active job (or leaves it, with ``on_delete: retain``); a finished,
  cancelled or unknown job is success. A succeeded job's model is deleted only when the
  environment opted in.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from rft_job import bedrock_backend, record
from rft_job.identity import Identity, identity_of
from rft_job.model import JobBackend, JobError, JobView, Phase
from rft_job.spec import JobSpec, PropertyError, delete_policy, parse_spec

logger = Logger(service="job", child=True)

WAIT_TIMEOUT_ENV = "JOB_WAIT_TIMEOUT_SECONDS"
# The Provider framework gives up after its total timeout (50 minutes in the construct) and
# fails the resource without telling the handler; the handler stops waiting first.
DEFAULT_WAIT_TIMEOUT_SECONDS = 2700

BackendFactory = Callable[[str, str], JobBackend]


def make_backend(name: str, region: str) -> JobBackend:
    """The backend called ``name`` for ``region``."""
    if name == "bedrock":
        return bedrock_backend.BedrockBackend(region)
    # The openai SDK is heavy: only functions of the openai backend pay for importing it.
    from rft_job.openai_backend import OpenAIBackend

    return OpenAIBackend(region)


def on_event(event: dict[str, Any], backends: BackendFactory = make_backend) -> dict[str, Any]:
    """The Provider framework's ``onEvent``: dispatch on ``RequestType``."""
    request = event.get("RequestType")
    logger.info(
        "custom resource event",
        request_type=request,
        logical_id=event.get("LogicalResourceId"),
        physical_id=event.get("PhysicalResourceId"),
    )
    if request == "Create":
        return _start(parse_spec(event.get("ResourceProperties")), backends)
    if request == "Update":
        return _update(event, backends)
    if request == "Delete":
        return _delete(event, backends)
    raise PropertyError(f"RequestType = {request!r}: must be Create, Update or Delete")


def is_complete(event: dict[str, Any], backends: BackendFactory = make_backend) -> dict[str, Any]:
    """The Provider framework's ``isComplete``: has the service accepted the new job's data
    (as far as the backend can tell, see the module docstring)?"""
    data = event.get("Data") or {}
    if event.get("RequestType") == "Delete" or data.get("AwaitValidation") != "true":
        return {"IsComplete": True}
    spec = parse_spec(event.get("ResourceProperties"))
    job_id = str(event.get("PhysicalResourceId", ""))
    backend = backends(spec.backend, spec.region)
    job = backend.describe(job_id)
    if job is None:
        raise JobError(f"RFT job {job_id} is no longer known to the {spec.backend} service")
    if job.phase is Phase.VALIDATING:
        waited = time.time() - float(data.get("StartedAt") or 0)
        limit = wait_timeout_seconds()
        if waited <= limit:
            logger.info("waiting for the service to accept the data", job_id=job_id)
            return {"IsComplete": False}
        _discard(backend, job, spec)
        raise JobError(
            f"RFT job {job_id} was still validating its data after {int(waited // 60)} minutes "
            "and was cancelled, so that no job runs unrecorded; deploy again, or set "
            "job.wait_for_validation to false"
        )
    if job.phase in (Phase.RUNNING, Phase.SUCCEEDED):
        record.write(
            spec.parameter_name,
            spec.region,
            job,
            identity_of(spec).digest,
            spec.grader_function_arn,
        )
        done: dict[str, Any] = {"IsComplete": True, "Data": {"Status": job.status}}
        if not job.validation_reported:
            logger.warning(
                "the service reports no validation status for this job: it runs and has not "
                "failed, whether its data was accepted shows only later",
                job_id=job_id,
            )
            done["Data"]["Validation"] = "not reported"
        return done
    # Failed, or cancelled/stopped by someone before the data was accepted.
    backend.release(job)
    record.forget(spec.parameter_name, spec.region, job.job_id)
    reason = job.failure or "the service gave no reason"
    verb = "failed" if job.phase is Phase.FAILED else f"ended ({job.status})"
    raise JobError(f"RFT job {job_id} {verb} before training started: {reason}")


def wait_timeout_seconds() -> float:
    """How long ``is_complete`` waits for the data to be accepted."""
    raw = os.environ.get(WAIT_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_WAIT_TIMEOUT_SECONDS
    try:
        return float(raw)
    except ValueError:
        raise PropertyError(f"{WAIT_TIMEOUT_ENV} = {raw!r}: must be a number of seconds") from None


# -- Create / Update --------------------------------------------------------------------------


def _describe_spec(spec: JobSpec) -> str:
    return f"environment '{spec.environment}' ({spec.backend}, {spec.base_model})"


def _start(spec: JobSpec, backends: BackendFactory) -> dict[str, Any]:
    backend = backends(spec.backend, spec.region)
    identity = identity_of(spec)
    lookup = backend.find(spec, identity)
    job = lookup.reusable or _from_record(spec, identity, backend)
    created = job is None
    if job is None:
        try:
            job = backend.create(spec, identity, lookup.attempts + 1)
        except Exception as err:
            leftover = _cancel_strays(spec, identity, backend)
            raise JobError(
                f"RFT job for {_describe_spec(spec)} could not be started: {err}{leftover}"
            ) from err
    else:
        logger.info("adopting the existing job of this identity", job_id=job.job_id)
    try:
        record.write(
            spec.parameter_name, spec.region, job, identity.digest, spec.grader_function_arn
        )
    except Exception as err:
        outcome = ""
        if created:
            try:
                _discard(backend, job, spec)
                outcome = "; the job was cancelled"
            except Exception as cleanup:
                logger.exception("could not cancel the unrecorded job", job_id=job.job_id)
                outcome = f"; cancelling it failed too ({cleanup}): stop it by hand"
        raise JobError(
            f"RFT job {job.job_id} could not be recorded in SSM parameter "
            f"{spec.parameter_name}: {err}{outcome}"
        ) from err
    return _response(job, identity, await_validation=spec.wait_for_validation)


def _update(event: dict[str, Any], backends: BackendFactory) -> dict[str, Any]:
    spec = parse_spec(event.get("ResourceProperties"))
    old_id = str(event.get("PhysicalResourceId", ""))
    try:
        old: JobSpec | None = parse_spec(event.get("OldResourceProperties"))
    except PropertyError as err:
        logger.warning("old properties unreadable; treating the update as a change", error=str(err))
        old = None
    identity = identity_of(spec)
    if old is None or identity_of(old).digest != identity.digest:
        logger.info("job-defining inputs changed; starting the new job", old_job_id=old_id)
        return _start(spec, backends)
    backend = backends(spec.backend, spec.region)
    job = backend.describe(old_id)
    if job is None:
        logger.warning("the current job is unknown to the service; starting one", job_id=old_id)
        return _start(spec, backends)
    current = record.read(spec.parameter_name, spec.region)
    if current is None or current.get("job_id") != job.job_id:
        record.write(
            spec.parameter_name, spec.region, job, identity.digest, spec.grader_function_arn
        )
    if old.parameter_name != spec.parameter_name:
        record.forget(old.parameter_name, old.region, job.job_id)
    logger.info("job-defining inputs unchanged; keeping the job", job_id=job.job_id)
    return _response(job, identity, await_validation=False)


def _from_record(spec: JobSpec, identity: Identity, backend: JobBackend) -> JobView | None:
    """The job the SSM record names, if it has this identity and can be reused.

    Covers a service that renames uploaded files [open; settled by the ``filename`` a first
    deploy's upload comes back with] (the OpenAI-compatible backend finds jobs by their
    training file's name): the record is written right after the job starts.
    """
    current = record.read(spec.parameter_name, spec.region)
    if (
        current is None
        or current.get("identity") != identity.digest
        or current.get("backend") != spec.backend
    ):
        return None
    job = backend.describe(str(current["job_id"]))
    return job if job is not None and job.phase.reusable else None


def _cancel_strays(spec: JobSpec, identity: Identity, backend: JobBackend) -> str:
    """After a failed create, stop any job of this identity the failed call left behind."""
    try:
        stray = backend.find(spec, identity).reusable
        if stray is not None and stray.phase.active:
            _discard(backend, stray, spec)
            return f" (the half-created job {stray.job_id} was cancelled)"
    except Exception as err:  # report the original failure, but say the check failed
        logger.exception("could not check for a half-created job")
        return f" (checking for a half-created job failed too: {err})"
    return ""


def _discard(backend: JobBackend, job: JobView, spec: JobSpec) -> None:
    """Cancel a job this resource started, delete its uploads, and drop its record."""
    if job.phase.active:
        backend.cancel(job)
    backend.release(job)
    try:
        record.forget(spec.parameter_name, spec.region, job.job_id)
    except Exception:  # the job is stopped; a stale record is the lesser problem
        logger.exception("could not remove the job record", parameter=spec.parameter_name)


def _response(job: JobView, identity: Identity, *, await_validation: bool) -> dict[str, Any]:
    return {
        "PhysicalResourceId": job.job_id,
        "Data": {
            "JobId": job.job_id,
            "JobName": job.name or "",
            "Backend": job.backend,
            "Region": job.region,
            "Status": job.status,
            "Identity": identity.digest,
            "AwaitValidation": "true" if await_validation and job.phase.active else "false",
            "StartedAt": str(int(time.time())),
        },
    }


# -- Delete -----------------------------------------------------------------------------------


def _replaced(parameter_name: str | None, region: str, job_id: str) -> bool:
    """Whether this Delete is the clean-up after an Update that started another job.

    The event does not say; the record does: an Update records its new job before
    CloudFormation deletes the old one, a stack deletion finds the record still naming it.
    Models are deleted on destroy only, never because a newer job replaced them.
    """
    if not parameter_name:
        return False
    current = record.read(parameter_name, region)
    return current is not None and current.get("job_id") != job_id


def _delete(event: dict[str, Any], backends: BackendFactory) -> dict[str, Any]:
    job_id = str(event.get("PhysicalResourceId", ""))
    # CloudFormation's clean-up Delete after an Update may carry either property set [open]:
    # the id itself says which backend and region the job lives in where it can.
    policy = delete_policy(event.get("ResourceProperties"))
    if bedrock_backend.is_job_id(job_id):
        name, region = "bedrock", bedrock_backend.region_of(job_id)
    else:
        name, region = policy.backend or "openai", policy.region
    region = region or os.environ.get("AWS_REGION")
    if not region:
        raise PropertyError("ResourceProperties.Region: missing, and AWS_REGION is not set")
    backend = backends(name, region)
    job = backend.describe(job_id)
    if job is None:
        logger.info("job unknown to the service; nothing to stop", job_id=job_id)
    elif job.phase.active and policy.on_delete == "retain":
        logger.info("on_delete is retain: leaving the job running", job_id=job_id)
        return {"PhysicalResourceId": job_id}
    elif job.phase.active:
        backend.cancel(job)
        backend.release(job)
    elif job.phase is Phase.SUCCEEDED:
        if policy.delete_model_on_destroy:
            if _replaced(policy.parameter_name, region, job_id):
                logger.info("job replaced by an update; keeping its model", job_id=job_id)
            else:
                backend.delete_model(job)
        # A succeeded job's uploads stay: their names carry its identity, so a later deploy
        # of the same inputs adopts the trained model instead of training it again.
    else:
        backend.release(job)
    if policy.parameter_name:
        record.forget(policy.parameter_name, region, job_id)
    return {"PhysicalResourceId": job_id}
