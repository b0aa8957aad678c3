"""Dataset checks: every record of an RFT JSONL file, in one streaming pass.

The format (reference: bedrock-rft.md §3) is one JSON object per line with ``messages`` (the
prompt: system / user / assistant turns, ending with the user's) and ``reference_answer`` (any
JSON); ``id`` and other fields are optional (extra fields reach the grader as ``metadata``).
A training file holds 100 to 20,000 records.

Every problem names the file and the line (``train.jsonl line 7: ...``) and goes into a
:class:`~preflight.findings.Findings` collector, which groups and counts them.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from preflight.findings import Findings, plural
from preflight.tokens import content_text, estimate_prompt_tokens

Kind = Literal["train", "validation"]

ROLES = ("system", "user", "assistant")
MIN_TRAIN_RECORDS = 100
MAX_RECORDS = 20_000
# A synchronous Lambda payload is at most 6 MB: a record larger than that cannot reach the
# grader at all, since every rollout carries its prompt and metadata.
MAX_RECORD_BYTES = 6 * 1024 * 1024
# Above this a record is reported as oversized: it is about half of a 128k-token context
# window, and the grader receives it with every rollout of a batch.
WARN_RECORD_BYTES = 256 * 1024


@dataclass(frozen=True)
class Limits:
    """The bounds a file is checked against."""

    min_records: int = MIN_TRAIN_RECORDS
    max_records: int = MAX_RECORDS
    max_prompt_tokens: int | None = None
    max_record_bytes: int = MAX_RECORD_BYTES
    warn_record_bytes: int = WARN_RECORD_BYTES


@dataclass(frozen=True)
class Record:
    """A record that passed every error check (warnings allowed)."""

    line: int
    id: Any
    messages: list[dict[str, Any]]
    reference_answer: Any
    extra: dict[str, Any]
    prompt_tokens: int

    @property
    def label(self) -> str:
        """How reports refer to the record: its line, and its id when it has one."""
        return f"line {self.line}" + (f" (id {self.id})" if self.id is not None else "")


@dataclass
class DatasetResult:
    """What one pass over a file found (problems go to the shared :class:`Findings`)."""

    path: str
    kind: Kind
    lines: int = 0
    records: int = 0
    size_bytes: int = 0
    valid: list[Record] = field(default_factory=list)
    over_prompt_limit: int = 0
    max_prompt_tokens: int | None = None
    prompt_hashes: dict[bytes, int] = field(default_factory=dict)

    def token_stats(self) -> dict[str, int]:
        """Estimated prompt tokens of the valid records: min, median, p95, max."""
        tokens = sorted(r.prompt_tokens for r in self.valid)
        if not tokens:
            return {}
        p95 = tokens[min(len(tokens) - 1, round(0.95 * (len(tokens) - 1)))]
        return {
            "min": tokens[0],
            "median": int(statistics.median(tokens)),
            "p95": p95,
            "max": tokens[-1],
        }

    def to_dict(self) -> dict[str, Any]:
        """A summary as plain JSON data (the records themselves are not included)."""
        return {
            "path": self.path,
            "kind": self.kind,
            "lines": self.lines,
            "records": self.records,
            "valid_records": len(self.valid),
            "bytes": self.size_bytes,
            "prompt_tokens_estimate": self.token_stats(),
            "max_prompt_tokens": self.max_prompt_tokens,
            "over_prompt_limit": self.over_prompt_limit,
        }


def _lines(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """(line number, raw bytes without the line break, bytes with it), streaming."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, raw.rstrip(b"\r\n"), len(raw)


def _check_content(content: Any) -> str | None:
    """Why a message's content is unusable, or None when it is fine."""
    if isinstance(content, str):
        return None if content.strip() else "empty"
    if isinstance(content, list):
        if not content:
            return "empty"
        for block in content:
            if not (isinstance(block, dict) and isinstance(block.get("text"), str)):
                return "shape"
        return None if content_text(content).strip() else "empty"
    if content is None:
        return "empty"
    return "shape"


def _is_empty(value: Any) -> bool:
    return value in ("", {}, []) or (isinstance(value, str) and not value.strip())


