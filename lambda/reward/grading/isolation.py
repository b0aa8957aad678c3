"""Budgets that hold on any thread: a forked child process with a deadline and resource limits.

A Python thread cannot be stopped, and ``SIGALRM`` only interrupts the main thread; a process
can be killed from any thread, and ``resource.setrlimit`` bounds what it may allocate
(``RLIMIT_AS``: an allocation past it raises ``MemoryError``) and the CPU time it may use
(``RLIMIT_CPU``: past it the kernel ends the process). :func:`run_isolated` runs one function
call in a child forked for it (the function and its arguments are inherited, only the result
is pickled) and kills the child at its deadline. The python grader's warm worker
(:mod:`grading.worker`) applies the same limits with :func:`limit_memory` and
:func:`limit_cpu`.

Lambda has no ``/dev/shm``; this uses only ``os.fork`` and ``os.pipe``, which work there.
Forking a process that has threads (abandoned judge calls) can leave a lock held in the child;
a child that blocks on one runs into its deadline and is killed, so the caller goes on.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import select
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any, Final, TypeVar

T = TypeVar("T")

_MB: Final = 1 << 20
# The function's memory when the Lambda runtime does not say (the stack's default).
_DEFAULT_FUNCTION_MB: Final = 512


class IsolatedTimeoutError(Exception):
    """The child gave no result before its deadline (it was killed)."""


class IsolatedDiedError(Exception):
    """The child ended without a result (out of memory, out of CPU time, a crash)."""


class IsolatedRaisedError(Exception):
    """The function raised in the child; the message names the exception's type."""

    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name


def function_memory_bytes() -> int:
    """The Lambda function's memory (``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``, in MB)."""
    try:
        megabytes = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", ""))
    except ValueError:
        megabytes = _DEFAULT_FUNCTION_MB
    return max(megabytes, 128) * _MB


def address_space_bytes() -> int:
    """This process's current virtual size (Linux ``/proc``; 0 where there is none)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def limit_memory(extra_bytes: int) -> None:
    """Let this process grow by at most ``extra_bytes`` of address space from now on
    (``RLIMIT_AS``: the inherited mappings of a forked child count, so the limit is its
    current size plus the budget). Never raises the hard limit."""
    size = address_space_bytes()
    if not size:
        return  # no /proc (not Linux): the current size is unknown, so no limit is safe
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or limit < soft:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def limit_cpu(seconds: float) -> None:
    """End this process (``SIGXCPU``) once it has used ``seconds`` more CPU time than so far
    (``RLIMIT_CPU`` counts the process's whole life; the soft limit moves, the hard one
    stays)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    limit = int(used + max(seconds, 0.0)) + 1  # whole seconds, rounded up
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))


def _child(write_fd: int, call: Callable[[], Any], memory: int, cpu: float) -> None:
    """The forked child: limits, the call, its pickled outcome on the pipe; never returns."""
    status = 0
    try:
        limit_memory(memory)
        limit_cpu(cpu)
        try:
            outcome: tuple[str, Any] = ("ok", call())
        except BaseException as err:  # SystemExit and MemoryError too: the parent must know
            outcome = ("raised", type(err).__name__)
        data = pickle.dumps(outcome)
        view = memoryview(data)
        while view:
            written = os.write(write_fd, view)
            view = view[written:]
    except BaseException:
        status = 1
    finally:
        os._exit(status)  # no atexit handlers, no flushing of the parent's buffers


def run_isolated(call: Callable[[], T], seconds: float, memory_bytes: int) -> T:
    """``call()`` in a forked child that may run ``seconds`` (wall clock and CPU) and grow by
    ``memory_bytes``; its result, returned here.

    Raise :class:`IsolatedTimeoutError` when the deadline passes (the child is killed),
    :class:`IsolatedDiedError` when the child ends without a result and
    :class:`IsolatedRaisedError` when ``call`` raised (the result must be picklable)."""
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads; see the module docstring.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover (the child; its outcome is what the parent sees)
        os.close(read_fd)
        _child(write_fd, call, memory_bytes, seconds)
    os.close(write_fd)
    try:
        data = _read_until(read_fd, time.monotonic() + seconds)
    finally:
        os.close(read_fd)
        _reap(pid)
    if data is None:
        raise IsolatedTimeoutError(f"no result within {seconds:g} s")
    try:
        # our own child's bytes, written by _child over a pipe only it and we hold
        status, value = pickle.loads(data)  # noqa: S301
    except Exception:
        raise IsolatedDiedError("the child ended without a result") from None
    if status == "raised":
        raise IsolatedRaisedError(str(value))
    result: T = value
    return result


def _read_until(fd: int, deadline: float) -> bytes | None:
    """Everything the child writes until it closes the pipe; ``None`` at the deadline."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(max(1, int(left * 1000))):
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int) -> None:
    """Kill the child if it still runs, and collect it (no zombie is left)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
