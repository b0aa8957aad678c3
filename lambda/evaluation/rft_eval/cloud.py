"""The state machine's two evaluation steps on AWS: a Distributed Map child (``run_batch``)
and the aggregation after the Map (``aggregate``). Clients are passed in (the handler builds
them; tests pass moto's or stubbed ones)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rft_eval import gate, publish
from rft_eval.evaluate import evaluate, prompts
from rft_eval.grading import Grader
from rft_eval.outputs import build_summary, render
from rft_eval.records import PARTS, Record, from_jsonl, merge, part_name, to_jsonl
from rft_eval.sampling import Sampler
from rft_eval.settings import MODELS, Context

# Seconds a worker keeps for grading its batch and writing its part.
GRADING_RESERVE_SECONDS = 120.0
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


def worker_deadline(remaining_seconds: float) -> float:
    """The ``time.monotonic()`` after which a worker starts no model call and no retry wait:
    its time left, less what grading and writing the part need."""
    reserve = min(GRADING_RESERVE_SECONDS, remaining_seconds * 0.3)
    return time.monotonic() + remaining_seconds - reserve


def run_batch(
    context: Context,
    items: Sequence[dict[str, Any]],
    *,
    s3: Any,
    sampler: Sampler,
    grader: Grader,
    deadline: float | None = None,
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
        records = evaluate(items, models, context.settings, sampler, grader, deadline=deadline)
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
