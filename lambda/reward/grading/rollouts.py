"""Rollout samples: a share of what the grader saw, kept in the environment's own bucket.

``ROLLOUT_SAMPLES_URI`` (``s3://bucket/prefix``) says where, ``ROLLOUT_SAMPLE_RATE`` (0 to 1)
how many: every rollout that got a grader error is kept, plus a random ``rate`` share of the
others; rate 0 (or no URI) turns sampling off and nothing is written at all. The draw is
seeded with the batch id (the Lambda request id), so the same batch keeps the same rollouts.

One batch is at most one ``PutObject``: gzipped JSON Lines at
``<prefix>/<YYYY-MM-DD>/<HH>/<batch id>.jsonl.gz`` (UTC), encrypted by the bucket's default
KMS key (no encryption header is sent, so the bucket's own key applies). One line per kept
rollout: its id, score, sub-grader values and flags, the grader's error (if any), the prompt,
the response, the reference and the other dataset fields.

Writing never fails a batch: any error (no permission, no bucket, a timeout) is logged
without the data and counted (``RolloutSampleWriteErrors``); the scores go back as usual.
botocore (bundled with the function) is imported on the first write, never at cold start.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from grading.base import GRADER_ERROR, Grade
from grading.log import logger
from grading.samples import Sample

if TYPE_CHECKING:
    from botocore.client import BaseClient

URI_VAR: Final = "ROLLOUT_SAMPLES_URI"
RATE_VAR: Final = "ROLLOUT_SAMPLE_RATE"
RECORD_VERSION: Final = 1
# A PutObject of a batch (about 150 KB gzipped for 1,024 rollouts) takes well under a second
# in region; two attempts at most, each bounded, and a write is skipped when the invocation
# has less time left than both attempts could take (with botocore's backoff between them).
CONNECT_TIMEOUT: Final = 1.0
READ_TIMEOUT: Final = 3.0
ATTEMPTS: Final = 2
_MIN_REMAINING: Final = ATTEMPTS * (CONNECT_TIMEOUT + READ_TIMEOUT) + 1.0


class SettingError(ValueError):
    """A sampling setting the function cannot use (named with the variable and value)."""


@dataclass(frozen=True, slots=True)
class Destination:
    """Where and how many rollouts are kept."""

    bucket: str
    prefix: str  # without a trailing slash; may be empty
    rate: float
    # A local folder instead of a bucket (``file:///path``): for local runs such as a demo
    # without AWS; the stack always sets an s3:// URI.
    folder: str | None = None

    def key(self, batch_id: str, when: datetime) -> str:
        """The object key of one batch."""
        folder = f"{when:%Y-%m-%d}/{when:%H}/{_safe(batch_id)}.jsonl.gz"
        return f"{self.prefix}/{folder}" if self.prefix else folder


def _safe(batch_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in batch_id)[:128] or "batch"


def destination_from(environ: Mapping[str, str]) -> Destination | None:
    """The destination the environment names, or ``None`` when sampling is off (no URI, or
    rate 0). A malformed value raises :class:`SettingError` (the handler then keeps no
    samples and logs that line once, at cold start: a deploy-time mistake, never a batch's)."""
    uri = environ.get(URI_VAR, "").strip()
    rate_text = environ.get(RATE_VAR, "").strip()
    if not uri:
        return None
    try:
        rate = float(rate_text) if rate_text else 0.0
    except ValueError:
        raise SettingError(f"{RATE_VAR}={rate_text!r}: not a number (0 to 1)") from None
    if not 0.0 <= rate <= 1.0:
        raise SettingError(f"{RATE_VAR}={rate_text}: must be between 0 and 1")
    if rate == 0.0:
        return None
    if uri.startswith("file:///"):
        return Destination(bucket="", prefix="", rate=rate, folder=uri[7:])
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise SettingError(
            f"{URI_VAR}={uri!r}: must be s3://<bucket>/<prefix> (or file:///<folder>)"
        )
    bucket, _, prefix = uri[5:].partition("/")
    return Destination(bucket=bucket, prefix=prefix.strip("/"), rate=rate)


def chosen(
    grades: Sequence[Grade], outputs: Sequence[dict[str, Any]], rate: float, seed: str
) -> list[int]:
    """The positions kept: every grader error, and a seeded ``rate`` share of the rest."""
    import random  # only where sampling is on (cold start)

    draw = random.Random(seed).random  # noqa: S311 (a sample to read, not a secret)
    kept = []
    for index, (grade, output) in enumerate(zip(grades, outputs, strict=True)):
        if _error_of(grade, output) is not None or draw() < rate:
            kept.append(index)
    return kept


def _error_of(grade: Grade, output: dict[str, Any]) -> str | None:
    if grade.error is not None:
        return grade.error
    if any(metric.get("name") == GRADER_ERROR for metric in output["metrics_list"]):
        return f"score {grade.score} outside [0, 1]"  # set by the runner's own check
    return None


def record(
    index: int,
    *,
    raw: Any,
    sample: Sample | None,
    grade: Grade,
    output: dict[str, Any],
    context: Mapping[str, Any],
    signals: Mapping[str, Any],
) -> dict[str, Any]:
    """One JSON line: what the grader saw and decided for the rollout at ``index``."""
    metrics = output["metrics_list"]
    line: dict[str, Any] = {
        "v": RECORD_VERSION,
        **context,
        "index": index,
        "id": output["id"],
        "score": output["aggregate_reward_score"],
        # sub-grader values and flags (the first entry is the reward itself)
        "metrics": {metric["name"]: metric["value"] for metric in metrics[1:]},
        "error": _error_of(grade, output),
        **signals,
    }
    if sample is None:
        line["rollout"] = raw  # not parseable: kept as received, to see why
        return line
    item = dict(sample.item)
    line["prompt"] = sample.prompt_messages
    line["response"] = sample.output_text
    line["reference"] = item.pop("reference_answer", None)
    if item:
        line["fields"] = item
    return line


def encode(lines: Sequence[dict[str, Any]]) -> bytes:
    """Gzipped JSON Lines (level 5: most of level 9's size at a fraction of its time)."""
    import gzip

    text = "".join(json.dumps(line, ensure_ascii=False, default=str) + "\n" for line in lines)
    return gzip.compress(text.encode("utf-8"), compresslevel=5, mtime=0)


class Writer:
    """Puts one batch's object; the botocore client is made on first use and kept warm."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self._client: BaseClient | None = None
        self._lock = threading.Lock()

    def client(self) -> BaseClient:
        """The S3 client (botocore: bundled and pinned with the function)."""
        with self._lock:
            if self._client is None:
                import botocore.session
                from botocore.config import Config

                config = Config(
                    connect_timeout=CONNECT_TIMEOUT,
                    read_timeout=READ_TIMEOUT,
                    retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
                )
                session = botocore.session.get_session()
                # the function's own region (its bucket's): Lambda sets AWS_REGION
                region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                self._client = session.create_client("s3", region_name=region, config=config)
            return self._client

    def put(self, key: str, body: bytes) -> None:
        """One ``PutObject`` (the bucket's default encryption applies), or one local file."""
        if self.destination.folder is not None:
            path = Path(self.destination.folder) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            return
        self.client().put_object(
            Bucket=self.destination.bucket,
            Key=key,
            Body=body,
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one batch's sampling did: rollouts written, failed writes (0 or 1), the key."""

    written: int
    errors: int
    key: str | None = None


def keep(
    writer: Writer,
    *,
    event: Sequence[Any],
    samples: Sequence[Sample | None],
    grades: Sequence[Grade],
    outputs: Sequence[dict[str, Any]],
    signals: Sequence[Mapping[str, Any]],
    context: Mapping[str, Any],
    batch_id: str | None,
    remaining: float | None,
    now: datetime | None = None,
) -> Outcome:
    """Write the batch's chosen rollouts (never raises: a failure is logged and counted).

    ``remaining`` is the invocation's time left in seconds (None: no limit); with less than
    one full write's timeouts left, the write is skipped and counted as failed, so sampling
    can never make a batch miss its deadline."""
    if not batch_id:
        import uuid  # a Lambda request always has an id: only local runs come here

        batch_id = uuid.uuid4().hex
    batch = batch_id
    try:
        positions = chosen(grades, outputs, writer.destination.rate, batch)
        if not positions:
            return Outcome(written=0, errors=0)
        when = now or datetime.now(UTC)
        key = writer.destination.key(batch, when)
        if remaining is not None and remaining < _MIN_REMAINING:
            logger.warning(
                "rollout samples not written: too little time left",
                extra={"remaining_seconds": round(remaining, 3), "key": key},
            )
            return Outcome(written=0, errors=1, key=key)
        batch_context = {**context, "batch": batch, "time": when.isoformat(timespec="seconds")}
        lines = [
            record(
                i,
                raw=event[i],
                sample=samples[i],
                grade=grades[i],
                output=outputs[i],
                context=batch_context,
                signals=signals[i],
            )
            for i in positions
        ]
        started = time.monotonic()
        writer.put(key, encode(lines))
        logger.debug(
            "rollout samples written",
            extra={"key": key, "rollouts": len(lines), "ms": (time.monotonic() - started) * 1e3},
        )
        return Outcome(written=len(lines), errors=0, key=key)
    except Exception as err:  # never the batch's problem; the text names no rollout data
        logger.warning(
            "rollout samples not written",
            extra={"error": f"{type(err).__name__}: {_error_text(err)}"},
        )
        return Outcome(written=0, errors=1)


def _error_text(err: Exception) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict):  # botocore ClientError: the code and message only
        error = response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message', '')}"[:300]
    return str(err)[:300]
