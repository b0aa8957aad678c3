"""The evaluation's first state (``handler.prepare``): the job record and the stack's settings
become the **context** every later state takes (its keys: :data:`CONTEXT_KEYS`).

The stack passes its settings as environment variables (:meth:`Settings.from_env`). The job
record ``/bedrock-rft/<environment>/job`` says which reward Lambda version the job trained
with (``reward_function_arn``, written by the job custom resource): evaluation grades with the
same version. Only the environment's current job is evaluated: for an older one the record no
longer says which grader it used, so the execution ends early with ``{"skip": <why>}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rft_common.mantle import route_for

from rft_eval.ids import safe_job_id

# The context's keys, in the contract's order (every later state relies on all of them).
CONTEXT_KEYS = (
    "environment",
    "region",
    "backend",
    "job_id",
    "base_model",
    "tuned_model",
    "custom_model_arn",
    "reward_function_arn",
    "validation",
    "artifacts",
    "settings",
    "model_parameter",
    "topic_arn",
    "metrics_namespace",
    "mantle_route",
)
SETTING_KEYS = (
    "samples_per_prompt",
    "temperature",
    "max_tokens",
    "pass_threshold",
    "limit",
    "bootstrap_resamples",
    "seed",
    "promote_when",
)


class PrepareError(ValueError):
    """The job or the function's settings cannot be evaluated (one line, says why)."""


@dataclass(frozen=True)
class Settings:
    """The stack's settings, from the function's environment variables."""

    environment: str
    backend: str
    region: str
    base_model: str
    job_parameter: str
    reward_function_arn: str
    validation_bucket: str
    validation_key: str
    artifacts_bucket: str
    evaluations_prefix: str
    evaluation: dict[str, Any]
    model_parameter: str
    metrics_namespace: str
    topic_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the variables the evaluation construct sets (``stacks/evaluation.py``)."""
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name, "")
            if not value:
                raise PrepareError(f"environment variable {name} is not set")
            return value

        try:
            evaluation = json.loads(required("EVALUATION_SETTINGS"))
        except json.JSONDecodeError as err:
            raise PrepareError(
                f"environment variable EVALUATION_SETTINGS: not JSON ({err.msg})"
            ) from None
        if not isinstance(evaluation, dict):
            raise PrepareError("environment variable EVALUATION_SETTINGS: must be a JSON object")
        missing = [key for key in SETTING_KEYS if key not in evaluation]
        if missing:
            raise PrepareError(
                f"environment variable EVALUATION_SETTINGS: lacks {', '.join(missing)}"
            )
        name = required("RFT_ENVIRONMENT")
        return cls(
            environment=name,
            backend=required("RFT_BACKEND"),
            region=required("AWS_REGION"),
            base_model=required("BASE_MODEL"),
            job_parameter=env.get("JOB_PARAMETER") or f"/bedrock-rft/{name}/job",
            reward_function_arn=required("REWARD_FUNCTION_ARN"),
            validation_bucket=required("VALIDATION_BUCKET"),
            validation_key=required("VALIDATION_KEY"),
            artifacts_bucket=required("ARTIFACTS_BUCKET"),
            evaluations_prefix=env.get("EVALUATIONS_PREFIX") or "evaluations/",
            evaluation={key: evaluation[key] for key in SETTING_KEYS},
            model_parameter=env.get("MODEL_PARAMETER") or f"/bedrock-rft/{name}/model",
            metrics_namespace=env.get("METRICS_NAMESPACE") or "BedrockRft/Evaluation",
            topic_arn=env.get("TOPIC_ARN") or None,
        )


def read_record(ssm: Any, name: str) -> dict[str, Any] | None:
    """The job record (a JSON object), or ``None`` when there is none."""
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    try:
        record = json.loads(value)
    except json.JSONDecodeError:
        raise PrepareError(f"SSM parameter {name}: not valid JSON") from None
    if not isinstance(record, dict):
        raise PrepareError(f"SSM parameter {name}: must be a JSON object")
    return record


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def prepare(event: Any, settings: Settings, ssm: Any) -> dict[str, Any]:
    """The context for the job the execution input names, or ``{"skip": <why>}``."""
    if not isinstance(event, dict) or not _text(event.get("job_id")):
        raise PrepareError('execution input: must be {"job_id": ...} (the start function sends it)')
    job_id = str(event["job_id"])
    backend = _text(event.get("backend")) or settings.backend
    if backend != settings.backend:
        raise PrepareError(
            f"execution input backend = {backend!r}: environment {settings.environment} runs "
            f"backend {settings.backend}"
        )
    record = read_record(ssm, settings.job_parameter)
    if record is None or record.get("job_id") != job_id:
        current = record.get("job_id") if record else None
        return {
            "skip": f"job {job_id} is not the current job of environment {settings.environment} "
            f"(the record {settings.job_parameter} names {current or 'no job'}): the reward "
            "version it trained with is unknown, so it is not evaluated"
        }
    # Records written before the job custom resource recorded the reward version lack it: the
    # version this stack deployed is the job's own unless the grader changed since (a changed
    # grader starts a new job, whose record carries the field).
    reward_arn = _text(record.get("reward_function_arn")) or settings.reward_function_arn
    model = _text(event.get("fine_tuned_model")) or _text(record.get("fine_tuned_model"))
    custom_model_arn: str | None = None
    if backend == "openai":
        if model is None:
            raise PrepareError(f"job {job_id}: no fine_tuned_model in the trigger or the record")
        tuned: str | None = model
    else:
        custom_model_arn = _text(event.get("custom_model_arn")) or model
        if custom_model_arn is None or not custom_model_arn.startswith("arn:"):
            raise PrepareError(f"job {job_id}: no custom model ARN in the trigger or the record")
        tuned = None  # the deployment ARN, filled in after the Serve states
    safe = safe_job_id(job_id)
    context = {
        "environment": settings.environment,
        "region": settings.region,
        "backend": backend,
        "job_id": job_id,
        "base_model": settings.base_model,
        "tuned_model": tuned,
        "custom_model_arn": custom_model_arn,
        "reward_function_arn": reward_arn,
        "validation": {"bucket": settings.validation_bucket, "key": settings.validation_key},
        "artifacts": {
            "bucket": settings.artifacts_bucket,
            "prefix": f"{settings.evaluations_prefix}{safe}/",
        },
        "settings": settings.evaluation,
        "model_parameter": settings.model_parameter,
        "topic_arn": settings.topic_arn,
        "metrics_namespace": settings.metrics_namespace,
        "mantle_route": route_for(settings.base_model),
    }
    assert tuple(context) == CONTEXT_KEYS
    return context
