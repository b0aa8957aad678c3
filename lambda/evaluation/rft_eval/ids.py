"""Stable ids derived from a job and from validation rows (the evaluation's shared naming)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
SAFE_JOB_ID_MAX = 64


def safe_job_id(job_id: str) -> str:
    """``job_id`` as a name part: a native job ARN's last path segment, every character
    outside ``[A-Za-z0-9_-]`` replaced by ``-``, at most 64 characters."""
    if job_id.startswith("arn:"):
        job_id = job_id.rsplit("/", 1)[-1]
    return _UNSAFE.sub("-", job_id)[:SAFE_JOB_ID_MAX]


def prompt_id(row: dict[str, Any]) -> str:
    """A validation row's id: its string ``id`` field, else the first 16 hex digits of the
    sha256 of its canonical JSON."""
    given = row.get("id")
    if isinstance(given, str):
        return given
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
