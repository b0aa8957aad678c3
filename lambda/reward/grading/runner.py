"""Grade one invocation's batch: every input id answered once, in order, with a finite score."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from grading.base import FAIL, GRADER_ERROR, PASS, Batch, Grade
from grading.definition import Definition
from grading.log import logger
from grading.metrics import Summary
from grading.samples import Sample, parse_rollouts

_ID_SHOWN = 200  # characters of an id in a log line


@dataclass(slots=True)
class BatchResult:
    """The response for Bedrock and the summary for metrics."""

    outputs: list[dict[str, Any]]
    summary: Summary
    # Aligned with ``outputs``, for rollout samples and signal health (grading.observe): the
    # parsed rollout (None if it could not be parsed) and its grade before the runner's checks.
    samples: list[Sample | None] = field(default_factory=list)
    grades: list[Grade] = field(default_factory=list)


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


def _checked(grade: Grade, sample_id: Any, name: str, summary: Summary) -> Grade:
    """``grade`` as the response reports it (a failed or out-of-range grade scores 0 and is
    logged), added to the batch's summary."""
    if not math.isfinite(grade.score) or not 0.0 <= grade.score <= 1.0:
        grade = Grade.failed(f"{name}: score {grade.score} outside [0, 1]")
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
    return grade


def grade_event(event: list[Any], definition: Definition, *, batch: Batch) -> BatchResult:
    """Grade a batch of rollouts (``event`` must already be a list)."""
    samples, errors = parse_rollouts(event)
    # the rollouts that cannot be graded, by position
    unparsed = {index: Grade.failed(f"rollout [{index}]: {err}") for index, err in errors.items()}
    graded = definition.grader.grade_batch(samples, batch)
    if len(graded) != len(samples):
        raise RuntimeError(f"{definition.name}: {len(graded)} grades for {len(samples)} samples")
    summary = Summary(stats=batch.stats, remote=definition.remote)
    aligned: list[Sample | None] = list(samples)
    if not unparsed:
        ids = [sample.id for sample in samples]  # str or int: JSON carries them back as they are
    else:
        ids = [_echo_id(raw) for raw in event]
        parsed = iter(graded)
        graded = [
            unparsed[index] if index in unparsed else next(parsed) for index in range(len(event))
        ]
        rest = iter(samples)
        aligned = [None if index in unparsed else next(rest) for index in range(len(event))]
    name = definition.name
    scores = summary.scores
    outputs = []
    for sample_id, grade in zip(ids, graded, strict=True):
        if grade is PASS or grade is FAIL:  # the common case, with nothing to check or add
            score = grade.score
            scores.append(score)
            outputs.append(
                {
                    "id": sample_id,
                    "aggregate_reward_score": score,
                    "metrics_list": [{"name": name, "value": score, "type": "Reward"}],
                }
            )
            continue
        outputs.append(_output(sample_id, name, _checked(grade, sample_id, name, summary)))
    return BatchResult(outputs=outputs, summary=summary, samples=aligned, grades=graded)
