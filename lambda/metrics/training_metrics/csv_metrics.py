"""Training points from a native job's metrics file (CSV), read by column name.

Which columns an RFT job writes is [open] (bedrock-rft.md §4 documents only the console's
graph names and the supervised columns), so: columns are matched by name through the
catalog, unknown columns are ignored, a row whose step cannot be read is skipped (the file
may be read while Bedrock is appending to it), and a file without any step column is an
error naming the file, because then no point could be placed on a curve.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from training_metrics.catalog import STEP_KEYS, TIME_KEYS, canonical
from training_metrics.model import Point
from training_metrics.points import finite, points_from_mapping


class MetricsFileError(ValueError):
    """A metrics file that cannot be read as step-wise metrics."""


def parse_metrics_csv(text: str, *, source: str, default_time: float) -> list[Point]:
    """The points in one metrics CSV; ``source`` names the file in errors.

    ``default_time`` stamps rows without a time column of their own (the file's
    last-modified time: close to when those rows were written).
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return []
    keys = [canonical(name) for name in header]
    if not any(k in keys for k in STEP_KEYS):
        raise MetricsFileError(
            f"{source}: no step column (looked for {', '.join(STEP_KEYS)}); "
            f"columns: {', '.join(header)}"
        )
    time_col = next((keys.index(k) for k in TIME_KEYS if k in keys), None)
    points: list[Point] = []
    for row in reader:
        stamp = default_time
        if time_col is not None and time_col < len(row):
            stamp = parse_time(row[time_col]) or default_time
        # a short (half-written) row simply lacks its last columns
        points.extend(points_from_mapping(dict(zip(header, row, strict=False)), stamp))
    return points


def parse_time(raw: str) -> float | None:
    """Seconds since the epoch from epoch seconds, epoch milliseconds or ISO 8601 with a zone."""
    text = raw.strip()
    number = finite(text)
    if number is not None:
        # 1e11 seconds is the year 5138: anything larger is milliseconds
        return number / 1000.0 if number > 1e11 else number
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # a wall-clock time without a zone cannot be placed safely
    return parsed.timestamp()
