"""Symbolic equivalence with sympy, imported on first use and bounded in time and memory.

Only pairs of expressions that floats cannot decide come here (variables that agree at every
test point, or values without a float). sympy is imported lazily: a definition whose
references are plain numbers never loads it.

Two bounds hold on every thread:

* Before sympy sees a pair, :func:`too_large` estimates the size of its exact values: a power,
  factorial or binomial whose exact value would have more than :data:`MAX_DIGITS` digits
  (``10^{10^8}``, ``(10^{5000})^{5000}``, ``100000!``), or a power of a polynomial above
  :data:`MAX_EXPANDED_POWER`, is refused (:class:`OverBudgetError`): sympy would compute it
  exactly, for minutes and gigabytes.
* sympy's ``simplify`` can still run for minutes on a small expression, and a Python thread
  cannot be stopped. On the main thread (where the Lambda runtime calls the handler) the
  comparison runs under a real-time interval timer (``SIGALRM``) whose handler raises
  :class:`BudgetExceededError` inside sympy's own Python code. Signals reach only the main
  thread, so on any other thread the comparison runs in a forked child
  (:mod:`grading.isolation`) with the same deadline, an address-space limit and a CPU limit,
  and is killed when over them.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from grading.isolation import (
    IsolatedDiedError,
    IsolatedRaisedError,
    IsolatedTimeoutError,
    function_memory_bytes,
    run_isolated,
)
from grading.mathexpr import Node, NoValueError, evaluate, variables

# Digits of the largest exact value sympy is given (a 100,000-digit integer takes it
# milliseconds; 10^(10^8) takes minutes and gigabytes).
MAX_DIGITS: Final = 100_000
# The largest power of an expression with variables (sympy may expand it term by term).
MAX_EXPANDED_POWER: Final = 1000
# The share of the function's memory a comparison off the main thread may add.
MEMORY_SHARE: Final = 0.25


class BudgetExceededError(Exception):
    """The sample's time budget ran out during the symbolic comparison."""


class OverBudgetError(BudgetExceededError):
    """The comparison was not attempted: an exact value too large for the sample's budget."""


def too_large(node: Node) -> str | None:
    """Why sympy must not be given ``node`` (an exact value or expansion over the limits),
    or ``None``; cheap (float arithmetic over the tree)."""
    try:
        digits = _digits(node)
    except _TooLargeError as err:
        return str(err)
    except RecursionError:
        return "an expression nested too deeply"
    if digits > MAX_DIGITS:
        return f"an exact value of more than {MAX_DIGITS:,} digits"
    return None


class _TooLargeError(Exception):
    pass


def _constant(node: Node, what: str) -> float | None:
    """The float value of a constant ``node`` (``None`` if it has variables). A constant
    without a finite float value (``10^{400}`` overflows, ``171!`` is out of range) cannot be
    sized, and is refused: sympy would compute it exactly."""
    if variables(node):
        return None
    try:
        value = evaluate(node)
    except NoValueError:
        raise _TooLargeError(f"{what} without a finite value") from None
    if not math.isfinite(value):
        raise _TooLargeError(f"{what} without a finite value")
    return value


def _function_digits(node: Node) -> float:
    """:func:`_digits` of a factorial, a binomial or a function."""
    if node[0] == "!":
        argument = _constant(node[1], "a factorial")
        if argument is not None and abs(argument) > 10:
            return abs(argument) * math.log10(abs(argument))
        return _digits(node[1])
    if node[1] == "binom":
        top = _constant(node[2][1], "a binomial")
        if top is not None and abs(top) > 10:
            return abs(top) * math.log10(2)  # C(n, k) < 2^n
        return _digits(node[2][1]) + _digits(node[2][2])
    return _digits(node[2])


