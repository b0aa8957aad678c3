"""Ids the evaluation derives: a job id safe for S3 keys and execution names, a prompt's id."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Step Functions execution names are at most 80 characters; S3 prefixes stay short.
MAX_SAFE_LENGTH = 64


def safe_job_id(job_id: str) -> str:
    """``job_id`` with every character outside ``[A-Za-z0-9_-]`` replaced by ``-``, at most 64
    characters; a native job ARN contributes its last path segment (the job's own id)."""
    text = job_id.strip()
    if text.startswith("arn:"):
        text = text.rsplit("/", 1)[-1]
    safe = _UNSAFE.sub("-", text)[:MAX_SAFE_LENGTH]
    if not safe.strip("-"):
        raise ValueError(f"job id {job_id!r}: nothing left to name the evaluation by")
    return safe


def canonical_json(value: Any) -> str:
    """``value`` as compact JSON with sorted keys: the same value, the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def prompt_id(row: dict[str, Any]) -> str:
    """A validation row's id: its ``id`` field when that is a non-empty string, else the first
    16 hex digits of the SHA-256 of the row's canonical JSON."""
    found = row.get("id")
    if isinstance(found, str) and found:
        return found
    return hashlib.sha256(canonical_json(row).encode("utf-8")).hexdigest()[:16]