class _Checker:
    """The per-line checks of one file (state: ids and prompts seen so far)."""

    def __init__(self, result: DatasetResult, limits: Limits, findings: Findings) -> None:
        self.result = result
        self.limits = limits
        self.findings = findings
        self.ids: dict[Any, int] = {}
        self.where = result.path

    def error(self, code: str, title: str, line: int, message: str) -> None:
        self.findings.error(code, title, f"{self.where} line {line}: {message}")

    def warning(self, code: str, title: str, line: int, message: str) -> None:
        self.findings.warning(code, title, f"{self.where} line {line}: {message}")

    def check_line(self, line: int, raw: bytes) -> None:
        size = len(raw)
        if not raw.strip():
            self.error(
                "blank-line",
                "blank line",
                line,
                "blank line (JSONL needs one JSON object per line)",
            )
            return
        self.result.records += 1
        if size > self.limits.max_record_bytes:
            self.error(
                "record-too-large",
                "record too large for a Lambda payload",
                line,
                f"record is {size:,} bytes; the grader Lambda's payload limit is "
                f"{self.limits.max_record_bytes:,}",
            )
            return
        if size > self.limits.warn_record_bytes:
            self.warning(
                "record-large",
                "oversized record",
                line,
                f"record is {size:,} bytes (over {self.limits.warn_record_bytes:,})",
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            self.error(
                "invalid-utf8",
                "not valid UTF-8",
                line,
                f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})",
            )
            return
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            self.error(
                "invalid-json",
                "not valid JSON",
                line,
                f"not valid JSON: {err.msg} (column {err.colno})",
            )
            return
        if not isinstance(data, dict):
            self.error(
                "not-object",
                "line is not a JSON object",
                line,
                f"expected a JSON object, got {type(data).__name__}",
            )
            return
        self.check_record(line, data)

    def check_record(self, line: int, data: dict[str, Any]) -> None:
        ok = self.check_messages(line, data)
        if "reference_answer" not in data or data["reference_answer"] is None:
            what = "missing" if "reference_answer" not in data else "null"
            self.error(
                "reference-missing", "reference_answer missing", line, f"reference_answer is {what}"
            )
            ok = False
        elif _is_empty(data["reference_answer"]):
            self.warning(
                "reference-empty",
                "reference_answer empty",
                line,
                f"reference_answer is empty ({json.dumps(data['reference_answer'])})",
            )
        record_id = data.get("id")
        if "id" in data:
            ok = self.check_id(line, record_id) and ok
        if not ok:
            return
        messages: list[dict[str, Any]] = data["messages"]
        tokens = estimate_prompt_tokens(messages)
        limit = self.limits.max_prompt_tokens
        if limit is not None and tokens > limit:
            self.result.over_prompt_limit += 1
            self.warning(
                "prompt-too-long",
                "prompt longer than maxPromptLength (filtered out)",
                line,
                f"prompt is about {tokens:,} tokens, over maxPromptLength "
                f"{limit:,}: training skips it",
            )
        digest = hashlib.blake2b(
            json.dumps(messages, sort_keys=True, ensure_ascii=False).encode(), digest_size=16
        ).digest()
        first = self.result.prompt_hashes.setdefault(digest, line)
        if first != line:
            self.warning(
                "duplicate-prompt", "duplicate prompt", line, f"same messages as line {first}"
            )
        extra = {k: v for k, v in data.items() if k not in ("id", "messages", "reference_answer")}
        self.result.valid.append(
            Record(
                line=line,
                id=record_id,
                messages=messages,
                reference_answer=data["reference_answer"],
                extra=extra,
                prompt_tokens=tokens,
            )
        )

    def check_id(self, line: int, record_id: Any) -> bool:
        if isinstance(record_id, bool) or not isinstance(record_id, str | int):
            self.error(
                "bad-id",
                "id is not a string",
                line,
                f"id must be a string (or an integer), got {json.dumps(record_id)}",
            )
            return False
        if isinstance(record_id, str) and not record_id.strip():
            self.error("bad-id", "id is not a string", line, "id is an empty string")
            return False
        first = self.ids.setdefault(record_id, line)
        if first != line:
            self.error(
                "duplicate-id",
                "duplicate id",
                line,
                f"id {json.dumps(record_id)} already used on line {first}",
            )
            return False
        return True

    def check_messages(self, line: int, data: dict[str, Any]) -> bool:
        if "messages" not in data:
            self.error("messages-missing", "messages missing", line, "messages is missing")
            return False
        messages = data["messages"]
        if not isinstance(messages, list) or not messages:
            got = "an empty list" if messages == [] else json.dumps(messages)[:40]
            self.error(
                "messages-empty",
                "messages not a non-empty list",
                line,
                f"messages must be a non-empty list, got {got}",
            )
            return False
        ok = True
        for index, message in enumerate(messages):
            where = f"messages[{index}]"
            if not isinstance(message, dict) or "role" not in message:
                self.error(
                    "message-shape",
                    "message without role/content",
                    line,
                    f"{where} must be an object with role and content",
                )
                ok = False
                continue
            role = message["role"]
            if role not in ROLES:
                self.error(
                    "unknown-role",
                    "unknown role",
                    line,
                    f"{where}.role {json.dumps(role)} is not one of {', '.join(ROLES)}",
                )
                ok = False
            if role == "system" and index > 0:
                self.warning(
                    "system-not-first",
                    "system message not first",
                    line,
                    f"{where} is a system message after other turns",
                )
            problem = _check_content(message.get("content"))
            if problem == "empty":
                self.error("empty-content", "empty message", line, f"{where}.content is empty")
                ok = False
            elif problem == "shape":
                self.error(
                    "bad-content",
                    "content neither text nor text blocks",
                    line,
                    f"{where}.content must be a string or a list of "
                    '{"type": "text", "text": ...} blocks',
                )
                ok = False
        last = messages[-1]
        if isinstance(last, dict) and last.get("role") != "user":
            self.error(
                "last-not-user",
                "last message not from the user",
                line,
                f"the last message is from {json.dumps(last.get('role'))}; the prompt "
                "must end with the user's turn",
            )
            ok = False
        return ok


