"""One record per sample, and how records are stored: JSON lines, in parts written by the
Distributed Map's workers and merged by the aggregation.

A record: ``{"prompt_id", "model": "base" | "tuned", "model_id", "sample", "completion",
"reward", "metrics": {name: value}, "error": null | "<why>"}``. A record with an ``error`` has
no reward: its call (or its grading) failed after the retries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from rft_eval.settings import MODELS

PARTS = "records/"


@dataclass(frozen=True)
class Record:
    """One sample of one model on one prompt, graded (``reward``) or failed (``error``)."""

    prompt_id: str
    model: str
    model_id: str
    sample: int
    completion: str | None = None
    reward: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def order(self) -> tuple[str, int, int]:
        """Sort key: prompt id, model (base first), sample."""
        return (self.prompt_id, MODELS.index(self.model), self.sample)

    def to_dict(self) -> dict[str, Any]:
        """The record's JSON object."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Record:
        """A record from its JSON object."""
        model = raw["model"]
        if model not in MODELS:
            raise ValueError(f"record of prompt {raw.get('prompt_id')}: model {model!r}")
        reward = raw.get("reward")
        return cls(
            prompt_id=str(raw["prompt_id"]),
            model=model,
            model_id=str(raw["model_id"]),
            sample=int(raw["sample"]),
            completion=raw.get("completion"),
            reward=None if reward is None else float(reward),
            metrics={str(k): float(v) for k, v in (raw.get("metrics") or {}).items()},
            error=raw.get("error"),
        )


def to_jsonl(records: Iterable[Record]) -> str:
    """``records`` sorted by prompt id, model and sample, one JSON object per line."""
    ordered = sorted(records, key=lambda r: r.order)
    return "".join(json.dumps(r.to_dict(), sort_keys=True) + "\n" for r in ordered)


def from_jsonl(text: str) -> list[Record]:
    """The records of a JSON-lines text."""
    return [Record.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]


def part_name(prompt_ids: Iterable[str]) -> str:
    """The part a worker writes for its prompts: the same prompts, the same name (a retried
    child overwrites, never duplicates)."""
    digest = hashlib.sha256("\n".join(sorted(prompt_ids)).encode("utf-8")).hexdigest()[:16]
    return f"{PARTS}part-{digest}.jsonl"


def merge(parts: Iterable[list[Record]]) -> list[Record]:
    """Every part's records, each (prompt, model, sample) once (a prompt in two parts, as after
    a re-run with another batch size, counts once), sorted."""
    seen: dict[tuple[str, int, int], Record] = {}
    for records in parts:
        for record in records:
            seen.setdefault(record.order, record)
    return [seen[key] for key in sorted(seen)]
