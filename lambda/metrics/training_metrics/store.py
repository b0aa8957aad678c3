"""The two SSM parameters the collector reads and writes.

* The **job record** ``/bedrock-rft/<environment>/job`` (a contract with the job custom
  resource, which writes it when it starts a job): JSON ``{"job_id", "backend", "region",
  "status", "fine_tuned_model"?, "updated_at"}``. The collector only updates ``status``,
  ``fine_tuned_model`` and ``updated_at`` of the job it names, and keeps every other key.
* The **cursor** ``/bedrock-rft/<environment>/metrics-cursor``, the collector's own: per
  job, how far its metrics have been published. It is a parameter of its own, not a field
  of the job record, so that (1) the custom resource can rewrite the record for a new job
  without knowing about cursors, (2) a backfill of an older job keeps its own progress, and
  (3) the record stays the small, stable contract other parts rely on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from training_metrics.model import Cursor, JobState

# A standard SSM parameter holds at most 4 KB; a cursor entry is about 250 bytes.
MAX_CURSOR_JOBS = 8
MAX_PARAMETER_BYTES = 4096


@dataclass(frozen=True)
class JobRecord:
    """The job record as read from SSM (``raw`` keeps keys this code does not know)."""

    job_id: str
    backend: str
    region: str | None = None
    status: str | None = None
    fine_tuned_model: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def _get(ssm: Any, name: str) -> str | None:
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


def read_job_record(ssm: Any, name: str) -> JobRecord | None:
    """The current job record, or ``None`` when no job has been recorded yet."""
    text = _get(ssm, name)
    if text is None:
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"SSM parameter {name}: not valid JSON ({err.msg})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"SSM parameter {name}: must be a JSON object")
    job_id = raw.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"SSM parameter {name}: job_id is missing or not a string")
    backend = raw.get("backend")
    if backend not in ("openai", "bedrock"):
        raise ValueError(f"SSM parameter {name}: backend = {backend!r}; allowed: openai, bedrock")
    return JobRecord(
        job_id=job_id,
        backend=str(backend),
        region=_text(raw.get("region")),
        status=_text(raw.get("status")),
        fine_tuned_model=_text(raw.get("fine_tuned_model")),
        raw=raw,
    )


def update_job_record(ssm: Any, name: str, state: JobState, now: datetime) -> bool:
    """Write ``state``'s status and model into the record if it still names that job.

    The record is read again right before the write: if the custom resource has recorded a
    new job in the meantime, nothing is written (``False``). SSM has no conditional write,
    so a window of one round trip remains; the next run corrects any stale status.
    """
    current = read_job_record(ssm, name)
    if current is None or current.job_id != state.job_id:
        return False
    updated = dict(current.raw)
    updated["status"] = state.raw_status
    if state.fine_tuned_model:
        updated["fine_tuned_model"] = state.fine_tuned_model
    updated["updated_at"] = now.astimezone(UTC).isoformat(timespec="seconds")
    ssm.put_parameter(Name=name, Value=json.dumps(updated), Type="String", Overwrite=True)
    return True


class CursorStore:
    """Per-job cursors in one SSM parameter, the most recently used jobs kept."""

    def __init__(self, ssm: Any, name: str) -> None:
        self._ssm = ssm
        self._name = name

    def _load_all(self) -> dict[str, Any]:
        text = _get(self._ssm, self._name)
        try:
            raw = json.loads(text) if text else {}
        except json.JSONDecodeError:
            # A damaged cursor must not stop collection for good; starting over republishes
            # at most one job's points, which is the lesser harm.
            raw = {}
        jobs = raw.get("jobs") if isinstance(raw, dict) else None
        return jobs if isinstance(jobs, dict) else {}

    def load(self, job_id: str) -> Cursor:
        """The cursor of ``job_id`` (empty for a job never collected)."""
        return Cursor.from_json(self._load_all().get(job_id))

    def save(self, job_id: str, cursor: Cursor, now: datetime) -> None:
        """Store ``cursor`` for ``job_id``, dropping the least recently used jobs to fit."""
        jobs = self._load_all()
        jobs[job_id] = {**cursor.to_json(), "touched": now.timestamp()}
        ordered = sorted(jobs.items(), key=lambda item: _touched(item[1]), reverse=True)[
            :MAX_CURSOR_JOBS
        ]
        while True:
            value = json.dumps({"jobs": dict(ordered)}, separators=(",", ":"))
            if len(value.encode()) <= MAX_PARAMETER_BYTES or len(ordered) == 1:
                break
            ordered = ordered[:-1]
        self._ssm.put_parameter(Name=self._name, Value=value, Type="String", Overwrite=True)


def _touched(entry: Any) -> float:
    value = entry.get("touched") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
