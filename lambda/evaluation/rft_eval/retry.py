"""Retries with backoff that honour the server's ``Retry-After``.

A throttled call (429, ``ThrottlingException``) is retried many more times than any other
transient failure: a rate-limited endpoint slows the evaluation down, it does not fail it.
Each backend classifies its own exceptions (:data:`Classify`); a failure classified as
permanent (a 400, an unknown model) is raised at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Transient:
    """A failure worth retrying: whether the server throttled, and how long it asked to wait."""

    throttled: bool = False
    retry_after: float | None = None


Classify = Callable[[Exception], Transient | None]


@dataclass(frozen=True)
class Backoff:
    """How often and how long to wait between attempts.

    The wait after attempt ``n`` (from 0) is the server's ``Retry-After`` when it sent one
    (at most ``cap``), else ``base * 2**n`` (at most ``cap``) with jitter, so that parallel
    workers throttled together do not retry together.
    """

    attempts: int = 5  # transient failures: 5xx, timeouts, connection errors
    throttled_attempts: int = 40  # 429s: many more, each waiting as asked
    base: float = 1.0
    cap: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False)
    # time.monotonic() by which every attempt must have ended (a Lambda worker's time, less
    # what it needs afterwards): no attempt starts, and no wait, that could end past it.
    deadline: float | None = None
    # The longest an attempt can take (the client's read timeout): an attempt starts only when
    # this much time is left before the deadline.
    attempt_seconds: float = 0.0
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def time_left(self) -> float | None:
        """Seconds before the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - self.clock()

    def wait(self, attempt: int, verdict: Transient) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0-based)."""
        if verdict.retry_after is not None:
            return min(self.cap, max(0.0, verdict.retry_after))
        ceiling = min(self.cap, self.base * 2.0**attempt)
        return ceiling * (0.5 + 0.5 * self.jitter())


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return float(lowered["retry-after-ms"]) / 1000.0
        if "retry-after" in lowered:
            value = lowered["retry-after"]
            try:
                return float(value)
            except ValueError:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
    return None


class OutOfTimeError(TimeoutError):
    """No (further) attempt can end before the deadline."""


def with_retries(call: Callable[[], T], classify: Classify, backoff: Backoff) -> T:
    """``call()``, retried while ``classify`` calls its failure transient and attempts remain;
    the last failure is raised. With a deadline, an attempt starts only when it can end before
    it (else :class:`OutOfTimeError`, or the last failure after a first attempt)."""
    transient = throttled = 0
    left = backoff.time_left()
    if left is not None and left < backoff.attempt_seconds:
        raise OutOfTimeError(
            f"not attempted: {max(0.0, left):.0f} s left, an attempt may take "
            f"{backoff.attempt_seconds:.0f} s"
        )
    while True:
        try:
            return call()
        except Exception as err:
            verdict = classify(err)
            if verdict is None:
                raise
            if verdict.throttled:
                throttled += 1
                if throttled >= backoff.throttled_attempts:
                    raise
                delay = backoff.wait(min(throttled - 1, 16), verdict)
            else:
                transient += 1
                if transient >= backoff.attempts:
                    raise
                delay = backoff.wait(transient - 1, verdict)
            left = backoff.time_left()
            if left is not None and delay + backoff.attempt_seconds > left:
                raise
            backoff.sleep(delay)
