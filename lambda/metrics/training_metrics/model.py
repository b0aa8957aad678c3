"""The values passed between the collector's parts: points, job state and the cursor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from training_metrics.catalog import BY_NAME, Family

# One vocabulary for both backends, so alarms and messages do not care which one ran.
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})

# OpenAI's documented job statuses; which of them Mantle emits is [open], so anything else
# is kept verbatim as "unknown" rather than rejected.
_OPENAI_STATUS = {
    "validating_files": "validating",
    "queued": "queued",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}
_BEDROCK_STATUS = {
    "Completed": "succeeded",
    "Failed": "failed",
    "Stopping": "stopping",
    "Stopped": "cancelled",
}


def normalize_openai_status(raw: str) -> str:
    """The common status word for an OpenAI-compatible job status."""
    return _OPENAI_STATUS.get(raw, "unknown")


def normalize_bedrock_status(raw: str, details: dict[str, Any] | None = None) -> str:
    """The common status word for a native job, using ``statusDetails`` while in progress.

    ``InProgress`` covers validation, data processing and training; only training counts as
    "running" (the stall alarm must not fire while Bedrock is still checking the data).
    Without ``statusDetails`` (older API versions) ``InProgress`` is taken as running.
    """
    if raw != "InProgress":
        return _BEDROCK_STATUS.get(raw, "unknown")
    if not details:
        return "running"
    training = (details.get("trainingDetails") or {}).get("status")
    return "running" if training == "InProgress" else "validating"


@dataclass(frozen=True)
class Point:
    """One value of one metric at one training step, stamped with the source's own time."""

    metric: str
    step: int
    timestamp: float  # seconds since the epoch
    value: float

    @property
    def family(self) -> Family:
        """Which cursor family the point belongs to (training or validation steps)."""
        return BY_NAME[self.metric].family


@dataclass(frozen=True)
class JobState:
    """What the backend says about a job right now."""

    job_id: str
    backend: str
    status: str  # the common vocabulary above
    raw_status: str  # the backend's own word, as recorded in the job parameter
    fine_tuned_model: str | None = None
    failure: str | None = None
    created_at: float | None = None

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (no more metrics will come)."""
        return self.status in TERMINAL


@dataclass(frozen=True)
class Fetched:
    """What one fetch found: new points, and the newest event seen (for the cursor)."""

    points: list[Point]
    event_id: str | None = None
    event_time: int | None = None


@dataclass
class Cursor:
    """How far one job's metrics have been published.

    A point is published only if its step is above the high-water mark of its family, so a
    re-run (or an overlapping backfill of the same job) never publishes a step twice.
    ``event_id`` / ``event_time`` remember the newest event seen, so that paging through a
    newest-first event list can stop where the previous run ended.
    """

    steps: dict[str, int] = field(default_factory=lambda: {"train": -1, "validation": -1})
    event_id: str | None = None
    event_time: int | None = None
    running_since: float | None = None
    last_step_at: float | None = None
    total_steps: int | None = None

    def is_new(self, point: Point) -> bool:
        """Whether ``point`` has not been published yet."""
        return point.step > self.steps.get(point.family, -1)

    def advance(self, points: list[Point]) -> None:
        """Move the high-water marks past ``points`` (all of them published)."""
        for point in points:
            family = point.family
            if point.step > self.steps.get(family, -1):
                self.steps[family] = point.step
            if family == "train" and (
                self.last_step_at is None or point.timestamp > self.last_step_at
            ):
                self.last_step_at = point.timestamp

    def seen_events(self, fetched: Fetched) -> None:
        """Remember the newest event of a fetch whose points have all been published."""
        if fetched.event_time is not None and (
            self.event_time is None or fetched.event_time >= self.event_time
        ):
            self.event_id, self.event_time = fetched.event_id, fetched.event_time

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in SSM."""
        return {
            "steps": dict(self.steps),
            "event_id": self.event_id,
            "event_time": self.event_time,
            "running_since": self.running_since,
            "last_step_at": self.last_step_at,
            "total_steps": self.total_steps,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Cursor:
        """Read the stored form; anything unreadable starts from scratch (a fresh job)."""
        if not isinstance(raw, dict):
            return cls()
        steps = raw.get("steps")
        cursor = cls()
        if isinstance(steps, dict):
            for family in ("train", "validation"):
                value = steps.get(family)
                if isinstance(value, int) and not isinstance(value, bool):
                    cursor.steps[family] = value
        event_id = raw.get("event_id")
        cursor.event_id = event_id if isinstance(event_id, str) else None
        cursor.event_time = _number(raw.get("event_time"), int)
        cursor.running_since = _number(raw.get("running_since"), float)
        cursor.last_step_at = _number(raw.get("last_step_at"), float)
        cursor.total_steps = _number(raw.get("total_steps"), int)
        return cursor


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return kind(value)
    return None


class Source(Protocol):
    """Where a backend's job status and training points come from."""

    def state(self, job_id: str) -> JobState:
        """The job's current status."""
        ...

    def fetch(self, job_id: str, cursor: Cursor) -> Fetched:
        """The job's points above ``cursor`` (every point for an empty cursor)."""
        ...
