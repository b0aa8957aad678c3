"""The evaluation's Lambda functions (one bundle, one function per state of the state machine).

Each entry point is thin: the code is in ``rft_eval`` (and imported inside the function, so
that a function imports only what its step needs; ``openai`` and ``matplotlib`` are heavy).

- ``work``: a Distributed Map child. ``{"Items": [<validation rows>], "BatchInput": <context>}``
  → both models sampled on the rows, graded by the job's reward Lambda version, records
  written to ``<prefix>records/part-<digest>.jsonl`` → ``{"part", "prompts",
  "failed_prompts"}``.
- ``aggregate``: after the Map. ``<context>`` (+ ``"map"``: the Map's output) → records.jsonl,
  summary.json, report.md, report.png under the prefix, CloudWatch metrics, the promotion
  gate (``/bedrock-rft/<env>/model``), the topic's paragraph → the summary.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="evaluation")


@logger.inject_lambda_context(log_event=False)
def work(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Evaluate one batch of validation rows (a Distributed Map child)."""
    import boto3
    from rft_eval.cloud import run_batch, worker_deadline
    from rft_eval.grading import LambdaGrader
    from rft_eval.retry import Backoff
    from rft_eval.sampling import BedrockSampler, OpenAISampler, Sampler
    from rft_eval.settings import parse_context

    ctx = parse_context(event.get("BatchInput"))
    items = event.get("Items")
    if not isinstance(items, list):
        raise ValueError("the event has no Items list (the Distributed Map's batch)")
    deadline = worker_deadline(context.get_remaining_time_in_millis() / 1000.0)
    backoff = Backoff(deadline=deadline)
    sampler: Sampler
    if ctx.backend == "bedrock":
        sampler = BedrockSampler.for_region(ctx.region, backoff=backoff)
    else:
        sampler = OpenAISampler(ctx.region, route=ctx.mantle_route, backoff=backoff)
    grader = LambdaGrader(boto3.client("lambda", region_name=ctx.region), ctx.reward_function_arn)
    s3 = boto3.client("s3", region_name=ctx.region)
    result = run_batch(ctx, items, s3=s3, sampler=sampler, grader=grader, deadline=deadline)
    logger.info("batch evaluated", extra=result)
    return result


@logger.inject_lambda_context(log_event=False)
def aggregate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Merge the Map's parts into the outputs, publish, gate and notify; the summary."""
    import boto3
    from rft_eval.cloud import aggregate as run_aggregate
    from rft_eval.settings import parse_context

    ctx = parse_context({k: v for k, v in event.items() if k != "map"})
    summary = run_aggregate(
        ctx,
        event.get("map"),
        s3=boto3.client("s3", region_name=ctx.region),
        ssm=boto3.client("ssm", region_name=ctx.region),
        cloudwatch=boto3.client("cloudwatch", region_name=ctx.region),
        sns=boto3.client("sns", region_name=ctx.region) if ctx.topic_arn else None,
    )
    logger.info(
        "evaluation aggregated",
        extra={k: summary[k] for k in ("job_id", "n_prompts", "promoted", "promotion_reason")},
    )
    return summary
