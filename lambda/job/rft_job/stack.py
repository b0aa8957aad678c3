"""What the stack is doing while it sends an event: deploying, rolling back or being deleted.

The event does not say whether a Delete belongs to a deletion the user asked for, to the
clean-up after a successful update, or to a rollback; nor whether an Update is a rollback.
The stack's own status does (``cloudformation:DescribeStacks`` on its own ARN, the only
CloudFormation permission the handler has).

When the status cannot be read (throttling past the retries, a missing permission, an
outage), the answer is ``UNKNOWN`` and each caller picks its safe side, documented where it
decides: a Delete treats it as a rollback (stop the job: a stopped job costs nothing more,
an unowned running one costs by the hour), an Update as a normal update (starting the
changed job, as before; the reconciler is the net for what that may leave running).
"""

from __future__ import annotations

import re
from enum import Enum

from aws_lambda_powertools import Logger

from rft_job import aws

logger = Logger(service="job", child=True)

STACK_ARN = re.compile(r"^arn:aws[a-z-]*:cloudformation:([a-z0-9-]+):\d{12}:stack/[^/]+/.+$")


class StackPhase(Enum):
    """The part of a stack operation an event belongs to."""

    DEPLOYING = "deploying"  # a create or update going forward
    CLEANUP = "cleanup"  # deleting replaced resources after a successful update
    ROLLBACK = "rollback"  # undoing a failed create or update (and its clean-up)
    DELETING = "deleting"  # the user deletes the stack
    UNKNOWN = "unknown"  # the status could not be read


def phase_of_status(status: str) -> StackPhase:
    """The phase a CloudFormation ``StackStatus`` value stands for."""
    if "ROLLBACK" in status:
        # ROLLBACK_IN_PROGRESS, UPDATE_ROLLBACK_IN_PROGRESS,
        # UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS, IMPORT_ROLLBACK_IN_PROGRESS and the
        # *_FAILED states a continue-update-rollback resumes from.
        return StackPhase.ROLLBACK
    if status.startswith("DELETE_"):
        return StackPhase.DELETING
    if status == "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS":
        return StackPhase.CLEANUP
    return StackPhase.DEPLOYING


def stack_phase(stack_id: object) -> StackPhase:
    """The phase of the stack ``stack_id`` (the event's ``StackId``), read from its status."""
    if not isinstance(stack_id, str) or not (match := STACK_ARN.match(stack_id)):
        logger.warning("event carries no stack ARN; stack phase unknown", stack_id=stack_id)
        return StackPhase.UNKNOWN
    try:
        stacks = aws.client("cloudformation", match.group(1)).describe_stacks(StackName=stack_id)[
            "Stacks"
        ]
        status = str(stacks[0]["StackStatus"])
    except Exception as err:
        logger.error("could not read the stack status", stack_id=stack_id, error=str(err))
        return StackPhase.UNKNOWN
    phase = phase_of_status(status)
    logger.info("stack status", status=status, phase=phase.value)
    return phase
