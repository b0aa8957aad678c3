"""What Create, Update and Delete do to the environment's fine-tuning job.

- **Create** adopts an active or succeeded job of the same identity (a retried Create, or a
  redeploy after the stack was deleted with ``retain``) or starts one, records it in SSM and
  returns its id as the physical id. If anything fails after the job started, the job is
  cancelled and its uploads deleted before raising: the Provider framework answers a failed
  Create with a marker id and drops the Delete that follows, so nothing else would stop it.
  On the OpenAI-compatible backend, files still being processed (or a create whose answer
  was lost) are handed to ``is_complete`` under a provisional id (``<name stem>-pending``):
  ``on_event`` never sleeps towards its timeout.
- **is_complete** finishes such a create (never resending one that may have started a job),
  then waits until the service has accepted the data (``wait_for_validation``), raising with
  the service's failure text if it rejects it, and cancelling the job itself before the
  Provider framework's own timeout would leave it running unrecorded. What "accepted" means
  per backend: OpenAI-compatible, the job left ``validating_files`` (``queued``, ``running``
  or ``succeeded``); native, the validation sub-status is ``Completed``, or, when the job
  reports no sub-status at all, it is ``InProgress`` (see ``bedrock_backend``).
- **Update** with an unchanged identity keeps the physical id and the job without calling the
  endpoint (tags, ``on_delete``, waiting: nothing the running job sees; ``JobTags`` apply to
  the next job only). A changed identity starts (or adopts) the new job and returns its id;
  CloudFormation then sends Delete for the old id. An Update during a **rollback** (stack
  status ``*ROLLBACK*``) returns to a job of the old inputs only if it is still useful
  (running or succeeded), never starts one, and stops every running job of the abandoned
  inputs (the cancelled update's job never reached CloudFormation, which will send it no
  Delete). ``Data.Reason`` says which.
- **Delete** cancels an active job; with ``on_delete: retain`` it leaves it only while the
  stack is being deleted (``DELETE_*``), never in a rollback or clean-up. A Delete whose id
  the service does not know (CloudFormation generates one after a cancelled Create) finds
  the job through the identity of its properties and stops it, unless the stack is deploying
  normally and the record names it. A stop that fails notes the job as an orphan candidate
  in the record, logs an error and fails the Delete. A finished, cancelled or unknown job is
  success; a succeeded job's model is deleted only when the environment opted in.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from rft_job import bedrock_backend, record
from rft_job.deadline import Deadline
from rft_job.identity import Identity, identity_of
from rft_job.model import AmbiguousCreateError, JobBackend, JobError, JobView, PendingFiles, Phase
from rft_job.spec import JobSpec, PropertyError, delete_policy, parse_spec
from rft_job.stack import StackPhase, stack_phase

logger = Logger(service="job", child=True)

WAIT_TIMEOUT_ENV = "JOB_WAIT_TIMEOUT_SECONDS"
# The Provider framework gives up after its total timeout (50 minutes in the construct) and
# fails the resource without telling the handler; the handler stops waiting first.
DEFAULT_WAIT_TIMEOUT_SECONDS = 2700
# How long is_complete looks for the job of a create whose answer was lost before failing
# (several listings, 30 s apart): it never resends the create.
AMBIGUOUS_GRACE_SECONDS = 300
PENDING_SUFFIX = "-pending"

BackendFactory = Callable[[str, str], JobBackend]


def make_backend(name: str, region: str) -> JobBackend:
    """The backend called ``name`` for ``region``."""
    if name == "bedrock":
        return bedrock_backend.BedrockBackend(region)
    # The openai SDK is heavy: only functions of the openai backend pay for importing it.
    from rft_job.openai_backend import OpenAIBackend

    return OpenAIBackend(region)


def on_event(
    event: dict[str, Any],
    backends: BackendFactory = make_backend,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """The Provider framework's ``onEvent``: dispatch on ``RequestType``."""
    deadline = deadline or Deadline.unbounded()
    request = event.get("RequestType")
    logger.info(
        "custom resource event",
        request_type=request,
        logical_id=event.get("LogicalResourceId"),
        physical_id=event.get("PhysicalResourceId"),
    )
    if request == "Create":
        return _start(parse_spec(event.get("ResourceProperties")), backends, deadline)
    if request == "Update":
        return _update(event, backends, deadline)
    if request == "Delete":
        return _delete(event, backends)
    raise PropertyError(f"RequestType = {request!r}: must be Create, Update or Delete")


