"""Serving the tuned model on the native backend: its on-demand custom model deployment.

A custom model made by a native (Nova) job cannot be invoked as it is: it needs a custom model
deployment (``CreateCustomModelDeployment``), whose ARN is then the ``modelId`` of
``Converse`` / ``InvokeModel``; its status is ``Creating``, ``Active`` or ``Failed`` (botocore's
``bedrock/2023-04-20`` service model). The OpenAI-compatible backend needs none: the job's
``fine_tuned_model`` is callable on demand as it is.

Find-or-create is safe to repeat: the deployment's name is derived from the environment and
the job (names are unique per account and region), an existing deployment of that name is
returned instead of creating another, and the create carries a ``clientRequestToken``
derived from the same inputs, so that a retried request is ignored by the service. Every
deployment is tagged with the environment and the job; the stack's clean-up deletes by that
tag (:func:`environment_deployments`), never by name.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from rft_eval.ids import safe_job_id

TAG_ENVIRONMENT = "bedrock-rft:environment"
TAG_JOB = "bedrock-rft:job"
# ModelDeploymentName: 1-63 characters, pattern ([0-9a-zA-Z][_-]?){1,63} (no leading, and no
# doubled, '-' or '_').
NAME_MAX = 63
_NOT_NAME = re.compile(r"[^0-9A-Za-z]+")
STATUSES = ("Creating", "Active", "Failed")
# An environment's own deployment listing and its clean-up are a handful of calls; standard
# retries cover throttling.
MAX_ATTEMPTS = 8


@cache
def bedrock_client(region: str) -> Any:
    """A boto3 ``bedrock`` client for ``region`` with standard retries (cached per container)."""
    config = Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra="bedrock-rft-evaluation",
    )
    return boto3.client("bedrock", region_name=region, config=config)


def error_code(err: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (empty for anything else)."""
    return err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else ""


def deployment_name(environment: str, job_id: str) -> str:
    """The deployment's name: ``rft-<environment>-<safe job id>`` within the service's pattern,
    shortened with a digest of the job id when longer than 63 characters."""
    name = _NOT_NAME.sub("-", f"rft-{environment}-{safe_job_id(job_id)}").strip("-")
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(job_id.encode("utf-8")).hexdigest()[:12]
    return f"{name[: NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"


def request_token(environment: str, job_id: str, model_arn: str) -> str:
    """The create's idempotency token: the same environment, job and model give the same
    token (64 hex digits, within the API's 256 characters of ``[a-zA-Z0-9-]``)."""
    text = "\n".join(("custom-model-deployment", environment, job_id, model_arn))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# The base model as on-demand inference takes it, where that differs from the id a native
# job is created with: Nova 2 Lite is customized as "amazon.nova-2-lite-v1:0:256k" (the
# context-window variant) and invoked only through inference profiles ("us." or "global."
# prefix; Amazon Nova 2 user guide, core inference). Models not listed are invoked as named.
BASE_INFERENCE_MODELS = {"amazon.nova-2-lite-v1:0:256k": "us.amazon.nova-2-lite-v1:0"}


def base_inference_model(base_model: str) -> str:
    """The ``modelId`` that ``Converse`` takes for the native backend's ``base_model``."""
    return BASE_INFERENCE_MODELS.get(base_model, base_model)


@dataclass(frozen=True)
class Deployment:
    """One custom model deployment as the API describes it."""

    arn: str
    name: str
    model_arn: str
    status: str
    failure: str | None = None
    created_at: datetime | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def tag(self, key: str) -> str | None:
        """The value of tag ``key`` (tags are filled by :func:`environment_deployments`)."""
        return dict(self.tags).get(key)


def _from_summary(summary: dict[str, Any]) -> Deployment:
    return Deployment(
        arn=summary["customModelDeploymentArn"],
        name=summary["customModelDeploymentName"],
        model_arn=summary["modelArn"],
        status=summary["status"],
        failure=summary.get("failureMessage"),
        created_at=summary.get("createdAt"),
    )


def describe(client: Any, identifier: str) -> Deployment:
    """``GetCustomModelDeployment`` of an ARN or name."""
    found = client.get_custom_model_deployment(customModelDeploymentIdentifier=identifier)
    # the same fields as a listing's summary, but for the name's key
    return _from_summary({**found, "customModelDeploymentName": found["modelDeploymentName"]})


