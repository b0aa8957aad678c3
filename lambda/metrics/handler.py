"""Training-metrics collector: Lambda entry point.

Runs on a schedule while an environment has a job; ``{"job_id": "<id>"}`` (optionally with
``"backend": "openai" | "bedrock"``) collects that job now. What it does is described in
``training_metrics/collector.py``; this module only wires the AWS clients and the backends.
The ``openai`` package is imported only when an OpenAI-compatible client is built
(``rft_common.mantle``), so native runs never load it.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from rft_common.mantle import openai_client
from training_metrics.bedrock_source import BedrockSource
from training_metrics.collector import Aws, Settings, collect
from training_metrics.model import Source
from training_metrics.openai_source import OpenAISource

logger = Logger()


@functools.cache
def _aws() -> Aws:
    return Aws(
        ssm=boto3.client("ssm"),
        cloudwatch=boto3.client("cloudwatch"),
        sns=boto3.client("sns"),
        lambda_client=boto3.client("lambda"),
    )


def make_source(backend: str, region: str | None) -> Source:
    """The backend's :class:`Source`, for the job's own region when it was recorded."""
    if backend == "bedrock":
        return BedrockSource(
            boto3.client("bedrock", region_name=region), boto3.client("s3", region_name=region)
        )
    # A run must finish well inside the function's timeout: bounded retries and waits.
    return OpenAISource(openai_client(region, max_retries=3, timeout=30.0))


@logger.inject_lambda_context(log_event=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Collect the recorded job's new metrics (or the job named in the event)."""
    summary = collect(
        event,
        settings=Settings.from_env(),
        aws=_aws(),
        make_source=make_source,
        now=datetime.now(UTC),
    )
    logger.info("collector run", extra=summary)
    return summary
