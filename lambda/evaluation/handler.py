"""The evaluation's Lambda entry points (one bundle; each a function of its own).

``start`` turns a succeeded job (EventBridge event or the metrics collector's request) into
one Step Functions execution; ``prepare`` is the state machine's first state and returns the
context every later state takes. The code lives in ``rft_eval``; handlers stay thin so the
trigger starts fast.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from rft_eval.prepare import Settings
from rft_eval.prepare import prepare as prepare_context
from rft_eval.trigger import parse_trigger, start_evaluation

logger = Logger()


@functools.cache
def _client(service: str) -> Any:
    return boto3.client(service)


@logger.inject_lambda_context(log_event=True)
def start(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Start the evaluation of the succeeded job the event names (at most once per job)."""
    job = parse_trigger(event, default_backend=os.environ.get("RFT_BACKEND", "openai"))
    result = start_evaluation(_client("stepfunctions"), os.environ["STATE_MACHINE_ARN"], job)
    logger.info("evaluation trigger", extra={"job_id": job.job_id, **result})
    return result


@logger.inject_lambda_context(log_event=True)
def prepare(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The evaluation context of the job in the execution input (or ``{"skip": <why>}``)."""
    result = prepare_context(event, Settings.from_env(), _client("ssm"))
    if "skip" in result:
        logger.warning("evaluation skipped", extra={"reason": result["skip"]})
    return result