def check_dataset(
    path: Path, kind: Kind, limits: Limits, findings: Findings, display: str | None = None
) -> DatasetResult:
    """Check every record of ``path`` in one pass; problems go to ``findings``.

    ``display`` is how messages name the file (default: the path as given).
    """
    result = DatasetResult(
        path=display or str(path), kind=kind, max_prompt_tokens=limits.max_prompt_tokens
    )
    checker = _Checker(result, limits, findings)
    for line, raw, stored in _lines(path):
        result.lines = line
        result.size_bytes += stored  # the file's real size, line breaks included
        checker.check_line(line, raw)
    where = result.path
    if result.records < limits.min_records:
        findings.error(
            "too-few-records",
            "too few records",
            f"{where}: {plural(result.records, 'record')}; the minimum is {limits.min_records:,}",
        )
    if result.records > limits.max_records:
        findings.error(
            "too-many-records",
            "too many records",
            f"{where}: {plural(result.records, 'record')}; the maximum is {limits.max_records:,}",
        )
    usable = len(result.valid) - result.over_prompt_limit
    if (
        result.over_prompt_limit
        and usable < limits.min_records <= result.records <= limits.max_records
    ):
        findings.error(
            "too-few-after-filter",
            "too few records left after length filtering",
            f"{where}: only {plural(usable, 'prompt')} fit maxPromptLength "
            f"{limits.max_prompt_tokens:,}; the minimum is {limits.min_records:,}",
        )
    return result


def check_overlap(train: DatasetResult, validation: DatasetResult, findings: Findings) -> None:
    """Warn about validation prompts that also appear in the training file (leakage)."""
    for digest, line in validation.prompt_hashes.items():
        train_line = train.prompt_hashes.get(digest)
        if train_line is not None:
            findings.warning(
                "validation-in-train",
                "validation prompt also in training data",
                f"{validation.path} line {line}: same messages as {train.path} line {train_line}",
            )
