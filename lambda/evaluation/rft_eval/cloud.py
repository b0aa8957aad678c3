"""The state machine's two evaluation steps on AWS: a Distributed Map child (``run_batch``)
and the aggregation after the Map (``aggregate``). Clients are passed in (the handler builds
them; tests pass moto's or stubbed ones)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rft_eval import gate, publish
from rft_eval.evaluate import evaluate, prompts
from rft_eval.grading import Grader, read_timeout
from rft_eval.outputs import build_summary, render
from rft_eval.records import PARTS, Record, from_jsonl, merge, part_name, to_jsonl
from rft_eval.sampling import Sampler
from rft_eval.settings import MODELS, Context

# Seconds a worker keeps, after grading, to write its part.
WRITE_SECONDS = 30.0
# The defaults of the stack's settings (stacks.config: evaluation.request_timeout_seconds,
# reward_function.timeout_seconds), for a worker whose environment does not name them.
REQUEST_TIMEOUT_SECONDS = 300.0
REWARD_TIMEOUT_SECONDS = 300.0
# Grader invocations in flight at once per worker: its batches graded together (the default
# items_per_batch, 10, with 16 samples per prompt makes 7 batches of 50), within one timeout.
GRADING_CONCURRENCY = 8
CONTENT_TYPES = {
    "records.jsonl": "application/x-ndjson",
    "summary.json": "application/json",
    "report.md": "text/markdown; charset=utf-8",
    "report.png": "image/png",
}


def _failed_prompts(records: Sequence[Record]) -> int:
    return len({r.prompt_id for r in records if r.error is not None})


def _read(s3: Any, bucket: str, key: str, *, forbidden_is_absent: bool = False) -> str | None:
    """The object's text, or None when it does not exist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code")
        # S3 answers a missing key with 403, not 404, to a caller that may not list the
        # bucket: for the part of a first (not retried) child, that means "not written yet".
        if code in ("NoSuchKey", "404") or (forbidden_is_absent and code == "AccessDenied"):
            return None
        raise
    return str(body.decode("utf-8"))


@dataclass(frozen=True)
class Deadlines:
    """A worker's time, in ``time.monotonic()`` instants, from its end backwards: the part is
    written in the last ``WRITE_SECONDS``; before that, one grader invocation (its read
    timeout, as the grader's batches run together); before that, model calls end. So a model
    call starts only when ``request_timeout`` is left before ``sampling``."""

    sampling: float  # every model call (and retry wait) has ended by then
    grading: float  # every grader invocation has ended by then
    request_timeout: float
    grader_read_timeout: float

    @property
    def last_call_start(self) -> float:
        """The last instant a model call may start."""
        return self.sampling - self.request_timeout


def worker_deadlines(
    remaining_seconds: float,
    request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    reward_timeout: float = REWARD_TIMEOUT_SECONDS,
    now: float | None = None,
) -> Deadlines:
    """The deadlines of a worker with ``remaining_seconds`` left (see :class:`Deadlines`)."""
    end = (time.monotonic() if now is None else now) + remaining_seconds
    grading = end - WRITE_SECONDS
    reading = read_timeout(reward_timeout)
    return Deadlines(grading - reading, grading, request_timeout, reading)


def timeouts_from_env(env: Mapping[str, str] | None = None) -> tuple[float, float]:
    """``(request timeout, reward function timeout)`` in seconds, as the stack sets them."""
    env = os.environ if env is None else env

    def seconds(name: str, default: float) -> float:
        raw = env.get(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"environment variable {name} = {raw!r}: not a number") from None
        if not value > 0:
            raise ValueError(f"environment variable {name} = {raw!r}: must be above 0")
        return value

    return (
        seconds("REQUEST_TIMEOUT_SECONDS", REQUEST_TIMEOUT_SECONDS),
        seconds("REWARD_TIMEOUT_SECONDS", REWARD_TIMEOUT_SECONDS),
    )


