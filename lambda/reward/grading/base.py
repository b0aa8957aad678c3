"""What every grader is: a named object that turns a batch of samples into grades."""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final

from grading.errors import SampleError
from grading.log import logger
from grading.samples import Sample

# Flags a grade can carry; each becomes a Metric entry with value 1 in the sample's output.
GRADER_ERROR = "grader_error"
JUDGE_ERROR = "judge_error"
JUDGE_TIMEOUT = "judge_timeout"
GRADER_TIMEOUT = "grader_timeout"


def clamp01(value: float) -> float:
    """``value`` limited to [0, 1]."""
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value


@dataclass(frozen=True, slots=True)
class Grade:
    """The outcome of one grader on one sample (immutable: the constants below are shared).

    ``raw`` is on the grader's own scale (a judge's 0-10, a Python grader's return value): it
    is what a ``multi`` formula sees. ``score`` is the reward in [0, 1].
    """

    raw: float
    score: float
    # Values of sub-graders, reported as Metric entries (name, value).
    details: tuple[tuple[str, float], ...] = ()
    flags: frozenset[str] = frozenset()
    # Why the sample could not be graded (it then scores 0); never quotes the response.
    error: str | None = None

    @classmethod
    def of(cls, value: float) -> Grade:
        """A grade whose raw value is already a reward (clamped to [0, 1])."""
        if not math.isfinite(value):
            return cls.failed(f"the grader produced a non-finite value ({value})")
        if value == 1.0:
            return PASS
        if value == 0.0:
            return FAIL
        return cls(raw=value, score=clamp01(value))

    @classmethod
    def failed(cls, reason: str) -> Grade:
        """A sample that could not be graded: 0, flagged ``grader_error``."""
        return cls(raw=0.0, score=0.0, flags=_ERROR_FLAGS, error=reason)


PASS: Final = Grade(raw=1.0, score=1.0)
FAIL: Final = Grade(raw=0.0, score=0.0)
_ERROR_FLAGS: Final = frozenset({GRADER_ERROR})


class Stats:
    """Counters of one batch that become EMF metrics (thread-safe: judges run in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.judge_calls = 0
        self.judge_errors = 0
        self.judge_timeouts = 0
        self.judge_latency_ms: list[float] = []
        self.judge_structured = 0
        self.judge_unstructured = 0

    def judge_call(self, latency_ms: float) -> None:
        """One HTTP request to a model endpoint finished (successfully or not)."""
        with self._lock:
            self.judge_calls += 1
            self.judge_latency_ms.append(latency_ms)

    def judge_error(self) -> None:
        """A sample's judgement failed for good (after retries, or an unparsable reply)."""
        with self._lock:
            self.judge_errors += 1

    def judge_reply(self, *, structured: bool) -> None:
        """A judge replied to a request made with (or without) a JSON-schema response_format."""
        with self._lock:
            if structured:
                self.judge_structured += 1
            else:
                self.judge_unstructured += 1

    def judge_timeout(self) -> None:
        """A sample was not judged before the invocation's deadline."""
        with self._lock:
            self.judge_timeouts += 1


@dataclass(slots=True)
class Batch:
    """What graders share while grading one invocation's batch."""

    # time.monotonic() by which every grader must have returned, or None for no limit.
    deadline: float | None = None
    stats: Stats = field(default_factory=Stats)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (may be negative), or ``None`` without a deadline."""
        return None if self.deadline is None else self.deadline - time.monotonic()


class Grader(ABC):
    """A configured grader. Subclasses implement :meth:`grade` (or :meth:`grade_batch`)."""

    type_name: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def remote(self) -> bool:
        """Whether grading calls a model endpoint (the openai package is imported only then)."""
        return False

    @abstractmethod
    def grade(self, sample: Sample) -> Grade:
        """Grade one sample; raise :class:`SampleError` if it cannot be graded."""

    def grade_batch(self, samples: Sequence[Sample], batch: Batch) -> list[Grade]:
        """Grade every sample; a sample that raises scores 0 and the others go on."""
        return [self.safe_grade(sample) for sample in samples]

    def safe_grade(self, sample: Sample) -> Grade:
        """:meth:`grade`, turning any exception into a failed grade."""
        try:
            return self.grade(sample)
        except SampleError as err:
            return Grade.failed(f"{self.name}: {err}")
        except Exception as err:
            # The exception text may quote the response: it goes to debug logs only.
            logger.debug("grader %s raised on sample %r: %r", self.name, sample.id, err)
            return Grade.failed(f"{self.name}: {type(err).__name__} while grading")

    def children(self) -> Sequence[Grader]:
        """Sub-graders (``multi``), for walking the definition."""
        return ()
