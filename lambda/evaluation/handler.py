"""The evaluation's Lambda entry points (one bundle; each a function of its own).

``start`` turns a succeeded job (EventBridge event or the metrics collector's request) into
one Step Functions execution; ``prepare`` is the state machine's first state and returns the
context every later state takes; ``serve``/``serve_status`` put the tuned model of a native job
on an on-demand deployment; ``cleanup`` deletes those deployments when the stack is deleted.
The code lives in ``rft_eval``; each handler imports its module when called, so that a function
loads only what it uses (the trigger, serving and clean-up functions never import the
evaluation's heavier libraries).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger

logger = Logger(service="evaluation")


@functools.cache
def _client(service: str) -> Any:
    return boto3.client(service)


@logger.inject_lambda_context(log_event=True)
def start(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Start the evaluation of the succeeded job the event names (at most once per job)."""
    from rft_eval.trigger import parse_trigger, start_evaluation

    job = parse_trigger(event, default_backend=os.environ.get("RFT_BACKEND", "openai"))
    result = start_evaluation(_client("stepfunctions"), os.environ["STATE_MACHINE_ARN"], job)
    logger.info("evaluation trigger", extra={"job_id": job.job_id, **result})
    return result


@logger.inject_lambda_context(log_event=True)
def prepare(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The evaluation context of the job in the execution input (or ``{"skip": <why>}``)."""
    from rft_eval.prepare import Settings
    from rft_eval.prepare import prepare as prepare_context

    result = prepare_context(event, Settings.from_env(), _client("ssm"))
    if "skip" in result:
        logger.warning("evaluation skipped", extra={"reason": result["skip"]})
    return result


@logger.inject_lambda_context(log_event=True)
def serve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Native backend: find or create the tuned model's on-demand deployment;
    ``{"deployment_arn", "status", "failure"}``."""
    from rft_eval import serving

    return serving.serve(event)


@logger.inject_lambda_context(log_event=True)
def serve_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"deployment_arn"}`` → ``{"deployment_arn", "status", "failure"}``."""
    from rft_eval import serving

    return serving.serve_status(event)


# The event carries a pre-signed response URL: not logged.
@logger.inject_lambda_context(log_event=False)
def cleanup(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Custom resource (Provider framework ``onEvent``): on Delete, delete the deployments
    this environment created unless ``OnDelete`` is ``retain``."""
    from rft_eval import cleanup as resource

    return resource.on_event(event, lambda: context.get_remaining_time_in_millis() / 1000)