def run_batch(
    context: Context,
    items: Sequence[dict[str, Any]],
    *,
    s3: Any,
    sampler: Sampler,
    grader: Grader,
    deadline: float | None = None,
    grading_concurrency: int = 1,
) -> dict[str, Any]:
    """Evaluate one batch of validation rows and write its part; ``{"part", "prompts",
    "failed_prompts"}``. A retried child whose part exists already reuses it (no second
    round of model calls). Calls not started by ``deadline`` are recorded as failed."""
    ids = [pid for pid, _ in prompts(items)]
    key = context.key(part_name(ids))
    existing = _read(s3, context.artifacts.bucket, key, forbidden_is_absent=True)
    if existing is not None:
        records = from_jsonl(existing)
    else:
        models = {m: context.model_id(m) for m in MODELS}
        records = evaluate(
            items,
            models,
            context.settings,
            sampler,
            grader,
            deadline=deadline,
            grading_concurrency=grading_concurrency,
        )
        s3.put_object(
            Bucket=context.artifacts.bucket,
            Key=key,
            Body=to_jsonl(records).encode("utf-8"),
            ContentType=CONTENT_TYPES["records.jsonl"],
        )
    return {"part": key, "prompts": len(ids), "failed_prompts": _failed_prompts(records)}


def part_keys(context: Context, map_output: Any, s3: Any) -> list[str]:
    """The parts to merge: the children's outputs when the Map returned them, else every part
    under the evaluation's prefix (a Map with a ResultWriter returns only its manifest)."""
    if isinstance(map_output, list) and all(
        isinstance(item, dict) and isinstance(item.get("part"), str) for item in map_output
    ):
        return sorted({item["part"] for item in map_output})
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    prefix = context.key(PARTS)
    for page in paginator.paginate(Bucket=context.artifacts.bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl"))
    return sorted(keys)


def expected_prompts(context: Context, s3: Any) -> list[str]:
    """The ids of the prompts the Map was to evaluate: the first ``limit`` rows of the
    validation file (as the Map's reader takes them)."""
    from rft_eval.ids import prompt_id

    body = s3.get_object(Bucket=context.validation.bucket, Key=context.validation.key)["Body"]
    found: list[str] = []
    limit = context.settings.limit
    for line in body.iter_lines():
        if limit is not None and len(found) >= limit:
            break
        if line.strip():
            found.append(prompt_id(json.loads(line)))
    return found


def aggregate(
    context: Context,
    map_output: Any,
    *,
    s3: Any,
    ssm: Any,
    cloudwatch: Any,
    sns: Any | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Merge the parts, write the outputs, publish the metrics, apply the gate, notify;
    the summary."""
    moment = now or datetime.now(UTC)
    bucket = context.artifacts.bucket
    parts = []
    for key in part_keys(context, map_output, s3):
        text = _read(s3, bucket, key)
        if text is None:
            raise RuntimeError(f"s3://{bucket}/{key}: a worker's part is missing")
        parts.append(from_jsonl(text))
    records = merge(parts)
    expected = expected_prompts(context, s3)
    summary_uri = f"s3://{bucket}/{context.key('summary.json')}"
    summary = build_summary(
        records,
        context.settings,
        job_id=context.job_id,
        environment=context.environment,
        backend=context.backend,
        sources={
            "reward_function_arn": context.reward_function_arn,
            "validation": context.validation.uri,
            "records": f"s3://{bucket}/{context.key('records.jsonl')}",
        },
        expected=expected,
        promoted=(
            gate.read_promoted(ssm, context.model_parameter)
            if context.settings.promote_when.compare_with_promoted
            else None
        ),
    )
    for name, body in render(summary, records).items():
        s3.put_object(
            Bucket=bucket, Key=context.key(name), Body=body, ContentType=CONTENT_TYPES[name]
        )
    if summary["promoted"]:
        value = gate.parameter_value(summary, summary_uri, context.backend, moment)
        gate.promote(ssm, context.model_parameter, value)
    publish.put_metrics(cloudwatch, context.metrics_namespace, summary, context.environment, moment)
    if context.topic_arn and sns is not None:
        text = gate.notification(summary, context.environment, summary_uri)
        publish.notify(sns, context.topic_arn, context.environment, summary["promoted"], text)
    return {**summary, "summary_uri": summary_uri}
