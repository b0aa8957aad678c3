"""A forked process that runs a ``python`` grader's ``grade`` function, one sample at a time, so
that a sample over its time limit can be stopped: a thread cannot be killed in Python, a
process can.

The worker is forked from the Lambda's own process on the first sample (the grade function,
compiled at cold start, is inherited as it is: nothing is pickled but the sample, the item and
the result) and kept warm across invocations. A sample that does not answer within its limit
gets its worker killed (SIGKILL) and a fresh one is forked for the next sample. The worker has
resource limits of its own (:mod:`grading.isolation`): an address-space limit (half of the
function's memory beyond its size at the fork) and a CPU-time limit per call. Only ``python``
definitions create a worker; every other grader runs in the Lambda's process as before.

Lambda has no ``/dev/shm``, so ``multiprocessing.Pool``, ``Queue`` and ``Lock`` (POSIX
semaphores) fail there; this uses only ``Process`` (fork) and ``Pipe`` (a socket pair), which
work. Forking a process that has threads (an abandoned judge call of a ``multi`` definition)
can leave a lock held in the child; a grade function that then blocks on it runs into its time
limit and its worker is replaced, so the batch still goes on.
"""

from __future__ import annotations

import multiprocessing
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Literal

from grading.isolation import function_memory_bytes, limit_cpu, limit_memory

GradeFunction = Callable[[dict[str, Any], dict[str, Any]], Any]
# The share of the function's memory the worker may add to its size at the fork.
MEMORY_SHARE = 0.5
# How long a killed worker is waited for (SIGKILL is immediate; this only reaps it).
_REAP_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Answer:
    """What one call gave: a number, something else (``returned``), an exception, no answer in
    time, or a worker that died (``os._exit``, a crash, out of memory)."""

    status: Literal["ok", "returned", "raised", "timeout", "died"]
    value: float = 0.0
    detail: str = ""  # the type returned or raised; the exception text goes to debug logs only
    message: str = ""


def _serve(function: GradeFunction, connection: Connection, other: Connection, memory: int) -> None:
    """The worker's loop: a ``(sample, item, seconds)`` in, an :class:`Answer` out, until EOF.

    The worker may grow by ``memory`` bytes over its size at the fork (an allocation past it
    raises ``MemoryError`` in the grade function: that sample fails, the worker goes on), and
    each call may use ``seconds`` of CPU time (past it the kernel ends the worker: that sample
    fails, and the next one gets a fresh worker)."""
    other.close()  # the Lambda's end: only then does a vanished parent read as EOF here
    limit_memory(memory)
    while True:
        try:
            sample, item, seconds = connection.recv()
        except (EOFError, OSError):
            return
        limit_cpu(seconds)
        try:
            answer = _answer(function(sample, item))
        except BaseException as err:  # SystemExit too: the worker must answer
            answer = Answer("raised", detail=type(err).__name__, message=repr(err)[:1000])
        connection.send(answer)


def _answer(value: Any) -> Answer:
    """A return value as an answer (a number that does not fit a float raises here)."""
    if isinstance(value, bool | int | float):
        return Answer("ok", value=float(value))
    return Answer("returned", detail=type(value).__name__)


class Worker:
    """One warm worker process for one grade function."""

    def __init__(self, function: GradeFunction, memory: int | None = None) -> None:
        self.function = function
        # What the worker may allocate beyond its size at the fork: by default half of the
        # function's memory, so that a grade function that allocates without end fails its
        # sample instead of ending the Lambda.
        self.memory = int(function_memory_bytes() * MEMORY_SHARE) if memory is None else memory
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    @property
    def pid(self) -> int | None:
        """The worker's process id (``None`` before the first call or after a kill)."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> Connection:
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(
            target=_serve,
            args=(self.function, theirs, ours, self.memory),
            daemon=True,
            name="python-grader",
        )
        # Output still buffered at the fork would be written again by the worker at its exit.
        sys.stdout.flush()
        sys.stderr.flush()
        with warnings.catch_warnings():
            # Python 3.12+ warns about forking a process with threads; see the module docstring.
            warnings.simplefilter("ignore", DeprecationWarning)
            process.start()
        theirs.close()
        self._process, self._connection = process, ours
        return ours

    def call(self, sample: dict[str, Any], item: dict[str, Any], timeout: float) -> Answer:
        """``grade(sample, item)`` in the worker, given at most ``timeout`` seconds."""
        connection = self._connection or self._start()
        try:
            connection.send((sample, item, timeout))
            if not connection.poll(max(0.0, timeout)):
                self.stop()
                return Answer("timeout")
            answer: Answer = connection.recv()
        except (EOFError, OSError):
            exitcode = self._process.exitcode if self._process is not None else None
            self.stop()
            return Answer("died", detail=f"exit code {exitcode}")
        return answer

    def stop(self) -> None:
        """Kill the worker (the next call forks a fresh one)."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(_REAP_SECONDS)
        if self._connection is not None:
            self._connection.close()
        self._process = self._connection = None
