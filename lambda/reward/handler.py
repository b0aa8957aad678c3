"""The reward Lambda Bedrock invokes with batches of rollouts during reinforcement fine-tuning.

The grader definition (``GRADER_CONFIG``) is loaded and validated once per cold start: an
invalid one fails the import with the JSON path of the problem, never a batch. Each invocation
gets a JSON array of rollouts (or, as AWS's samples also accept, ``{"trajectories": [...]}``
or a single rollout object) and returns a list, in rollout order, of one
``{id, aggregate_reward_score, metrics_list}`` per rollout; a rollout that cannot be graded
scores 0 with a ``grader_error`` metric. Only an event that is neither an array nor an object
fails.

After grading, each batch publishes its training-signal health metrics and, when
``ROLLOUT_SAMPLES_URI`` and ``ROLLOUT_SAMPLE_RATE`` say so, keeps a sample of its rollouts
(:mod:`grading.observe`); neither can fail the batch or change its answer.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from grading import Batch, definition_from_env, grade_event
from grading.log import logger
from grading.metrics import publish
from grading.observe import Observer
from grading.samples import rollouts_of

ROOT = Path(__file__).resolve().parent
DEFINITION = definition_from_env(ROOT)
if DEFINITION.remote:
    from grading.remote import prepare

    prepare()
ENVIRONMENT = os.environ.get("RFT_ENVIRONMENT", "")
# Signal-health metrics and rollout samples (ROLLOUT_SAMPLES_URI, ROLLOUT_SAMPLE_RATE).
OBSERVER = Observer.from_env(os.environ, DEFINITION, ENVIRONMENT)
# Time kept back from the invocation's remaining time to return the response and flush
# metrics after the judges' deadline.
_MARGIN_SECONDS = 1.5


def deadline_from(context: Any) -> float | None:
    """The ``time.monotonic()`` by which grading must end, from the Lambda context."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    seconds = max(0.0, float(remaining()) / 1000.0)
    return time.monotonic() + seconds - min(_MARGIN_SECONDS, seconds * 0.2)


def handler(event: Any, context: Any) -> list[dict[str, Any]]:
    """Grade one batch of rollouts (see the module docstring for the contract)."""
    event = rollouts_of(event)
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.append_keys(request_id=request_id)
    deadline = deadline_from(context)
    result = grade_event(event, DEFINITION, batch=Batch(deadline=deadline))
    publish(result.summary, environment=ENVIRONMENT, grader=DEFINITION.name)
    OBSERVER.after(
        event,
        result,
        batch_id=request_id,
        deadline=deadline,
        function_arn=getattr(context, "invoked_function_arn", None),
    )
    return result.outputs