def _summaries(client: Any, **filters: Any) -> list[dict[str, Any]]:
    summaries: list[dict[str, Any]] = []
    for page in client.get_paginator("list_custom_model_deployments").paginate(**filters):
        summaries.extend(page.get("modelDeploymentSummaries", []))
    return summaries


def find_by_name(client: Any, name: str) -> Deployment | None:
    """The deployment called exactly ``name`` (``nameContains`` also matches longer names)."""
    for summary in _summaries(client, nameContains=name):
        if summary["customModelDeploymentName"] == name:
            return _from_summary(summary)
    return None


class ModelNotActive(Exception):  # noqa: N818 (the state machine retries it by this name)
    """The custom model is not ``Active`` yet (or not yet visible to ``GetCustomModel``):
    the state machine retries the serve step on this error (``stacks/evaluation_flow.py``)."""


# GetCustomModel is polled this often while the invocation lasts; the last poll leaves this
# much time for the create.
MODEL_POLL_SECONDS = 5.0
MODEL_RESERVE_SECONDS = 15.0


def wait_until_active(
    client: Any,
    model_arn: str,
    *,
    seconds_left: Callable[[], float],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once the custom model is ``Active`` (CreateCustomModelDeployment takes only an
    Active model). A model Bedrock does not know yet is a read-after-write delay after the job
    completed, and retried like ``Creating``; ``Failed`` is an error naming the reason; a model
    still not Active when the invocation's time runs low raises :class:`ModelNotActive`."""
    while True:
        try:
            found = client.get_custom_model(modelIdentifier=model_arn)
            status = found.get("modelStatus", "Active")  # absent on models made before it
        except ClientError as err:
            if error_code(err) != "ResourceNotFoundException":
                raise
            status, found = "not found yet", {}
        if status == "Active":
            return
        if status == "Failed":
            raise RuntimeError(
                f"custom model {model_arn} is Failed"
                f"{': ' + found['failureMessage'] if found.get('failureMessage') else ''}; "
                "nothing to deploy"
            )
        if seconds_left() < MODEL_POLL_SECONDS + MODEL_RESERVE_SECONDS:
            raise ModelNotActive(f"custom model {model_arn} is {status}, not Active yet")
        sleep(MODEL_POLL_SECONDS)


def find_or_create(
    client: Any,
    *,
    environment: str,
    job_id: str,
    model_arn: str,
    seconds_left: Callable[[], float] = lambda: MODEL_RESERVE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> Deployment:
    """The on-demand deployment of ``model_arn`` for this environment's job ``job_id``: the
    existing one if an earlier attempt made it, else a new one (tagged, ``Creating``) once
    the model is Active (:func:`wait_until_active`)."""
    name = deployment_name(environment, job_id)
    found = find_by_name(client, name)
    if found is None:
        wait_until_active(client, model_arn, seconds_left=seconds_left, sleep=sleep)
        try:
            arn = client.create_custom_model_deployment(
                modelDeploymentName=name,
                modelArn=model_arn,
                description=f"bedrock-rft environment {environment}: tuned model of {job_id}"[
                    :2048
                ],
                tags=[
                    {"key": TAG_ENVIRONMENT, "value": environment},
                    {"key": TAG_JOB, "value": safe_job_id(job_id)},
                ],
                clientRequestToken=request_token(environment, job_id, model_arn),
            )["customModelDeploymentArn"]
        except ClientError as err:
            # A concurrent attempt may have taken the name between the lookup and the create;
            # the error code for a taken name is not documented (the API lists no
            # ConflictException for this call): look again, and raise if it is not that.
            if error_code(err) not in ("ValidationException", "ConflictException"):
                raise
            found = find_by_name(client, name)
            if found is None:
                raise
        else:
            return describe(client, arn)
    if found.model_arn != model_arn:
        raise RuntimeError(
            f"custom model deployment {name} ({found.arn}) serves {found.model_arn}, not "
            f"{model_arn}: delete it or rename the environment"
        )
    return found


def environment_deployments(client: Any, environment: str) -> list[Deployment]:
    """Every deployment of the account and region tagged ``bedrock-rft:environment =
    environment``, with its tags, newest first. The tag is what marks a deployment as this
    environment's: names are not checked (a deployment someone else named alike stays)."""
    mine: list[Deployment] = []
    for summary in _summaries(client):
        deployment = _from_summary(summary)
        try:
            tags = client.list_tags_for_resource(resourceARN=deployment.arn).get("tags", [])
        except ClientError as err:
            if error_code(err) == "ResourceNotFoundException":  # deleted since the listing
                continue
            raise
        pairs = tuple(sorted((tag["key"], tag["value"]) for tag in tags))
        if dict(pairs).get(TAG_ENVIRONMENT) == environment:
            mine.append(replace(deployment, tags=pairs))
    return sorted(mine, key=lambda d: (d.created_at is not None, d.created_at), reverse=True)


# Deleting a deployment that is still being created may be refused (ConflictException, the
# only conflict the API lists for DeleteCustomModelDeployment); it is retried until then.
CONFLICT_WAIT_SECONDS = 20.0


def delete_environment_deployments(
    client: Any,
    environment: str,
    *,
    seconds_left: Callable[[], float],
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Delete every deployment tagged with ``environment``; return their ARNs.

    A deployment whose deletion is refused as a conflict (still ``Creating``) is retried
    every :data:`CONFLICT_WAIT_SECONDS` while ``seconds_left()`` allows; one still refused
    then is an error naming it, so that nothing is left behind without a failed delete that
    says so. A deployment already gone counts as deleted.
    """
    pending = [deployment.arn for deployment in environment_deployments(client, environment)]
    deleted: list[str] = []
    while pending:
        refused: list[tuple[str, str]] = []
        for arn in pending:
            try:
                client.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
            except ClientError as err:
                code = error_code(err)
                if code == "ConflictException":
                    refused.append((arn, str(err)))
                    continue
                if code != "ResourceNotFoundException":
                    raise
            deleted.append(arn)
        if not refused:
            break
        if seconds_left() < CONFLICT_WAIT_SECONDS:
            names = "; ".join(f"{arn} ({why})" for arn, why in refused)
            raise RuntimeError(
                f"environment {environment}: custom model deployment(s) could not be deleted "
                f"yet: {names}; delete the stack again once they are Active or Failed"
            )
        sleep(CONFLICT_WAIT_SECONDS)
        pending = [arn for arn, _ in refused]
    return deleted


def region_of(arn: str) -> str:
    """The region field of an ARN."""
    parts = arn.split(":")
    if len(parts) < 6 or not parts[3]:
        raise ValueError(f"not a regional ARN: {arn!r}")
    return parts[3]


def serve(
    context: dict[str, Any],
    seconds_left: Callable[[], float] = lambda: MODEL_RESERVE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The state machine's serve step: ``{"deployment_arn", "status", "failure"}`` of the
    tuned model (the shape of :func:`serve_status`, so that a deployment found ``Failed``
    carries its reason).

    Native backend: find or create the deployment of ``custom_model_arn``. The OpenAI-
    compatible backend serves ``fine_tuned_model`` on demand without one: nothing to create
    (``deployment_arn`` is null, status ``Active``).
    """
    if context.get("backend") != "bedrock":
        return {"deployment_arn": None, "status": "Active", "failure": None}
    model_arn = context.get("custom_model_arn")
    if not model_arn:
        raise ValueError(
            f"job {context.get('job_id')}: no custom_model_arn in the evaluation context "
            "(the job's outputModelArn): nothing to deploy"
        )
    deployment = find_or_create(
        bedrock_client(context.get("region") or region_of(model_arn)),
        environment=context["environment"],
        job_id=context["job_id"],
        model_arn=model_arn,
        seconds_left=seconds_left,
        sleep=sleep,
    )
    return {
        "deployment_arn": deployment.arn,
        "status": deployment.status,
        "failure": deployment.failure,
    }


def serve_status(event: dict[str, Any]) -> dict[str, Any]:
    """``{"deployment_arn"}`` → ``{"deployment_arn", "status", "failure"}`` (the state
    machine waits while ``Creating``, goes on when ``Active``, fails with ``failure``)."""
    arn = event["deployment_arn"]
    deployment = describe(bedrock_client(region_of(arn)), arn)
    return {
        "deployment_arn": deployment.arn,
        "status": deployment.status,
        "failure": deployment.failure,
    }
