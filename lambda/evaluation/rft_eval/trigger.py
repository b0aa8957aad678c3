"""Start one evaluation per succeeded job (``handler.start``).

Two triggers reach the start function: the native backend's EventBridge event "Model
Customization Job State Change" (status ``Completed``; the rule matches only this
environment's jobs), and the metrics collector, which sees OpenAI-compatible jobs succeed
(no event is documented for them) and sends ``{"job_id", "backend", "fine_tuned_model"}``.

The execution is named after the job (:func:`rft_eval.ids.safe_job_id`), so a trigger that
arrives twice (EventBridge delivers at least once; the collector may repeat a run) cannot start
a second evaluation: Step Functions returns the running execution for the same name and input,
and answers ``ExecutionAlreadyExists`` for a closed one or another input, which here means
"this job is being, or has been, evaluated".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from rft_eval.ids import safe_job_id

JOB_STATE_DETAIL_TYPE = "Model Customization Job State Change"
BACKENDS = ("openai", "bedrock")


class TriggerError(ValueError):
    """The event is not a trigger the start function understands (one line, says why)."""


@dataclass(frozen=True)
class JobDone:
    """A job that succeeded: what the evaluation's first state needs to find it."""

    job_id: str
    backend: str
    fine_tuned_model: str | None = None  # openai: the model id; bedrock: the custom model ARN
    custom_model_arn: str | None = None

    def execution_input(self) -> str:
        """The execution's input: the same job always gives the same text (idempotent start)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_trigger(event: Any, default_backend: str) -> JobDone:
    """The succeeded job an EventBridge job-state event or a collector request names."""
    if not isinstance(event, dict):
        raise TriggerError(f"event: must be an object, got {type(event).__name__}")
    if event.get("detail-type") == JOB_STATE_DETAIL_TYPE:
        detail = event.get("detail")
        if not isinstance(detail, dict):
            raise TriggerError("event.detail: missing in a job state change event")
        status = detail.get("jobStatus")
        if status != "Completed":
            raise TriggerError(
                f"event.detail.jobStatus = {status!r}: only Completed jobs are evaluated"
            )
        job_arn = _text(detail.get("jobArn"))
        if job_arn is None:
            raise TriggerError("event.detail.jobArn: missing")
        model_arn = _text(detail.get("outputModelArn"))
        return JobDone(
            job_id=job_arn,
            backend="bedrock",
            fine_tuned_model=model_arn,
            custom_model_arn=model_arn,
        )
    job_id = _text(event.get("job_id"))
    if job_id is None:
        raise TriggerError(
            'event: neither a job state change event nor {"job_id": ...} from the collector'
        )
    backend = event.get("backend") or default_backend
    if backend not in BACKENDS:
        raise TriggerError(f"event.backend = {backend!r}; allowed: {', '.join(BACKENDS)}")
    model = _text(event.get("fine_tuned_model"))
    return JobDone(
        job_id=job_id,
        backend=backend,
        fine_tuned_model=model,
        custom_model_arn=model
        if backend == "bedrock" and model and model.startswith("arn:")
        else None,
    )


def start_evaluation(sfn: Any, state_machine_arn: str, job: JobDone) -> dict[str, Any]:
    """Start the job's evaluation unless it already has one; a summary of what happened."""
    name = safe_job_id(job.job_id)
    try:
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=job.execution_input()
        )
    except sfn.exceptions.ExecutionAlreadyExists:
        return {"started": False, "execution_name": name, "reason": "already evaluated"}
    return {"started": True, "execution_name": name, "execution_arn": response["executionArn"]}
