"""The OpenAI-compatible backend: Bedrock's Files and fine-tuning jobs API via the openai SDK.

The staged dataset is read from S3 and uploaded with ``purpose="fine-tune"``; the job is
created with exactly the body Bedrock documents (reference §9.3): ``model``,
``training_file`` and the ``reinforcement`` method with a ``lambda`` grader and the
hyperparameters (sent through ``extra_body``: the SDK's typed grader union has no ``lambda``
member). No ``suffix`` (documented as unsupported), no ``metadata``; ``validation_file`` and
undocumented hyperparameters only when the environment opted in (``spec``).

Identity: the uploaded training file is named after the job's identity
(``Identity.file_name``). The Files API returns a file's ``filename`` and a job its
``training_file``, so a retried Create finds the job of its identity by listing both, even
when the first attempt died before recording the job. Whether Bedrock keeps the uploaded
file name as given is not documented [open; settled by ``files.retrieve`` on a first deploy]:
the lifecycle also checks the SSM record.

Retries: reads and deletes use the SDK's own retries (429 and 5xx, with backoff that honours
``Retry-After``). Creating a job is not idempotent in this API, so it is sent without SDK
retries: a 429 is resent after a pause (the request was refused, nothing was created). An
ambiguous failure (timeout, 5xx) is never resent: the identity is looked up for a grace
period (``CONFIRM_SECONDS``, a listing may lag behind a create) and the job found is adopted;
if none shows, the create fails, and the Delete CloudFormation then sends finds and stops any
job that shows later. No path sends two creates for one identity.

Deadlines: every wait is bounded by the invocation's :class:`~rft_job.deadline.Deadline`.
``on_event`` uploads the files and checks their processing once; files still processing are
handed to ``is_complete`` (:class:`~rft_job.model.PendingFiles`), which creates the job once
they are processed.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from typing import Any, Final

import openai
from aws_lambda_powertools import Logger
from rft_common.mantle import openai_client

from rft_job import aws
from rft_job.deadline import Deadline
from rft_job.identity import Identity
from rft_job.model import AmbiguousCreateError, JobError, JobView, Lookup, PendingFiles, Phase
from rft_job.spec import JobSpec, parse_s3_uri

logger = Logger(service="job", child=True)

BACKEND = "openai"
SDK_RETRIES = 6
CREATE_ATTEMPTS = 6
# An upload (and its SDK retries) must fit in what is left of the invocation.
UPLOAD_SECONDS = 120.0
UPLOAD_RETRIES = 2
# One create request, and the listing that confirms an ambiguous one.
CREATE_SECONDS = 30.0
# How long an ambiguous create is confirmed through the listing before giving up.
CONFIRM_SECONDS = 20.0
POLL_SECONDS = 2.0
RETRY_PAUSE_SECONDS = 2.0
# The identity lookup pages through the newest files and jobs only: a retried Create happens
# minutes after the first attempt, so its upload and job are near the top.
LOOKUP_PAGES = 10
PAGE_SIZE = 100
PURPOSE: Final = "fine-tune"

_STATUS_PHASE = {
    "validating_files": Phase.VALIDATING,
    "queued": Phase.RUNNING,
    "running": Phase.RUNNING,
    "succeeded": Phase.SUCCEEDED,
    "failed": Phase.FAILED,
    "cancelled": Phase.CANCELLED,
}


def phase_of(status: str) -> Phase:
    """The lifecycle phase of an OpenAI fine-tuning job status."""
    if status in _STATUS_PHASE:
        return _STATUS_PHASE[status]
    # Which statuses Bedrock emits is not documented [open; settled by the statuses a first
    # deploy's job passes through]: an unknown one is treated as still validating, so the
    # deploy waits (bounded) instead of declaring success.
    logger.warning("unknown fine-tuning job status; treating it as validating", status=status)
    return Phase.VALIDATING


def create_body(spec: JobSpec, training: str, validation: str | None) -> dict[str, Any]:
    """The job create's fields beyond ``model`` and ``training_file`` (sent as ``extra_body``).

    ``spec`` already refused undocumented hyperparameters and a validation file unless the
    environment opted in to sending them.
    """
    body: dict[str, Any] = {
        "method": {
            "type": "reinforcement",
            "reinforcement": {
                "grader": {"type": "lambda", "lambda": {"function": spec.grader_function_arn}},
                "hyperparameters": dict(spec.hyperparameters),
            },
        }
    }
    if validation is not None:
        body["validation_file"] = validation
    return body


class OpenAIBackend:
    """RFT jobs through Bedrock's OpenAI-compatible API."""

    name = BACKEND

    def __init__(self, region: str, client: openai.OpenAI | None = None) -> None:
        self.region = region
        if client is None:
            client = openai_client(region, max_retries=SDK_RETRIES, timeout=60.0)
        self._client = client

    # -- the JobBackend protocol ----------------------------------------------------------

    def find(self, spec: JobSpec, identity: Identity) -> Lookup:
        """The newest active or succeeded job trained on a file named after ``identity``."""
        training_files = self._identity_files(identity)
        if not training_files:
            return Lookup(reusable=None, attempts=0)
        jobs: list[JobView] = []
        for job in self._newest(self._client.fine_tuning.jobs.list(limit=PAGE_SIZE)):
            if job.training_file in training_files:
                jobs.append(self._view(job))  # the list is newest first
        reusable = next((view for view in jobs if view.phase.reusable), None)
        return Lookup(reusable=reusable, attempts=len(jobs), jobs=tuple(jobs))

    def create(
        self, spec: JobSpec, identity: Identity, attempt: int, deadline: Deadline
    ) -> JobView | PendingFiles:
        """Upload the dataset; create the job if the files are processed already, else hand
        the wait to ``is_complete``. On failure, stop strays, then delete the uploads."""
        uploaded: list[str] = []
        try:
            deadline.require(UPLOAD_SECONDS, "uploading the training file")
            training = self._upload(spec.training_data_uri, identity.file_name("train"), deadline)
            uploaded.append(training)
            if spec.validation_data_uri:  # only with send_undocumented_fields (spec)
                deadline.require(UPLOAD_SECONDS, "uploading the validation file")
                uploaded.append(
                    self._upload(
                        spec.validation_data_uri, identity.file_name("validation"), deadline
                    )
                )
            pending = PendingFiles(files=tuple(uploaded))
            if not self._files_processed(pending.files) or not deadline.allows(
                CREATE_SECONDS + CONFIRM_SECONDS
            ):
                logger.info("files uploaded; is_complete creates the job", files=uploaded)
                return pending
            try:
                job = self._create_job(spec, identity, pending, deadline)
            except AmbiguousCreateError as err:
                # on_event's failure would be final (no Delete reaches the handler after a
                # failed Create): is_complete goes on looking for the job instead.
                logger.warning(
                    "create outcome unknown; is_complete looks for the job", error=str(err)
                )
                return PendingFiles(files=pending.files, create_sent=True)
        except Exception as err:
            self._abandon(spec, identity, tuple(uploaded), err)
            raise
        logger.info("started fine-tuning job", job_id=job.job_id, files=uploaded)
        return job

    def resume(
        self, spec: JobSpec, identity: Identity, pending: PendingFiles, deadline: Deadline
    ) -> JobView | None:
        """The job of a create whose files were still processing: adopted if a job of this
        identity was started on them meanwhile, created once they are processed, ``None``
        while they are not. On failure, strays are stopped before the uploads are deleted."""
        try:
            found = self._job_on(spec, identity, pending.files[0])
            if found is not None:
                return found
            if pending.create_sent or not self._files_processed(pending.files):
                return None  # never resend a create that may have started a job
            if not deadline.allows(CREATE_SECONDS + CONFIRM_SECONDS):
                return None  # the next poll has the time
            return self._create_job(spec, identity, pending, deadline)
        except Exception as err:
            self._abandon(spec, identity, pending.files, err)
            raise

    def describe(self, job_id: str) -> JobView | None:
        """``jobs.retrieve``; ``None`` if the service does not know the id."""
        try:
            job = self._client.fine_tuning.jobs.retrieve(job_id)
        except openai.NotFoundError:
            return None
        return self._view(job)

    def cancel(self, job: JobView) -> None:
        """``jobs.cancel``; a job that ended meanwhile is fine."""
        try:
            self._client.fine_tuning.jobs.cancel(job.job_id)
        except openai.NotFoundError:
            return
        except (openai.BadRequestError, openai.ConflictError) as err:
            current = self.describe(job.job_id)
            if current is not None and current.phase.active:
                raise JobError(f"could not cancel RFT job {job.job_id}: {err.message}") from err
        logger.info("cancelled fine-tuning job", job_id=job.job_id)

    def release(self, job: JobView) -> None:
        """Delete the job's uploaded training and validation files (best effort)."""
        for file_id in job.files:
            self._delete_file(file_id)

    def delete_model(self, job: JobView) -> None:
        """Not offered: Bedrock documents no deletion of OpenAI-compatible fine-tuned models
        (reference §9.3); the construct refuses ``delete_model_on_destroy`` for this backend."""
        logger.warning("model deletion is not supported by this backend", job_id=job.job_id)

    # -- steps ------------------------------------------------------------------------------

    def _identity_files(self, identity: Identity) -> set[str]:
        """The ids of uploaded training files named after ``identity``."""
        name = identity.file_name("train")
        return {
            str(file.id)
            for file in self._newest(self._client.files.list(purpose=PURPOSE))
            if getattr(file, "filename", None) == name
        }

    @staticmethod
    def _newest(page: Any) -> Iterator[Any]:
        """The items of a newest-first listing, over at most ``LOOKUP_PAGES`` pages (both
        lists are newest first in OpenAI's API; Bedrock's order is not documented [open;
        settled by listing after a first deploy])."""
        for _ in range(LOOKUP_PAGES):
            yield from page.data
            if not page.has_next_page():
                return
            page = page.get_next_page()

    def _upload(self, uri: str, filename: str, deadline: Deadline) -> str:
        bucket, key = parse_s3_uri(uri)
        s3 = aws.client("s3", self.region)
        # Spooled to disk: datasets may be larger than the function's memory.
        with tempfile.TemporaryFile() as buffer:
            try:
                s3.download_fileobj(bucket, key, buffer)
            except Exception as err:
                raise JobError(f"could not read the dataset {uri}: {err}") from err
            buffer.seek(0)
            # Bounded: the SDK's retries of this upload end within what is left.
            timeout = max(5.0, deadline.left() / (UPLOAD_RETRIES + 1))
            client = self._client.with_options(max_retries=UPLOAD_RETRIES, timeout=timeout)
            created = client.files.create(
                file=(filename, buffer, "application/jsonl"), purpose=PURPOSE
            )
        logger.info("uploaded dataset", file_id=created.id, source=uri)
        return str(created.id)

    def _files_processed(self, files: tuple[str, ...]) -> bool:
        """Whether every file is processed (one look each, no waiting); raises
        :class:`JobError` with the service's details for a file it rejected."""
        for file_id in files:
            file = self._client.files.retrieve(file_id)
            status = getattr(file, "status", None)
            if status == "error":
                details = getattr(file, "status_details", None) or "no details given"
                raise JobError(f"file {file_id} was rejected by the service: {details}")
            if status not in (None, "processed"):
                return False
        return True

    def _job_on(self, spec: JobSpec, identity: Identity, training: str) -> JobView | None:
        """The newest job of ``identity`` trained on the file ``training``, if any."""
        return next((job for job in self.find(spec, identity).jobs if training in job.files), None)

    def _abandon(
        self, spec: JobSpec, identity: Identity, files: tuple[str, ...], err: Exception
    ) -> None:
        """After a failed create: stop any job started on ``files`` (found through the files'
        names, so before they are deleted), then delete the files. After an ambiguous create
        the files stay: a job that shows later is found (and stopped) through their name."""
        if not files or isinstance(err, AmbiguousCreateError):
            return
        try:
            for job in self.find(spec, identity).active:
                if set(job.files) & set(files):
                    self.cancel(job)
                    logger.warning("stopped a job the failed create left", job_id=job.job_id)
        except Exception:
            # The create's own error is what the caller raises; the files stay, so that the
            # Delete that follows (or the reconciler) can still find the job by their name.
            logger.exception("could not check for a job the failed create left; files kept")
            return
        for file_id in files:
            self._delete_file(file_id)

    def _create_job(
        self, spec: JobSpec, identity: Identity, pending: PendingFiles, deadline: Deadline
    ) -> JobView:
        training = pending.files[0]
        validation = pending.files[1] if len(pending.files) > 1 else None
        client = self._client.with_options(max_retries=0, timeout=CREATE_SECONDS)
        body = create_body(spec, training, validation)
        last: Exception | None = None
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                # Everything goes in the body as written: the SDK adds no field of its own.
                job = client.fine_tuning.jobs.create(
                    model=spec.base_model, training_file=training, extra_body=body
                )
                return self._view(job)
            except openai.RateLimitError as err:
                last = err  # refused outright: nothing was created
            except (openai.APIConnectionError, openai.InternalServerError) as err:
                # Maybe created: confirm through the listing; never resend.
                return self._confirm(spec, identity, training, deadline, err)
            except openai.APIStatusError as err:
                raise JobError(
                    f"creating the fine-tuning job was rejected ({err.status_code}): {err.message}"
                ) from err
            pause = RETRY_PAUSE_SECONDS * attempt
            if not deadline.allows(pause + CREATE_SECONDS + CONFIRM_SECONDS):
                break
            logger.warning("job create throttled; retrying", attempt=attempt, error=str(last))
            time.sleep(pause)
        raise JobError(f"creating the fine-tuning job was refused {attempt} times: {last}")

    def _confirm(
        self,
        spec: JobSpec,
        identity: Identity,
        training: str,
        deadline: Deadline,
        err: Exception,
    ) -> JobView:
        """The job an ambiguous create started, found through the listing within
        ``CONFIRM_SECONDS``; raises :class:`JobError` (no second create) if none shows."""
        until = time.monotonic() + min(CONFIRM_SECONDS, deadline.left())
        while True:
            found = self._job_on(spec, identity, training)
            if found is not None:
                logger.info("an ambiguous create did start the job", job_id=found.job_id)
                return found
            if time.monotonic() + POLL_SECONDS > until:
                break
            time.sleep(POLL_SECONDS)
        raise AmbiguousCreateError(
            f"the fine-tuning job create got no clear answer ({err}) and no job of this "
            f"identity showed within {int(CONFIRM_SECONDS)} s; not resent, so that no second "
            "job starts (the Delete that follows stops one that shows later); deploy again"
        )

    def _delete_file(self, file_id: str) -> None:
        try:
            self._client.files.delete(file_id)
        except openai.NotFoundError:
            pass
        except openai.APIError as err:
            # Leaving a file behind costs nothing and must not block a Delete or mask the
            # error that led here.
            logger.warning("could not delete uploaded file", file_id=file_id, error=str(err))

    def _view(self, job: Any) -> JobView:
        status = str(job.status)
        error = getattr(job, "error", None)
        failure = None
        if error is not None and (getattr(error, "message", None) or getattr(error, "code", None)):
            code = getattr(error, "code", None)
            failure = f"{error.message} (code {code})" if code else str(error.message)
        files = tuple(f for f in (job.training_file, getattr(job, "validation_file", None)) if f)
        return JobView(
            job_id=str(job.id),
            backend=BACKEND,
            region=self.region,
            status=status,
            phase=phase_of(status),
            failure=failure,
            fine_tuned_model=getattr(job, "fine_tuned_model", None) or None,
            files=files,
        )