def is_complete(
    event: dict[str, Any],
    backends: BackendFactory = make_backend,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """The Provider framework's ``isComplete``: finish a pending create, then: has the
    service accepted the new job's data (as far as the backend can tell)?"""
    deadline = deadline or Deadline.unbounded()
    data = event.get("Data") or {}
    pending = _pending_of(data)
    if event.get("RequestType") == "Delete" or (
        pending is None and data.get("AwaitValidation") != "true"
    ):
        return {"IsComplete": True}
    spec = parse_spec(event.get("ResourceProperties"))
    backend = backends(spec.backend, spec.region)
    waited = time.time() - float(data.get("StartedAt") or 0)
    finished: dict[str, Any] | None = None
    if pending is not None:
        created = _resume(spec, backend, pending, waited, deadline)
        if created is None:
            return {"IsComplete": False}
        # The job's own state, not the listing's copy of it.
        job = backend.describe(created.job_id) or created
        finished = _response(job, identity_of(spec), await_validation=False)
        finished["Data"]["PendingFiles"] = ""
        if not spec.wait_for_validation and job.phase.reusable:
            return {"IsComplete": True, **finished}
    else:
        job_id = str(event.get("PhysicalResourceId", ""))
        described = backend.describe(job_id)
        if described is None:
            raise JobError(f"RFT job {job_id} is no longer known to the {spec.backend} service")
        job = described
    job_id = job.job_id
    if job.phase is Phase.VALIDATING:
        limit = wait_timeout_seconds()
        if waited <= limit:
            # After a pending create, the next poll finds the job through its identity again
            # (the framework passes every poll the same event).
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
        if finished is not None:
            done = {"IsComplete": True, **finished}
            done["Data"]["Status"] = job.status
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


def _start(spec: JobSpec, backends: BackendFactory, deadline: Deadline) -> dict[str, Any]:
    backend = backends(spec.backend, spec.region)
    identity = identity_of(spec)
    lookup = backend.find(spec, identity)
    job = lookup.reusable or _from_record(spec, identity, backend)
    created = job is None
    if job is None:
        try:
            made = backend.create(spec, identity, lookup.attempts + 1, deadline)
        except Exception as err:
            leftover = (
                ""
                if isinstance(err, AmbiguousCreateError)
                else _cancel_strays(spec, identity, backend)
            )
            raise JobError(
                f"RFT job for {_describe_spec(spec)} could not be started: {err}{leftover}"
            ) from err
        if isinstance(made, PendingFiles):
            return _pending_response(spec, identity, made)
        job = made
    else:
        logger.info("adopting the existing job of this identity", job_id=job.job_id)
    _record(spec, backend, job, identity, created=created)
    return _response(job, identity, await_validation=spec.wait_for_validation)


def _record(
    spec: JobSpec, backend: JobBackend, job: JobView, identity: Identity, *, created: bool
) -> None:
    """Record ``job``; if that fails, cancel it when this invocation started it."""
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


def _pending_of(data: dict[str, Any]) -> PendingFiles | None:
    files = str(data.get("PendingFiles") or "")
    if not files:
        return None
    return PendingFiles(files=tuple(files.split(",")), create_sent=data.get("CreateSent") == "true")


def _pending_response(spec: JobSpec, identity: Identity, pending: PendingFiles) -> dict[str, Any]:
    """``on_event``'s answer for a create ``is_complete`` finishes: a provisional id, which a
    Delete (after a cancellation or a failure) resolves through the identity."""
    return {
        "PhysicalResourceId": identity.name_stem + PENDING_SUFFIX,
        "Data": {
            "PendingFiles": ",".join(pending.files),
            "CreateSent": "true" if pending.create_sent else "false",
            "Backend": spec.backend,
            "Region": spec.region,
            "Identity": identity.digest,
            "StartedAt": str(int(time.time())),
        },
    }


def _resume(
    spec: JobSpec, backend: JobBackend, pending: PendingFiles, waited: float, deadline: Deadline
) -> JobView | None:
    """The job of a pending create, recorded; ``None`` while it is not there yet."""
    identity = identity_of(spec)
    try:
        job = backend.resume(spec, identity, pending, deadline)
    except Exception as err:
        raise JobError(f"RFT job for {_describe_spec(spec)} could not be started: {err}") from err
    if job is None:
        if pending.create_sent and waited > AMBIGUOUS_GRACE_SECONDS:
            raise JobError(
                f"RFT job for {_describe_spec(spec)}: the create got no clear answer and no job "
                f"of this identity showed within {AMBIGUOUS_GRACE_SECONDS} s; not resent (the "
                "Delete that follows stops one that shows later); deploy again"
            )
        if not pending.create_sent and waited > wait_timeout_seconds():
            raise JobError(
                f"RFT job for {_describe_spec(spec)}: the uploaded files were still being "
                f"processed after {int(waited // 60)} minutes; deploy again"
            )
        return None
    _record(spec, backend, job, identity, created=True)
    return job


def _update(event: dict[str, Any], backends: BackendFactory, deadline: Deadline) -> dict[str, Any]:
    spec = parse_spec(event.get("ResourceProperties"))
    old_id = str(event.get("PhysicalResourceId", ""))
    try:
        old: JobSpec | None = parse_spec(event.get("OldResourceProperties"))
    except PropertyError as err:
        logger.warning("old properties unreadable; treating the update as a change", error=str(err))
        old = None
    identity = identity_of(spec)
    if old is not None and identity_of(old).digest == identity.digest:
        return _keep(spec, old, old_id, identity, backends, deadline=deadline)
    phase = stack_phase(event.get("StackId"))
    if phase is StackPhase.ROLLBACK:
        return _roll_back(spec, old, old_id, identity, backends)
    if phase is StackPhase.UNKNOWN:
        # Safe side for an Update: a normal update (its job is started, as the user asked);
        # treating it as a rollback would silently deploy no job for the new inputs.
        logger.warning("stack status unknown; treating the update as a normal one")
    logger.info("job-defining inputs changed; starting the new job", old_job_id=old_id)
    return _start(spec, backends, deadline)


def _keep(
    spec: JobSpec,
    old: JobSpec,
    job_id: str,
    identity: Identity,
    backends: BackendFactory,
    *,
    deadline: Deadline,
) -> dict[str, Any]:
    """An update that changes no job input: keep the job, call the endpoint only if the
    record must be rebuilt (an outage must not fail a tags-only update, nor its rollback)."""
    if old.parameter_name != spec.parameter_name:
        record.move(old.parameter_name, spec.parameter_name, spec.region, job_id)
    current = record.read(spec.parameter_name, spec.region)
    if current is not None and current.get("job_id") == job_id:
        logger.info("job-defining inputs unchanged; keeping the job", job_id=job_id)
        return {
            "PhysicalResourceId": job_id,
            "Data": _data(
                job_id,
                current.get("job_name"),
                spec,
                str(current.get("status") or ""),
                identity,
            ),
        }
    backend = backends(spec.backend, spec.region)
    job = backend.describe(job_id)
    if job is None:
        logger.warning("the current job is unknown to the service; starting one", job_id=job_id)
        return _start(spec, backends, deadline)
    record.write(spec.parameter_name, spec.region, job, identity.digest, spec.grader_function_arn)
    logger.info("job-defining inputs unchanged; keeping the job", job_id=job.job_id)
    return _response(job, identity, await_validation=False)


def _roll_back(
    spec: JobSpec,
    abandoned: JobSpec | None,
    physical_id: str,
    identity: Identity,
    backends: BackendFactory,
) -> dict[str, Any]:
    """CloudFormation's Update back to the old inputs: return to their job if it is still
    useful, start none, stop the abandoned inputs' running jobs."""
    backend = backends(spec.backend, spec.region)
    lookup = backend.find(spec, identity)
    target = lookup.reusable
    stopped: list[str] = []
    if abandoned is not None:
        other = backends(abandoned.backend, abandoned.region)
        for job in other.find(abandoned, identity_of(abandoned)).active:
            if target is None or job.job_id != target.job_id:
                _stop(other, job, abandoned.parameter_name, abandoned.region, "rollback")
                record.forget(abandoned.parameter_name, abandoned.region, job.job_id)
                stopped.append(job.job_id)
    note = f"; stopped the abandoned job {', '.join(stopped)}" if stopped else ""
    if target is not None:
        record.write(
            spec.parameter_name, spec.region, target, identity.digest, spec.grader_function_arn
        )
        reason = f"rollback: returned to job {target.job_id} ({target.status}){note}"
        logger.info(reason)
        response = _response(target, identity, await_validation=False)
        response["Data"]["Reason"] = reason
        return response
    newest = lookup.jobs[0] if lookup.jobs else None
    keep_id = newest.job_id if newest is not None else physical_id
    record.forget(spec.parameter_name, spec.region, keep_id)
    ended = f"job {newest.job_id} ended ({newest.status})" if newest else "no job is known"
    reason = (
        f"rollback: the previous inputs' {ended}, and a rollback starts no job; deploy again "
        f"to start one{note}"
    )
    logger.warning(reason)
    status = newest.status if newest is not None else ""
    data = _data(keep_id, newest.name if newest else None, spec, status, identity)
    data["Reason"] = reason
    return {"PhysicalResourceId": keep_id, "Data": data}


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


def _data(job_id: str, name: Any, spec: JobSpec, status: str, identity: Identity) -> dict[str, Any]:
    return {
        "JobId": job_id,
        "JobName": str(name or ""),
        "Backend": spec.backend,
        "Region": spec.region,
        "Status": status,
        "Identity": identity.digest,
        "AwaitValidation": "false",
        "StartedAt": str(int(time.time())),
    }


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


def _stop(
    backend: JobBackend, job: JobView, parameter_name: str | None, region: str, why: str
) -> None:
    """Cancel ``job`` and delete its uploads; if the cancel fails, note the job as an orphan
    candidate in the record, log an error and raise: never abandoned silently (a failed
    clean-up Delete does not fail the stack, so the note and the log are what is left)."""
    try:
        backend.cancel(job)
    except Exception as err:
        logger.error(
            "could not stop the RFT job; it keeps running",
            job_id=job.job_id,
            orphan_candidate=True,
            stage=why,
            error=str(err),
        )
        noted = ""
        if parameter_name:
            try:
                if record.note_orphan(parameter_name, region, job, f"{why}: {err}"):
                    noted = f"; noted as an orphan candidate in {parameter_name}"
            except Exception:
                logger.exception("could not note the orphan candidate", job_id=job.job_id)
        raise JobError(
            f"could not stop RFT job {job.job_id} ({why}): {err}{noted}; it keeps running "
            "until stopped by hand or by the reconciler"
        ) from err
    backend.release(job)


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
    phases: list[StackPhase] = []

    def phase() -> StackPhase:
        if not phases:
            phases.append(stack_phase(event.get("StackId")))
        return phases[0]

    backend = backends(name, region)
    try:
        job = None if job_id.endswith(PENDING_SUFFIX) else backend.describe(job_id)
    except Exception as err:
        raise JobError(
            f"could not read RFT job {job_id} on the {name} service ({err}); the Delete "
            "fails rather than leave a job running unowned"
        ) from err
    if job is None:
        _delete_unknown(event, job_id, backends, phase)
    elif job.phase.active:
        if policy.on_delete == "retain" and phase() is StackPhase.DELETING:
            logger.info("on_delete is retain and the stack is deleted: job left", job_id=job_id)
            return {"PhysicalResourceId": job_id}
        if policy.on_delete == "retain":
            # An UNKNOWN phase lands here too: stopping costs the hours trained so far, an
            # unowned job costs every hour from now on.
            logger.info(
                "on_delete retain keeps jobs only when the stack is deleted; stopping",
                job_id=job_id,
                stack_phase=phase().value,
            )
        _stop(backend, job, policy.parameter_name, region, f"delete during {phase().value}")
    elif job.phase is Phase.SUCCEEDED:
        _delete_succeeded(backend, job, policy.delete_model_on_destroy, policy.parameter_name)
    else:
        backend.release(job)
    if policy.parameter_name:
        record.forget(policy.parameter_name, region, job_id)
    return {"PhysicalResourceId": job_id}


def _delete_succeeded(
    backend: JobBackend, job: JobView, delete_model: bool, parameter_name: str | None
) -> None:
    """A succeeded job's model goes on destroy only, when the environment opted in."""
    if delete_model:
        if _replaced(parameter_name, job.region, job.job_id):
            logger.info("job replaced by an update; keeping its model", job_id=job.job_id)
        else:
            backend.delete_model(job)
    # A succeeded job's uploads stay: their names carry its identity, so a later deploy of
    # the same inputs adopts the trained model instead of training it again.


def _delete_unknown(
    event: dict[str, Any],
    job_id: str,
    backends: BackendFactory,
    phase: Callable[[], StackPhase],
) -> None:
    """A Delete of an id the service does not know: after a cancelled Create, CloudFormation
    sends one with an id it generated, and the job the Create started is found only through
    the identity of the properties. Running jobs of that identity are stopped, except the
    one the record names while the stack deploys normally (the current job)."""
    try:
        spec = parse_spec(event.get("ResourceProperties"))
    except PropertyError as err:
        logger.warning("job unknown and properties unreadable; nothing to find", error=str(err))
        return
    backend = backends(spec.backend, spec.region)
    identity = identity_of(spec)
    try:
        running = backend.find(spec, identity).active
    except Exception as err:
        # Failing shows it (see "A stuck stack" in docs/fine-tuning-job.md); succeeding
        # could leave a job of this identity running with no owner.
        raise JobError(
            f"could not look for a running job of identity {identity.name_stem} on the "
            f"{spec.backend} service ({err}); the Delete of {job_id} fails rather than leave "
            "one running unowned"
        ) from err
    if not running:
        logger.info("job unknown to the service; no running job of its identity", job_id=job_id)
        return
    current = record.read(spec.parameter_name, spec.region)
    current_id = current.get("job_id") if current else None
    for job in running:
        if job.job_id == current_id and phase() in (StackPhase.DEPLOYING, StackPhase.CLEANUP):
            logger.info(
                "a job of this identity is the recorded current one; kept", job_id=job.job_id
            )
            continue
        logger.warning(
            "stopping a job of this identity that no resource owns",
            job_id=job.job_id,
            physical_id=job_id,
            stack_phase=phase().value,
        )
        _stop(backend, job, spec.parameter_name, spec.region, f"unowned, {phase().value}")
        record.forget(spec.parameter_name, spec.region, job.job_id)
