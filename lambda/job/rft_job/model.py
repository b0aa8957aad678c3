"""A backend-neutral view of one fine-tuning job, and the errors the lifecycle raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from rft_job.identity import Identity
from rft_job.spec import JobSpec

if TYPE_CHECKING:
    from rft_job.deadline import Deadline


class Phase(Enum):
    """Where a job is, in the terms the lifecycle decides on."""

    VALIDATING = "validating"  # the service is still checking the data
    RUNNING = "running"  # data accepted: queued or training
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPING = "stopping"  # a stop was requested; nothing left to do
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        """Still costs money and can be stopped."""
        return self in (Phase.VALIDATING, Phase.RUNNING)

    @property
    def reusable(self) -> bool:
        """A job of the same identity in this phase is adopted instead of starting another."""
        return self in (Phase.VALIDATING, Phase.RUNNING, Phase.SUCCEEDED)


@dataclass(frozen=True)
class JobView:
    """What the lifecycle needs to know about one job, whichever backend runs it."""

    job_id: str
    backend: str
    region: str
    status: str  # the service's own status value, as recorded for humans
    phase: Phase
    name: str | None = None
    failure: str | None = None  # the service's failure text
    fine_tuned_model: str | None = None
    files: tuple[str, ...] = field(default_factory=tuple)  # uploaded files it owns
    # False when the service says nothing about the data checks of a job it runs (native RFT
    # jobs without ``statusDetails``): "running" then means "not failed so far".
    validation_reported: bool = True


@dataclass(frozen=True)
class Lookup:
    """The result of looking for jobs of one identity."""

    reusable: JobView | None  # the newest active or succeeded job, if any
    attempts: int  # how many jobs of this identity exist at all (for the next name)
    # Every job of this identity the listing saw, newest first (whatever their phase).
    jobs: tuple[JobView, ...] = ()

    @property
    def active(self) -> tuple[JobView, ...]:
        """The jobs of this identity that still cost money."""
        return tuple(job for job in self.jobs if job.phase.active)


@dataclass(frozen=True)
class PendingFiles:
    """A create that uploaded its files but left the wait for their processing (and the job
    create itself) to ``is_complete``: waiting in ``on_event`` could outlive its timeout."""

    files: tuple[str, ...]  # the uploaded file ids, training file first
    # A create was sent and got no clear answer: never send another, only look for its job.
    create_sent: bool = False


class JobError(RuntimeError):
    """A job could not be started or was rejected; the message is shown by CloudFormation."""


class AmbiguousCreateError(JobError):
    """A create got no clear answer (timeout, 5xx) and its job did not show in the listing:
    it must not be resent, and the files it names must stay so the job can still be found."""


class JobBackend(Protocol):
    """One way of running RFT jobs (the OpenAI-compatible API or the native API)."""

    name: str

    def find(self, spec: JobSpec, identity: Identity) -> Lookup:
        """Look for existing jobs of ``identity``."""
        ...

    def create(
        self, spec: JobSpec, identity: Identity, attempt: int, deadline: Deadline
    ) -> JobView | PendingFiles:
        """Start a job (or upload its files and leave the rest to :meth:`resume`); on
        failure, stop any job the call may have started, then remove its uploads, and raise."""
        ...

    def resume(
        self, spec: JobSpec, identity: Identity, pending: PendingFiles, deadline: Deadline
    ) -> JobView | None:
        """Continue a :class:`PendingFiles` create: the job, or ``None`` while the files are
        still being processed."""
        ...

    def describe(self, job_id: str) -> JobView | None:
        """The job's current state, or ``None`` if the service does not know it."""
        ...

    def cancel(self, job: JobView) -> None:
        """Stop an active job (succeeds if it finished meanwhile)."""
        ...

    def release(self, job: JobView) -> None:
        """Delete what was uploaded for a job that no longer needs it (best effort)."""
        ...

    def delete_model(self, job: JobView) -> None:
        """Delete a succeeded job's model (only when the environment opted in)."""
        ...
