"""Turning one step's key/value mapping into points, whichever backend it came from."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from training_metrics.catalog import STEP_KEYS, canonical, metric_for
from training_metrics.model import Point


def finite(raw: Any) -> float | None:
    """``raw`` as a finite float, or ``None`` (booleans, text, NaN and infinities)."""
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def step_of(data: Mapping[str, Any]) -> int | None:
    """The step number a mapping carries under any of the known step keys."""
    by_key = {canonical(str(k)): v for k, v in data.items()}
    for key in STEP_KEYS:
        value = finite(by_key.get(key))
        if value is not None and value >= 0:
            return int(value)
    return None


def points_from_mapping(data: Mapping[str, Any], timestamp: float) -> Iterator[Point]:
    """The points of one step (an event's ``data``, a checkpoint's metrics, a CSV row).

    Unknown keys are ignored; non-numeric and non-finite values are skipped (CloudWatch
    rejects NaN and infinities). ``Step`` and ``Progress`` (from ``total_steps``) are added
    only when the mapping holds a training metric, so that a validation-only record cannot
    move the training cursor past steps whose training metrics have not arrived yet.
    """
    step = step_of(data)
    if step is None:
        return
    found = []
    for key, raw in data.items():
        metric = metric_for(str(key))
        value = finite(raw)
        if metric is not None and value is not None:
            found.append(Point(metric.name, step, timestamp, value))
    if any(p.family == "train" for p in found):
        found.append(Point("Step", step, timestamp, float(step)))
        total = next((p.value for p in found if p.metric == "TotalSteps"), None)
        if total:
            found.append(Point("Progress", step, timestamp, round(100.0 * step / total, 3)))
    yield from found


def first_per_step(points: list[Point]) -> list[Point]:
    """One value per (metric, step), the first one given winning; sorted by step."""
    seen: set[tuple[str, int]] = set()
    unique = []
    for point in points:
        key = (point.metric, point.step)
        if key not in seen:
            seen.add(key)
            unique.append(point)
    unique.sort(key=lambda p: (p.step, p.metric))
    return unique