def _digits(node: Node) -> float:
    """An upper estimate of the digits of ``node``'s exact value (or of its expansion)."""
    kind = node[0]
    if kind == "n":
        mantissa, _, power = node[1].lower().partition("e")  # "1e100000" is exact in sympy
        return float(len(mantissa) + (abs(int(power)) if power else 0))
    if kind in ("c", "v"):
        return 1.0
    if kind == "neg":
        return _digits(node[1])
    if kind in ("!", "f"):
        return _function_digits(node)
    left, right = _digits(node[1]), _digits(node[2])
    if kind == "^":
        exponent = _constant(node[2], "an exponent")
        if exponent is None:
            return left + right  # a symbolic exponent: sympy keeps the power as it is
        if variables(node[1]):
            if node[1][0] != "v" and abs(exponent) > MAX_EXPANDED_POWER:
                raise _TooLargeError(f"a power of a sum or product above {MAX_EXPANDED_POWER}")
            return left + right
        if _constant(node[1], "a base") in (0.0, 1.0, -1.0):
            return 1.0  # 1^{10^8}: exact and small
        return max(left, 1.0) * max(abs(exponent), 1.0)
    return left + right + 1.0


def to_sympy(node: Node) -> Any:
    """The sympy expression of a :mod:`grading.mathexpr` tree (exact: literals as
    rationals)."""
    import sympy

    kind = node[0]
    if kind == "n":
        return sympy.Rational(node[1])
    if kind == "c":
        return {"pi": sympy.pi, "e": sympy.E, "oo": sympy.oo}[node[1]]
    if kind == "v":
        return sympy.Symbol(node[1], real=True)
    if kind == "neg":
        return -to_sympy(node[1])
    if kind == "!":
        return sympy.factorial(to_sympy(node[1]))
    if kind == "f":
        if node[1] == "binom":
            return sympy.binomial(to_sympy(node[2][1]), to_sympy(node[2][2]))
        function = {"ln": sympy.log, "abs": sympy.Abs}.get(node[1]) or getattr(sympy, node[1])
        if node[1] == "log":
            return sympy.log(to_sympy(node[2]), 10)
        return function(to_sympy(node[2]))
    left, right = to_sympy(node[1]), to_sympy(node[2])
    if kind == "+":
        return left + right
    if kind == "*":
        return left * right
    if kind == "/":
        return left / right
    return left**right


# sympy's functions, cheapest first, applied to the difference of two expressions.
STEPS: tuple[str, ...] = ("expand", "simplify")


def _step(name: str) -> Callable[[Any], Any]:
    """The sympy function of a step (one place for tests to stand in a slow one)."""
    import sympy

    function: Callable[[Any], Any] = getattr(sympy, name)
    return function


def _raise_timeout(signum: int, frame: Any) -> None:
    raise BudgetExceededError("time budget")


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`BudgetExceededError` in the block after ``seconds``, by ``SIGALRM`` (on
    the main thread only; :func:`equal` isolates the comparison elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def equal(left: Node, right: Node, budget: float) -> bool:
    """Whether two expressions are identical for every value of their variables, decided by
    sympy within ``budget`` seconds; :class:`BudgetExceededError` when it cannot decide in time
    (or within its memory), :class:`OverBudgetError` when an exact value is too large to try.

    Cheapest first: the canonical forms sympy builds (``2*sqrt(3)`` for ``\\sqrt{12}``),
    then the expanded difference, then ``simplify`` of the difference."""
    reason = too_large(left) or too_large(right)
    if reason is not None:
        raise OverBudgetError(reason)
    import sympy  # noqa: F401  (before the clock starts: the first import is no sample's cost)

    ends = time.monotonic() + budget
    if threading.current_thread() is threading.main_thread():
        with deadline(budget):
            return _decide(left, right, ends)
    memory = int(function_memory_bytes() * MEMORY_SHARE)
    try:
        return run_isolated(lambda: _decide(left, right, ends), budget, memory)
    except IsolatedTimeoutError:
        raise BudgetExceededError("time budget") from None
    except IsolatedDiedError:
        raise BudgetExceededError("memory or CPU budget") from None
    except IsolatedRaisedError as err:
        if err.type_name in ("BudgetExceededError", "MemoryError"):
            raise BudgetExceededError(err.type_name) from None
        raise RuntimeError(f"{err.type_name} in the symbolic comparison") from None


def _decide(left: Node, right: Node, ends: float) -> bool:
    """:func:`equal`'s steps, checking the clock between them."""
    a, b = to_sympy(left), to_sympy(right)
    if a == b:
        return True
    difference = a - b
    for name in STEPS:
        if time.monotonic() > ends:
            raise BudgetExceededError("time budget")
        reduced = _step(name)(difference)
        if reduced == 0:
            return True
        if reduced.is_number and reduced.is_zero is False:
            return False
    return False
