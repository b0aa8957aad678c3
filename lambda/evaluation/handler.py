"""The evaluation's Lambda entry points (one function each; the code lives in ``rft_eval``).

Each handler imports its module when called, so that a function loads only what it uses
(the serving and clean-up functions never import the evaluation's heavier libraries).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="evaluation")


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
