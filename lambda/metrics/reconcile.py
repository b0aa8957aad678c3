"""Orphaned-job reconciler: Lambda entry point (``reconcile.handler``, same bundle as the
collector).

Runs on its own schedule; what it does is described in ``training_metrics/orphans.py``. This
module only wires the AWS clients and the environment's backend. The ``openai`` package is
imported only when an OpenAI-compatible client is built, so native runs never load it.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from rft_common.mantle import openai_client
from training_metrics.orphans import OrphanAws, OrphanSettings, reconcile
from training_metrics.own_jobs import BedrockJobs, JobLister, OpenAIJobs

logger = Logger()


@functools.cache
def _aws() -> OrphanAws:
    return OrphanAws(
        ssm=boto3.client("ssm"),
        cloudwatch=boto3.client("cloudwatch"),
        sns=boto3.client("sns"),
        cloudformation=boto3.client("cloudformation"),
    )


@functools.cache
def bedrock_client() -> Any:
    """The native API's client (cached across warm invocations)."""
    return boto3.client("bedrock")


def make_lister(settings: OrphanSettings) -> JobLister:
    """The environment's backend, listed by the names its jobs are given."""
    if settings.backend == "bedrock":
        return BedrockJobs(bedrock_client(), settings.name_prefix)
    # A run must finish well inside the function's timeout: bounded retries and waits.
    return OpenAIJobs(openai_client(None, max_retries=2, timeout=20.0), settings.name_prefix)


@logger.inject_lambda_context(log_event=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Find the environment's running jobs that nobody recorded; report or stop them."""
    settings = OrphanSettings.from_env()
    summary = reconcile(
        settings=settings, aws=_aws(), lister=make_lister(settings), now=datetime.now(UTC)
    )
    logger.info("reconciler run", extra=summary)
    return summary
