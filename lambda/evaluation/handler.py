"""The evaluation's Lambda entry points (one bundle; each a function of its own).

- ``start``: a succeeded job (EventBridge event or the metrics collector's request) → one Step
  Functions execution, named after the job.
- ``prepare``: the state machine's first state; returns the context every later state takes.
- ``serve``/``serve_status``: the tuned model of a native job on an on-demand deployment.
- ``work``: a Distributed Map child. ``{"Items": [<validation rows>], "BatchInput": <context>}``
  → both models sampled on the rows, graded by the job's reward Lambda version, records
  written to ``<prefix>records/part-<digest>.jsonl`` → ``{"part", "prompts",
  "failed_prompts"}``.
- ``aggregate`` (after the Map) is ``lambda/evaluation_report``: the same ``rft_eval`` code in
  a bundle of its own, the only one with matplotlib and numpy (issue 21).
- ``cleanup``: custom resource; deletes the environment's deployments when the stack is deleted.

The code lives in ``rft_eval``; each handler imports its module when called, so that a function
loads only what it uses (the trigger, serving and clean-up functions never import the
evaluation's heavier libraries: ``openai``).
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

    return serving.serve(event, lambda: context.get_remaining_time_in_millis() / 1000)


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


@logger.inject_lambda_context(log_event=False)
def work(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Evaluate one batch of validation rows (a Distributed Map child)."""
    import boto3
    from rft_eval.cloud import GRADING_CONCURRENCY, run_batch, timeouts_from_env, worker_deadlines
    from rft_eval.grading import LambdaGrader, lambda_client
    from rft_eval.retry import Backoff
    from rft_eval.sampling import BedrockSampler, OpenAISampler, Sampler
    from rft_eval.settings import parse_context

    ctx = parse_context(event.get("BatchInput"))
    items = event.get("Items")
    if not isinstance(items, list):
        raise ValueError("the event has no Items list (the Distributed Map's batch)")
    request_timeout, reward_timeout = timeouts_from_env()
    deadlines = worker_deadlines(
        context.get_remaining_time_in_millis() / 1000.0, request_timeout, reward_timeout
    )
    # Every model call, retried or not, ends before the grading's time; every grader call
    # before the part is written.
    backoff = Backoff(deadline=deadlines.sampling, attempt_seconds=request_timeout)
    sampler: Sampler
    if ctx.backend == "bedrock":
        sampler = BedrockSampler.for_region(
            ctx.region, backoff=backoff, read_timeout=request_timeout
        )
    else:
        sampler = OpenAISampler(
            ctx.region, route=ctx.mantle_route, backoff=backoff, timeout=request_timeout
        )
    grader = LambdaGrader(
        lambda_client(ctx.region, reward_timeout),
        ctx.reward_function_arn,
        backoff=Backoff(deadline=deadlines.grading, attempt_seconds=deadlines.grader_read_timeout),
    )
    s3 = boto3.client("s3", region_name=ctx.region)
    result = run_batch(
        ctx,
        items,
        s3=s3,
        sampler=sampler,
        grader=grader,
        deadline=deadlines.last_call_start,
        grading_concurrency=GRADING_CONCURRENCY,
    )
    logger.info("batch evaluated", extra=result)
    return result
