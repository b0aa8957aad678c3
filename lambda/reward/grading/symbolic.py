"""Symbolic equivalence with sympy, imported on first use and bounded in time.

Only pairs of expressions that floats cannot decide come here (variables that agree at every
test point, or values without a float). sympy is imported lazily: a definition whose
references are plain numbers never loads it.

sympy's ``simplify`` can run for minutes on a pathological expression, and a Python thread
cannot be stopped. The comparison therefore runs under a real-time interval timer
(``SIGALRM``) whose handler raises :class:`BudgetExceededError` inside sympy's own Python
code; the Lambda runtime calls the handler on the main thread, where signals are delivered.
Off the main thread (a caller's own thread pool) the steps run without the timer and the
deadline is checked between them.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from grading.mathexpr import Node


class BudgetExceededError(Exception):
    """The sample's time budget ran out during the symbolic comparison."""


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
    """Raise :class:`BudgetExceededError` in the block after ``seconds`` (on the main thread,
    by ``SIGALRM``; elsewhere the caller checks the clock between steps)."""
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
    sympy within ``budget`` seconds; :class:`BudgetExceededError` when it cannot decide in time.

    Cheapest first: the canonical forms sympy builds (``2*sqrt(3)`` for ``\\sqrt{12}``),
    then the expanded difference, then ``simplify`` of the difference."""
    import sympy  # noqa: F401  (before the clock starts: the first import is no sample's cost)

    ends = time.monotonic() + budget
    with deadline(budget):
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
