"""The evaluation's aggregation, in a bundle of its own (issue 21): the only entry point that
draws the report's figure, so only this bundle carries matplotlib and numpy (about 140 MB
unzipped); the evaluation bundle (start, prepare, serving, the Distributed Map's workers)
stays without them.

- ``aggregate``: after the Map. ``<context>`` (+ ``"map"``: the Map's output) → records.jsonl,
  summary.json, report.md, report.png under the prefix, CloudWatch metrics, the promotion
  gate (``/bedrock-rft/<env>/model``), the topic's paragraph → the summary.

The code is the evaluation's ``rft_eval`` package (``lambda/evaluation/rft_eval``), which the
bundle build copies in (``stacks/bundle_store.SHARED_SOURCES``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="evaluation")


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
        extra={k: summary[k] for k in ("job_id", "n_prompts", "excluded_share", "decision")},
    )
    return summary
