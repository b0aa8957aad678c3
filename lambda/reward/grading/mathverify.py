"""``math_answer``'s engine for references that are not plain numbers: Hugging Face's
Math-Verify (``math-verify``, Apache-2.0, the math reward of TRL and open-r1).

Math-Verify parses the reference (gold) and the response with its LaTeX and expression
extraction, and decides equivalence with sympy (:func:`verified`). It is imported on first use:
a definition whose references are plain numbers (GSM8K) never loads it or sympy.

Math-Verify bounds its own work with ``signal.alarm``, which works on the main thread only and
in whole seconds; its timeouts are turned off here and the sample's ``time_budget`` holds on
every thread instead:

* On the main thread (where the Lambda runtime calls the handler) a real-time timer
  (``SIGALRM``) raises :class:`_OutOfTime` inside Math-Verify's and sympy's Python code. It is a
  ``BaseException``: both libraries catch ``Exception`` broadly and would take a timeout for a
  failed parse and go on.
* A timer cannot stop one long C-level operation (Python computing ``10^{10^8}`` exactly, for
  minutes and gigabytes). A text with such a power (:func:`_risky`), and every comparison off
  the main thread, runs in a forked child (:mod:`grading.isolation`) with the deadline, an
  address-space limit and a CPU limit, and is killed when over them.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, lru_cache
from types import ModuleType
from typing import Any, Final, TypeVar

from grading.isolation import (
    IsolatedDiedError,
    IsolatedRaisedError,
    IsolatedTimeoutError,
    function_memory_bytes,
    run_isolated,
)

T = TypeVar("T")

# Digits Math-Verify rounds floats to before comparing (its default, and its published tests').
FLOAT_ROUNDING: Final = 6
# The share of the function's memory a comparison in a forked child may add.
MEMORY_SHARE: Final = 0.25
# A power whose exact value Python would compute in one C call that no timer interrupts, for
# minutes and gigabytes (10^{1000} takes microseconds, 10^{10^8} minutes): a tower (an exponent
# holding a power), an exponent of seven digits or more, or a large power raised again.
_RISKY: Final = re.compile(
    r"\^\s*\{[^{}]*\^"  # 10^{10^8}, 9^{9^{9}}
    r"|\^\s*\{?\s*[0-9]{7}"  # 10^{100000000}
    r"|\^\s*\{?\s*[0-9]{3,}\s*\}?\s*\)\s*\^"  # (10^{5000})^{5000}
    r"|\*\*\s*\(?\s*[0-9]+\s*\*\*"  # 2**(2**40)
)


class BudgetExceededError(Exception):
    """The sample's time budget (or its memory or CPU limit) ran out in the comparison."""


class _OutOfTime(BaseException):
    """Raised by the timer inside the libraries (a ``BaseException``: see the module)."""


@cache
def library() -> ModuleType:
    """Math-Verify, imported on first use. Its own warnings about timeouts being off are
    silenced: the budget here replaces them."""
    import math_verify

    for name in ("math_verify", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _widen_caches(math_verify.parser)
    module: ModuleType = math_verify
    return module


# Parsed answers kept per function instance. Math-Verify keeps 20: the rollouts of one prompt
# repeat a handful of answers (``\frac{10}{9}`` eight times in a group of sixteen), and its
# LaTeX parse (an ANTLR grammar) is nearly all of a comparison's cost.
PARSE_CACHE: Final = 4096


def stock_caches(parser: ModuleType, size: int = 20) -> None:
    """Math-Verify's parse caches as it ships them (``size`` entries, emptied): for a
    comparison with Math-Verify itself in one process (``make bench``)."""
    for name in ("parse_latex_cached", "parse_expr_cached"):
        inner = getattr(getattr(parser, name, None), "__wrapped__", None)
        if inner is not None:
            setattr(parser, name, lru_cache(maxsize=size)(inner))


def _widen_caches(parser: ModuleType) -> None:
    """Give Math-Verify's parse caches :data:`PARSE_CACHE` entries. Its functions look them
    up by module name at each call, so a wider cache around the same function takes their
    place; a version without them is left as it is. Parsed values are immutable sympy
    objects: sharing them is what Math-Verify's own cache does."""
    stock_caches(parser, PARSE_CACHE)


def _raise_timeout(signum: int, frame: Any) -> None:
    raise _OutOfTime


# After the deadline the timer fires again at this interval until the block ends: an
# exception raised where Python cannot propagate it (a garbage-collector callback, a
# ``__del__``) is printed and dropped, and the next one ends the block.
_REPEAT: Final = 0.01


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`_OutOfTime` in the block after ``seconds``, and again every
    :data:`_REPEAT` seconds until it ends (main thread only)."""
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3), _REPEAT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def risky(text: str) -> bool:
    """Whether ``text`` holds a power whose exact value no budget could bound (:data:`_RISKY`)."""
    return ("^" in text or "**" in text) and _RISKY.search(text) is not None


def bounded(call: Callable[[], T], budget: float, *texts: str) -> T:
    """``call()`` within ``budget`` seconds on any thread; :class:`BudgetExceededError` when it
    runs out (or past the memory or CPU limit of a forked child)."""
    if threading.current_thread() is threading.main_thread() and not any(map(risky, texts)):
        try:
            with _deadline(budget):
                return call()
        except _OutOfTime:
            raise BudgetExceededError("time budget") from None
        except RecursionError:
            raise BudgetExceededError("recursion limit") from None
    memory = int(function_memory_bytes() * MEMORY_SHARE)
    try:
        return run_isolated(call, budget, memory)
    except IsolatedTimeoutError:
        raise BudgetExceededError("time budget") from None
    except IsolatedDiedError:
        raise BudgetExceededError("memory or CPU budget") from None
    except IsolatedRaisedError as err:
        if err.type_name in ("_OutOfTime", "MemoryError", "RecursionError"):
            raise BudgetExceededError(err.type_name) from None
        raise RuntimeError(f"{err.type_name} in Math-Verify") from None


def parse(text: str) -> list[Any]:
    """Math-Verify's parse of ``text`` with its default extraction (LaTeX, then plain
    expressions; the last boxed answer first): ``[sympy value, its text]``, or ``[]`` when it
    finds no answer. Unbounded: call it through :func:`bounded`."""
    parsed: list[Any] = library().parse(text, parsing_timeout=None)
    return parsed


def verified(gold: list[Any], response: str) -> bool:
    """Whether the response's answer equals the parsed reference, by Math-Verify (its default
    comparison: floats rounded to :data:`FLOAT_ROUNDING` digits, strict variables, a set
    against a relation only with the relation in the reference). Unbounded: call it through
    :func:`bounded`."""
    answer = parse(response)
    if not answer:
        return False
    return bool(library().verify(gold, answer, float_rounding=FLOAT_ROUNDING, timeout_seconds=None))
