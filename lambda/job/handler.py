"""The fine-tuning job custom resource (CDK Provider framework): ``on_event`` + ``is_complete``.

``on_event`` starts, keeps or stops the environment's RFT job and returns its id as the
physical id; ``is_complete`` waits (within the framework's timeout) for the service's checks of
the job's data. Errors are raised, not posted: the framework reports the message (which names
the job and quotes the service) to CloudFormation. See ``rft_job.lifecycle``, also for what
"checked" means per backend.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from rft_job import lifecycle
from rft_job.deadline import Deadline

logger = Logger(service="job")


# The event carries a pre-signed response URL: log the request's identifying fields only.
@logger.inject_lambda_context(log_event=False)
def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Create, Update or Delete the job; return ``PhysicalResourceId`` and ``Data``."""
    return lifecycle.on_event(event, deadline=Deadline.of(context))


@logger.inject_lambda_context(log_event=False)
def is_complete(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Return ``{"IsComplete": bool}`` (with ``Data`` once complete)."""
    return lifecycle.is_complete(event, deadline=Deadline.of(context))
