"""The time an invocation has left, from the Lambda context.

The Provider framework does not retry ``on_event``, and a handler killed by its timeout
reports nothing the handler could act on: every step that can take long checks here first,
and hands what it cannot finish in time to ``is_complete`` (or fails cleanly) instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rft_job.model import JobError

# Kept free at the end of every invocation: enough to record a job, or to cancel one and
# delete its uploads, after the last long step.
RESERVE_SECONDS = 20.0
# Without a context (a direct call): as long as the longest handler may run.
DEFAULT_SECONDS = 600.0


@dataclass(frozen=True)
class Deadline:
    """A point in ``time.monotonic()`` after which the invocation must have returned."""

    end: float

    @classmethod
    def of(cls, context: Any) -> Deadline:
        """The deadline of the invocation ``context`` describes (the runtime's countdown)."""
        millis = getattr(context, "get_remaining_time_in_millis", None)
        seconds = millis() / 1000 if callable(millis) else DEFAULT_SECONDS
        return cls(time.monotonic() + float(seconds))

    @classmethod
    def unbounded(cls) -> Deadline:
        """A deadline ``DEFAULT_SECONDS`` from now."""
        return cls(time.monotonic() + DEFAULT_SECONDS)

    def left(self) -> float:
        """Seconds left before the reserve (never negative)."""
        return max(0.0, self.end - RESERVE_SECONDS - time.monotonic())

    def allows(self, seconds: float) -> bool:
        """Whether ``seconds`` more work fits before the reserve."""
        return self.left() >= seconds

    def require(self, seconds: float, step: str) -> None:
        """Raise :class:`JobError` unless ``seconds`` for ``step`` fit."""
        if not self.allows(seconds):
            raise JobError(
                f"{step} needs up to {int(seconds)} s and only {int(self.left())} s are left "
                "in this invocation; stopped before the function's timeout"
            )
