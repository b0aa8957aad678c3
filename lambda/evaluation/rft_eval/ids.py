"""Stable identifiers: a job id made safe for names and S3 keys, and a validation row's id."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
SAFE_ID_MAX = 64  # Step Functions execution names are at most 80 characters


def safe_job_id(job_id: str) -> str:
    """``job_id`` with every character outside ``[A-Za-z0-9_-]`` replaced by ``-``, at most
    64 characters; a native job ARN gives its last path segment (the job's own id)."""
    if job_id.startswith("arn:"):
        job_id = job_id.rsplit("/", 1)[-1]
    return _UNSAFE.sub("-", job_id)[:SAFE_ID_MAX]


def prompt_id(row: dict[str, Any]) -> str:
    """A validation row's id: its ``id`` field if that is a string, else the first 16 hex
    digits of the SHA-256 of the row's canonical JSON."""
    given = row.get("id")
    if isinstance(given, str):
        return given
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
