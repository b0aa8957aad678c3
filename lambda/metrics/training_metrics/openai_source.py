"""A job's status and training points from an OpenAI-compatible fine-tuning API.

Events: one ``metrics`` event per training step (bedrock-rft.md §4). OpenAI lists events
newest first and ``after`` pages towards older ones; whether Bedrock's endpoint keeps that
order is [open], so the order is read from each page's timestamps. Newest first: page until
the event the previous run ended on (nothing older can be new). Oldest first: page to the
end and keep what is above the cursor. Either way the cursor's step high-water mark decides
what is new, so a page boundary or an order change cannot publish a step twice.

Validation metrics: from checkpoints when the endpoint serves them, and from any validation
key a metrics event carries (where Mantle reports validation results is [open]).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from training_metrics.model import Cursor, Fetched, JobState, Point, normalize_openai_status
from training_metrics.points import first_per_step, points_from_mapping

if TYPE_CHECKING:
    from openai import OpenAI

PAGE_SIZE = 100


def job_state(client: OpenAI, job_id: str) -> JobState:
    """``jobs.retrieve`` as a :class:`JobState`."""
    job = client.fine_tuning.jobs.retrieve(job_id)
    error = getattr(job, "error", None)
    failure = getattr(error, "message", None) if error is not None else None
    return JobState(
        job_id=job.id,
        backend="openai",
        status=normalize_openai_status(str(job.status)),
        raw_status=str(job.status),
        fine_tuned_model=job.fine_tuned_model or None,
        failure=failure or None,
        created_at=float(job.created_at) if job.created_at else None,
    )


def new_points(client: OpenAI, job_id: str, cursor: Cursor) -> Fetched:
    """Points not yet published for ``job_id`` (oldest step first) and the newest event.

    The cursor is not changed: the caller moves it once the points are published. With an
    empty :class:`Cursor` this is every point of the job (``make report``).
    """
    events = list(_new_events(client, job_id, cursor))
    points = [p for p in _points_from_events(events) if cursor.is_new(p)]
    points += [p for p in _checkpoint_points(client, job_id) if cursor.is_new(p)]
    newest = max(events, key=lambda e: (e.created_at, e.id), default=None)
    if newest is None:
        return Fetched(first_per_step(points))
    return Fetched(first_per_step(points), newest.id, int(newest.created_at))


def _new_events(client: OpenAI, job_id: str, cursor: Cursor) -> Iterator[Any]:
    after: str | None = None
    while True:
        if after is None:
            page = client.fine_tuning.jobs.list_events(job_id, limit=PAGE_SIZE)
        else:
            page = client.fine_tuning.jobs.list_events(job_id, after=after, limit=PAGE_SIZE)
        events = list(page.data)
        if not events:
            return
        newest_first = events[0].created_at >= events[-1].created_at
        reached_cursor = False
        for event in events:
            if _already_seen(event, cursor):
                reached_cursor = True
                continue
            yield event
        if (reached_cursor and newest_first) or not page.has_more:
            return
        after = events[-1].id


def _already_seen(event: Any, cursor: Cursor) -> bool:
    """Whether ``event`` is the last one the previous run saw, or older than it."""
    if cursor.event_time is None:
        return False
    return bool(event.id == cursor.event_id or event.created_at < cursor.event_time)


def _points_from_events(events: Iterable[Any]) -> Iterator[Point]:
    for event in events:
        data = event.data
        if getattr(event, "type", None) != "metrics" or not isinstance(data, dict):
            continue
        yield from points_from_mapping(data, float(event.created_at))


def _checkpoint_points(client: OpenAI, job_id: str) -> list[Point]:
    """Validation points from the job's checkpoints (none if the endpoint has no checkpoints)."""
    import openai

    points: list[Point] = []
    after: str | None = None
    try:
        while True:
            if after is None:
                page = client.fine_tuning.jobs.checkpoints.list(job_id, limit=PAGE_SIZE)
            else:
                page = client.fine_tuning.jobs.checkpoints.list(
                    job_id, after=after, limit=PAGE_SIZE
                )
            checkpoints = list(page.data)
            for checkpoint in checkpoints:
                metrics = checkpoint.metrics.model_dump(exclude_none=True)
                metrics["step"] = checkpoint.step_number
                for point in points_from_mapping(metrics, float(checkpoint.created_at)):
                    if point.family == "validation":
                        points.append(point)
            if not checkpoints or not page.has_more:
                return points
            after = checkpoints[-1].id
    except openai.NotFoundError:
        # Whether Bedrock's endpoint serves checkpoints for RFT jobs is [open]: a 404 here
        # means "no validation data from this source", not a failed run.
        return points


class OpenAISource:
    """:class:`~training_metrics.model.Source` for the OpenAI-compatible API."""

    def __init__(self, client: OpenAI) -> None:
        self._client = client

    def state(self, job_id: str) -> JobState:
        """The job's current status (``jobs.retrieve``)."""
        return job_state(self._client, job_id)

    def fetch(self, job_id: str, cursor: Cursor) -> Fetched:
        """New points from the job's events and checkpoints."""
        return new_points(self._client, job_id, cursor)
