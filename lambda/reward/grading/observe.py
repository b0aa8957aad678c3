"""What the handler does after grading a batch, besides answering: the training-signal
health metrics (:mod:`grading.signal_health`) and the rollout samples
(:mod:`grading.rollouts`). Neither can fail or change the batch's answer."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from grading.definition import Definition
from grading.log import logger
from grading.rollouts import Outcome, SettingError, Writer, destination_from, keep
from grading.runner import BatchResult
from grading.signal_health import Health, measure, publish_health, scores_of


class Observer:
    """Per-function settings (read once at cold start) applied to every batch."""

    def __init__(
        self, definition: Definition, environment: str, writer: Writer | None = None
    ) -> None:
        self.definition = definition
        self.environment = environment
        self.writer = writer

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], definition: Definition, environment: str
    ) -> Observer:
        """The observer the function's environment variables describe."""
        try:
            destination = destination_from(environ)
        except SettingError as err:  # the stack sets both: a hand-edited function's mistake
            logger.error(f"rollout samples off: {err}")
            destination = None
        return cls(definition, environment, Writer(destination) if destination else None)

    def after(
        self,
        event: Sequence[Any],
        result: BatchResult,
        *,
        batch_id: str | None,
        deadline: float | None,
        function_arn: str | None,
    ) -> Outcome | None:
        """Publish the batch's health and keep its samples; log, never raise, on failure."""
        grader = self.definition.name
        health = Health()
        try:
            health = measure(result.samples, scores_of(result.outputs), self.definition)
        except Exception as err:  # a bug here must not cost the batch its scores
            logger.warning(f"signal health not measured: {type(err).__name__}")
        outcome = None
        if self.writer is not None:
            signals = [
                {"unparsed": unparsed, "repetitive": repeated}
                for unparsed, repeated in zip(health.unparsed, health.repetitive, strict=True)
            ] or [{} for _ in result.outputs]
            outcome = keep(
                self.writer,
                event=event,
                samples=result.samples,
                grades=result.grades,
                outputs=result.outputs,
                signals=signals,
                context={
                    "environment": self.environment,
                    "grader": grader,
                    "function": function_arn,
                },
                batch_id=batch_id,
                remaining=None if deadline is None else deadline - time.monotonic(),
            )
        try:
            publish_health(
                health,
                environment=self.environment,
                grader=grader,
                samples_written=outcome.written if outcome else None,
                write_errors=outcome.errors if outcome else None,
            )
        except Exception as err:
            logger.warning(f"signal health not published: {type(err).__name__}")
        return outcome
