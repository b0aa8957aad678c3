"""The custom resource that deletes the environment's deployments when its stack is deleted.

CloudFormation sends Create, Update and Delete (CDK Provider framework ``onEvent``). Create
and Update only keep one fixed physical id, so that no Update ever makes CloudFormation
delete an "old" resource. Delete removes every custom model deployment tagged
``bedrock-rft:environment = <Environment>`` (``serving.delete_environment_deployments``),
unless ``OnDelete`` is ``retain`` (``evaluation.deployment_on_delete``): the Delete event
carries the properties last deployed, so the switch in force is the one deployed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from rft_eval import serving

logger = Logger(service="evaluation", child=True)
# Seconds kept back from the invocation's remaining time to report a refusal in one piece.
MARGIN_SECONDS = 30.0


def physical_id(environment: str) -> str:
    """The resource's physical id: one per environment, the same on every Create/Update."""
    return f"bedrock-rft-{environment}-deployments"


def on_event(event: dict[str, Any], seconds_left: Callable[[], float]) -> dict[str, Any]:
    """Handle one Provider-framework event; returns ``PhysicalResourceId`` and ``Data``."""
    properties = event["ResourceProperties"]
    environment = properties["Environment"]
    request = event["RequestType"]
    if request != "Delete":
        return {"PhysicalResourceId": physical_id(environment), "Data": {"Deleted": "0"}}
    physical = event.get("PhysicalResourceId") or physical_id(environment)
    if properties.get("OnDelete") == "retain":
        logger.info("keeping the environment's deployments (retain)", environment=environment)
        return {"PhysicalResourceId": physical, "Data": {"Deleted": "0"}}
    region = properties.get("Region") or os.environ["AWS_REGION"]
    deleted = serving.delete_environment_deployments(
        serving.bedrock_client(region),
        environment,
        seconds_left=lambda: seconds_left() - MARGIN_SECONDS,
    )
    logger.info("deleted the environment's deployments", environment=environment, arns=deleted)
    return {"PhysicalResourceId": physical, "Data": {"Deleted": str(len(deleted))}}
