"""Safe arithmetic for ``multi``'s ``calculate_output`` (no ``eval``).

The formula is parsed with :mod:`ast` once, when the definition loads, and only these nodes are
accepted: numbers, the names of the sub-graders, ``+ - * /``, ``**`` and ``^`` (both mean power,
as in OpenAI's formulas), unary ``+``/``-``, parentheses, and calls of ``min max abs floor ceil
exp sqrt log``. Anything else (attributes, subscripts, strings, comparisons, other calls) is a
:class:`DefinitionError` naming the offending part.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Final, cast

from grading.errors import DefinitionError, SampleError

FUNCTIONS: Final[dict[str, Callable[..., float]]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "floor": math.floor,
    "ceil": math.ceil,
    "exp": math.exp,
    "sqrt": math.sqrt,
    "log": math.log,
}
_ARITY: Final = {
    "abs": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "exp": (1, 1),
    "sqrt": (1, 1),
    "log": (1, 2),
    "min": (1, 64),
    "max": (1, 64),
}
_BINARY: Final[dict[type[ast.operator], Callable[[float, float], float]]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
    ast.BitXor: lambda a, b: a**b,  # OpenAI's "^"
}
MAX_LENGTH: Final = 2000


class Formula:
    """A validated formula over named values."""

    def __init__(self, source: str, names: frozenset[str], path: str) -> None:
        if len(source) > MAX_LENGTH:
            raise DefinitionError(path, f"the formula is longer than {MAX_LENGTH} characters")
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as err:
            raise DefinitionError(path, f"formula syntax error: {err.msg}") from None
        self.source = source
        self.path = path
        self._names = names
        self._check(tree.body)
        self._tree = tree.body
        self.uses = frozenset(
            node.id for node in ast.walk(tree.body) if isinstance(node, ast.Name)
        ) - set(FUNCTIONS)

    def _check(self, node: ast.expr) -> None:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                self._reject(node, "only numbers are allowed as constants")
        elif isinstance(node, ast.Name):
            if node.id not in self._names:
                known = ", ".join(sorted(self._names))
                self._reject(node, f"'{node.id}' is not a grader of this multi; graders: {known}")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                self._reject(node, f"operator {type(node.op).__name__} is not allowed")
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.UAdd | ast.USub):
                self._reject(node, f"operator {type(node.op).__name__} is not allowed")
            self._check(node.operand)
        elif isinstance(node, ast.Call):
            self._check_call(node)
        else:
            self._reject(node, f"{type(node).__name__} is not allowed")

    def _check_call(self, node: ast.Call) -> None:
        function = node.func
        if not isinstance(function, ast.Name) or function.id not in FUNCTIONS:
            raise self._rejection(node, f"only these functions exist: {', '.join(FUNCTIONS)}")
        name = function.id
        low, high = _ARITY[name]
        if node.keywords or not low <= len(node.args) <= high:
            self._reject(node, f"{name}() takes {low} to {high} positional arguments")
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                self._reject(argument, "* arguments are not allowed")
            self._check(argument)

    def _reject(self, node: ast.AST, problem: str) -> None:
        raise self._rejection(node, problem)

    def _rejection(self, node: ast.AST, problem: str) -> DefinitionError:
        column = getattr(node, "col_offset", 0) + 1
        return DefinitionError(self.path, f"{problem} (at column {column})")

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The formula's value; arithmetic errors (division by zero, overflow) are
        :class:`SampleError`."""
        try:
            result = float(self._eval(self._tree, values))
        except (ArithmeticError, ValueError) as err:
            raise SampleError(f"calculate_output: {err}") from None
        if not math.isfinite(result):
            raise SampleError(f"calculate_output is {result}")
        return result

    def _eval(self, node: ast.expr, values: Mapping[str, float]) -> float:
        if isinstance(node, ast.Constant):
            return float(cast(float, node.value))  # only numbers pass _check
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, values), self._eval(node.right, values)
            result = _BINARY[type(node.op)](left, right)
            if isinstance(result, complex):  # a negative number to a fractional power
                raise ValueError("a negative number to a fractional power")
            return result
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, values)
            return -operand if isinstance(node.op, ast.USub) else operand
        call = node
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
        return float(FUNCTIONS[call.func.id](*(self._eval(arg, values) for arg in call.args)))
