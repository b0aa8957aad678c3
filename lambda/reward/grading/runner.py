"""Grade one invocation's batch: every input id answered once, in order, with a finite score."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from grading.base import GRADER_ERROR, Batch, Grade
from grading.definition import Definition
from grading.errors import SampleError
from grading.log import logger
from grading.metrics import Summary
from grading.samples import Sample, parse_rollout

_ID_SHOWN = 200  # characters of an id in a log line


@dataclass(slots=True)
class BatchResult:
    """The response for Bedrock and the summary for metrics."""

    outputs: list[dict[str, Any]]
    summary: Summary


def _echo_id(raw: Any) -> Any:
    """The id to answer with: whatever the rollout carried (``None`` if it had none), as long
    as strict JSON can carry it back (an infinite number becomes its text)."""
    sample_id = raw.get("id") if isinstance(raw, dict) else None
    if sample_id is None or type(sample_id) is str or type(sample_id) is int:
        return sample_id
    try:
        json.dumps(sample_id, allow_nan=False)
    except (TypeError, ValueError):
        return str(sample_id)
    return sample_id


def _shown(sample_id: Any) -> str:
    text = repr(sample_id)
    return text if len(text) <= _ID_SHOWN else text[:_ID_SHOWN] + "..."


def _logged_id(sample_id: Any) -> Any:
    """The id as a log field: itself when it is a plain string or number."""
    if isinstance(sample_id, str | int) and len(str(sample_id)) <= _ID_SHOWN:
        return sample_id
    return _shown(sample_id)


def _metric(name: str, value: float, kind: str = "Metric") -> dict[str, Any]:
    return {"name": name, "value": value, "type": kind}


def _output(sample_id: Any, name: str, grade: Grade) -> dict[str, Any]:
    score = grade.score if math.isfinite(grade.score) else 0.0
    metrics = [_metric(name, score, "Reward")]
    if grade.details:
        metrics.extend(_metric(detail, value) for detail, value in grade.details)
    if grade.flags:
        metrics.extend(_metric(flag, 1.0) for flag in sorted(grade.flags))
    return {"id": sample_id, "aggregate_reward_score": score, "metrics_list": metrics}


def grade_event(event: list[Any], definition: Definition, *, batch: Batch) -> BatchResult:
    """Grade a batch of rollouts (``event`` must already be a list)."""
    samples: list[Sample] = []
    grades: list[Grade | None] = []
    for index, raw in enumerate(event):
        try:
            samples.append(parse_rollout(raw))
            grades.append(None)
        except SampleError as err:
            grades.append(Grade.failed(f"rollout [{index}]: {err}"))
    graded = iter(definition.grader.grade_batch(samples, batch))
    summary = Summary(stats=batch.stats, remote=definition.remote)
    outputs = []
    for raw, early in zip(event, grades, strict=True):
        grade = early if early is not None else next(graded)
        if not math.isfinite(grade.score) or not 0.0 <= grade.score <= 1.0:
            grade = Grade.failed(f"{definition.name}: score {grade.score} outside [0, 1]")
        sample_id = _echo_id(raw)
        if grade.error is not None or GRADER_ERROR in grade.flags:
            summary.grader_errors += 1
            logger.warning(
                f"sample {_shown(sample_id)} scored 0: {grade.error}",
                extra={"sample_id": _logged_id(sample_id), "reason": grade.error},
            )
            grade = Grade(raw=0.0, score=0.0, details=grade.details, flags=grade.flags)
        summary.scores.append(grade.score)
        for detail, value in grade.details:
            summary.details.setdefault(detail, []).append(value)
        outputs.append(_output(sample_id, definition.name, grade))
    return BatchResult(outputs=outputs, summary=summary)
