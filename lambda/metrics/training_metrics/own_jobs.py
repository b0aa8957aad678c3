"""The running jobs one environment started, per backend, and how to stop one.

The job custom resource names everything after the environment's prefix ``rft-<env>``
(``lambda/job/rft_job/identity.py``): native jobs ``<prefix>-<16 hex>-<attempt>``, uploaded
training files (OpenAI-compatible backend) ``<prefix>-<64 hex>-train.jsonl``. Matching the
whole name, not only its start, keeps environment ``dev`` from claiming ``dev-2``'s jobs.

Age is measured from the job's creation time as the service reports it (``creationTime``,
``created_at``): the one clock that exists for a job nobody recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

# OpenAI's terminal statuses; anything else (validating_files, queued, running, a status
# Bedrock adds [open]) may be billing and counts as running.
OPENAI_ENDED = frozenset({"succeeded", "failed", "cancelled"})
PAGE_SIZE = 100
# Bounds that keep a run far inside the function's timeout: running jobs are near the top
# of the newest-first job list, and a project holds few files per deploy.
MAX_FILE_PAGES = 50
MAX_JOB_PAGES = 20


@dataclass(frozen=True)
class OwnJob:
    """A running job this environment started."""

    job_id: str  # the id the service, and the job record, name it by (ARN for native jobs)
    label: str  # the job name (native) or the training file's name (OpenAI-compatible)
    created_at: datetime
    status: str


class JobLister(Protocol):
    """One backend's view of the environment's jobs."""

    def running(self) -> list[OwnJob]:
        """The environment's jobs that are still running (may be billing)."""
        ...

    def stop(self, job: OwnJob) -> bool:
        """Stop ``job``; ``False`` if it had already ended (nothing to stop)."""
        ...


def job_name_pattern(prefix: str) -> re.Pattern[str]:
    """Native job names of the environment whose prefix is ``prefix``."""
    return re.compile(rf"^{re.escape(prefix)}-[0-9a-f]{{16}}-[0-9]+$")


def training_file_pattern(prefix: str) -> re.Pattern[str]:
    """Uploaded training file names of the environment whose prefix is ``prefix``."""
    return re.compile(rf"^{re.escape(prefix)}-[0-9a-f]{{64}}-train\.jsonl$")


def _utc(value: datetime) -> datetime:
    # botocore parses a timestamp without a zone as naive; the service sends UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class BedrockJobs:
    """Native jobs: ``ListModelCustomizationJobs`` by name, ``StopModelCustomizationJob``."""

    def __init__(self, bedrock: Any, prefix: str) -> None:
        self._bedrock = bedrock
        self._prefix = prefix
        self._names = job_name_pattern(prefix)

    def running(self) -> list[OwnJob]:
        """``InProgress`` jobs whose whole name is the environment's."""
        found = []
        pages = self._bedrock.get_paginator("list_model_customization_jobs").paginate(
            nameContains=f"{self._prefix}-",
            statusEquals="InProgress",
            sortBy="CreationTime",
            sortOrder="Descending",
        )
        for page in pages:
            for summary in page.get("modelCustomizationJobSummaries", []):
                name = str(summary.get("jobName", ""))
                if not self._names.match(name) or summary.get("status") != "InProgress":
                    continue
                found.append(
                    OwnJob(
                        job_id=str(summary["jobArn"]),
                        label=name,
                        created_at=_utc(summary["creationTime"]),
                        status=str(summary["status"]),
                    )
                )
        return found

    def stop(self, job: OwnJob) -> bool:
        """``StopModelCustomizationJob``; a job that ended meanwhile is not an error."""
        try:
            self._bedrock.stop_model_customization_job(jobIdentifier=job.job_id)
        except Exception as err:
            code = getattr(err, "response", {}).get("Error", {}).get("Code")
            # Conflict / Validation: the job is no longer in a state that can be stopped.
            if code in ("ResourceNotFoundException", "ConflictException", "ValidationException"):
                return False
            raise
        return True


class OpenAIJobs:
    """OpenAI-compatible jobs: found through their training files' names."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._files = training_file_pattern(prefix)

    def running(self) -> list[OwnJob]:
        """Jobs not yet ended whose training file is named for the environment."""
        files = {
            str(f.id): str(f.filename)
            # only ``purpose``, as the job custom resource sends: Bedrock documents no
            # page size for files.list
            for f in _items(self._client.files.list(purpose="fine-tune"), MAX_FILE_PAGES)
            if self._files.match(str(getattr(f, "filename", None) or ""))
        }
        if not files:
            return []
        found = []
        for job in _items(self._client.fine_tuning.jobs.list(limit=PAGE_SIZE), MAX_JOB_PAGES):
            status = str(job.status)
            if job.training_file not in files or status in OPENAI_ENDED:
                continue
            found.append(
                OwnJob(
                    job_id=str(job.id),
                    label=files[job.training_file],
                    created_at=datetime.fromtimestamp(int(job.created_at), UTC),
                    status=status,
                )
            )
        return found

    def stop(self, job: OwnJob) -> bool:
        """``jobs.cancel``; a job that ended meanwhile is not an error."""
        import openai  # loaded by the client already; imported here for its error types

        try:
            self._client.fine_tuning.jobs.cancel(job.job_id)
        except openai.NotFoundError:
            return False
        except (openai.BadRequestError, openai.ConflictError):
            current = self._client.fine_tuning.jobs.retrieve(job.job_id)
            if str(current.status) in OPENAI_ENDED:
                return False
            raise
        return True


def _items(page: Any, max_pages: int) -> Iterator[Any]:
    """The items of a paged listing, over at most ``max_pages`` pages."""
    for _ in range(max_pages):
        yield from page.data
        if not page.has_next_page():
            return
        page = page.get_next_page()
