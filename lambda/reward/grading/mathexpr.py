"""Read LaTeX or plain-text math into a small expression tree, evaluated with floats.

The tree is built by a recursive-descent parser (never ``eval``: the text comes from the
model) and evaluated with Python floats, which is bounded by construction: the input length
is capped, every operation is one float operation, and an overflow or a domain error raises
:class:`NoValueError`. :mod:`grading.symbolic` turns the same tree into sympy objects when a
numeric comparison cannot decide.

Nodes are tuples: ``("n", "0.5")`` (a literal, kept as text so sympy reads it exactly),
``("v", "x")`` (a variable), ``("c", "pi")`` (a constant), ``("+", a, b)``, ``("*", a, b)``,
``("/", a, b)``, ``("^", a, b)``, ``("neg", a)``, ``("f", name, a)`` (a function),
``("!", a)`` (factorial).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Final

Node = tuple[Any, ...]
MAX_LENGTH: Final = 1000  # characters of one answer; longer is no answer
INFINITY: Final = ("c", "oo")

FUNCTIONS: Final = frozenset(
    (
        *("sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan"),
        *("sinh", "cosh", "tanh", "ln", "log", "exp", "sqrt", "abs"),
    )
)
CONSTANTS: Final = {"pi": math.pi, "e": math.e, "oo": math.inf}


class ParseError(ValueError):
    """The text is not an expression this module understands."""


class NoValueError(ValueError):
    """The expression has no finite float value (overflow, domain, free variable)."""


_REPLACEMENTS: Final = (
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\dbinom", "\\binom"),
    ("\\tbinom", "\\binom"),
    ("\\left", ""),
    ("\\right", ""),
    ("\\displaystyle", ""),
    ("\\cdot", "*"),
    ("\\times", "*"),
    ("\\div", "/"),
    ("\u00d7", "*"),
    ("\u00b7", "*"),
    ("\u2212", "-"),
    ("\u221a", "\\sqrt"),
    ("\u03c0", "\\pi"),
    ("\u221e", "\\infty"),
    ("**", "^"),
)
# Spacing goes, but a space between two letters stays (tokens skip it): "\\cot x" is no
# "\\cotx", "\\pi r" no "\\pir".
_SPACES: Final = re.compile(r"\\[,;:! ]|\\quad|\\qquad|~|(?<![A-Za-z])\s+|\s+(?![A-Za-z])")
_TOKEN: Final = re.compile(
    r"(?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+(?![A-Za-z]))?|\.[0-9]+)"
    r"|(?P<cmd>\\[A-Za-z]+)"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<op><=|>=|!=|[-+*/^(){}\[\],=<>|!_])"
)


def normalize(text: str) -> str:
    """The text with LaTeX spacing, sizing and synonyms removed (operators kept)."""
    for old, new in _REPLACEMENTS:
        if old in text:
            text = text.replace(old, new)
    return _SPACES.sub("", text)


def tokenize(text: str) -> list[str]:
    """The tokens of normalized ``text``; :class:`ParseError` on anything unknown."""
    tokens: list[str] = []
    at = 0
    while at < len(text):
        if text[at].isspace():  # between two letters (see normalize)
            at += 1
            continue
        match = _TOKEN.match(text, at)
        if match is None:
            raise ParseError(f"unexpected {text[at]!r}")
        word = match.group("word")
        if word is not None and word not in FUNCTIONS:
            tokens.extend(word)  # "xy": two variables
        else:
            tokens.append(match.group())
        at = match.end()
    return tokens


class _Parser:
    """Recursive descent over tokens (precedence: + -, * / and juxtaposition, unary -, ^)."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ParseError(f"expected {expected or 'more'}")
        self.at += 1
        return token

    def expression(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            operator = self.take()
            right = self.term()
            node = ("+", node, right if operator == "+" else ("neg", right))
        return node

    def term(self) -> Node:
        node = self.unary()
        while True:
            token = self.peek()
            if token in ("*", "/"):
                self.take()
                right = self.unary()
                node = ("*", node, right) if token == "*" else ("/", node, right)
            elif token is not None and _starts_atom(token):
                right = self.power()
                # 2\frac{1}{2}: two and a half
                node = ("+" if _mixed_number(node, right) else "*", node, right)
            else:
                return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return ("neg", self.unary())
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.peek() == "^":
            self.take()
            exponent = self.group() if self.peek() == "{" else self.unary_atom()
            return ("^", base, exponent)
        return base

    def unary_atom(self) -> Node:
        if self.peek() == "-":
            self.take()
            return ("neg", self.postfix())
        return self.postfix()

    def postfix(self) -> Node:
        node = self.atom()
        while self.peek() == "!":
            self.take()
            node = ("!", node)
        return node

    def group(self) -> Node:
        """A LaTeX argument: ``{...}`` or a single character (``\\frac12``)."""
        token = self.peek()
        if token == "{":
            self.take()
            node = self.expression()
            self.take("}")
            return node
        if token is not None and token[0].isdigit() and len(token) > 1:
            self.tokens[self.at] = token[1:]  # \frac12: the first digit only
            return ("n", token[0])
        return self.atom()

    def atom(self) -> Node:
        token = self.take()
        if token[0].isdigit() or token[0] == ".":
            return ("n", token)
        if token in ("(", "{", "["):
            node = self.expression()
            self.take({"(": ")", "{": "}", "[": "]"}[token])
            return node
        if token == "|":
            node = self.expression()
            self.take("|")
            return ("f", "abs", node)
        if token in ("\\pi", "\\infty"):
            return ("c", "pi") if token == "\\pi" else INFINITY
        if token == "\\frac":
            return ("/", self.group(), self.group())
        if token == "\\binom":
            return ("f", "binom", ("t", self.group(), self.group()))
        if token == "\\sqrt":
            if self.peek() == "[":
                self.take()
                index = self.expression()
                self.take("]")
                return ("^", self.group(), ("/", ("n", "1"), index))
            return ("f", "sqrt", self.group())
        name = token.lstrip("\\")
        if name in FUNCTIONS:
            return self.function(name)
        if len(token) == 1 and token.isalpha():
            if self.peek() == "_":  # x_1
                self.take()
                return ("v", token + "_" + _subscript(self.take()))
            return ("c", "e") if token == "e" else ("v", token)
        if token in ("\\alpha", "\\beta", "\\gamma", "\\theta", "\\lambda", "\\phi"):
            return ("v", name)
        raise ParseError(f"unexpected {token!r}")

    def function(self, name: str) -> Node:
        base: Node | None = None
        if name == "log" and self.peek() == "_":
            self.take()
            base = self.group()
        exponent: Node | None = None
        if self.peek() == "^":  # \sin^2 x
            self.take()
            exponent = self.group()
        if name == "sqrt" and self.peek() == "{":
            argument = self.group()
        elif self.peek() in ("(", "{"):
            argument = self.atom()
        else:
            argument = self.power()
        node: Node = ("f", name, argument)
        if base is not None:
            node = ("/", ("f", "ln", argument), ("f", "ln", base))
        return node if exponent is None else ("^", node, exponent)


def _subscript(token: str) -> str:
    if not token.isalnum():
        raise ParseError("unsupported subscript")
    return token


def _starts_atom(token: str) -> bool:
    """Whether ``token`` starts a factor multiplied by juxtaposition (``2x``, ``3\\sqrt2``)."""
    return (
        token[0].isalnum()
        or token[0] == "."
        or token in ("(", "\\")
        or (token.startswith("\\") and token not in ("\\cup", "\\cap"))
    )


def _mixed_number(left: Node, right: Node) -> bool:
    return bool(
        left[0] == "n"
        and left[1].isdigit()
        and right[0] == "/"
        and right[1][0] == "n"
        and right[2][0] == "n"
        and right[1][1].isdigit()
        and right[2][1].isdigit()
    )


def parse(text: str) -> Node:
    """The expression tree of one (normalized) expression; :class:`ParseError` if it is not
    one."""
    if len(text) > MAX_LENGTH:
        raise ParseError("too long")
    tokens = tokenize(text)
    if not tokens:
        raise ParseError("empty")
    parser = _Parser(tokens)
    node = parser.expression()
    if parser.peek() is not None:
        raise ParseError(f"unexpected {parser.peek()!r}")
    return node


def variables(node: Node) -> frozenset[str]:
    """The free variables of ``node``."""
    if node[0] == "v":
        return frozenset((node[1],))
    found: frozenset[str] = frozenset()
    for child in node[1:]:
        if isinstance(child, tuple):
            found |= variables(child)
    return found


_FLOAT_FUNCTIONS: Final[dict[str, Callable[[float], float]]] = {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "sec": lambda x: 1 / math.cos(x),
    "csc": lambda x: 1 / math.sin(x),
    "cot": lambda x: 1 / math.tan(x),
    "arcsin": math.asin,
    "arccos": math.acos,
    "arctan": math.atan,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "ln": math.log,
    "log": math.log10,
    "exp": math.exp,
    "sqrt": math.sqrt,
    "abs": math.fabs,
}


def evaluate(node: Node, point: dict[str, float] | None = None) -> float:
    """The float value of ``node`` with variables from ``point``; :class:`NoValueError` when
    there is none (a free variable, overflow, a domain error, division by zero)."""
    try:
        value = _evaluate(node, point or {})
    except (OverflowError, ValueError, ZeroDivisionError, TypeError, RecursionError) as err:
        raise NoValueError(str(err)) from None
    if not isinstance(value, float) or math.isnan(value):
        raise NoValueError("no real value")
    return value


def _evaluate(node: Node, point: dict[str, float]) -> float:
    kind = node[0]
    if kind == "n":
        return float(node[1])
    if kind == "c":
        return CONSTANTS[node[1]]
    if kind == "v":
        if node[1] not in point:
            raise NoValueError(f"free variable {node[1]}")
        return point[node[1]]
    if kind == "neg":
        return -_evaluate(node[1], point)
    if kind == "f":
        if node[1] == "binom":
            n, k = _evaluate(node[2][1], point), _evaluate(node[2][2], point)
            if not (n.is_integer() and k.is_integer() and 0 <= k <= n <= 10_000):
                raise NoValueError("binomial out of range")
            return float(math.comb(int(n), int(k)))
        return _FLOAT_FUNCTIONS[node[1]](_evaluate(node[2], point))
    if kind == "!":
        argument = _evaluate(node[1], point)
        if not (argument.is_integer() and 0 <= argument <= 170):
            raise NoValueError("factorial out of range")
        return float(math.factorial(int(argument)))
    left, right = _evaluate(node[1], point), _evaluate(node[2], point)
    if kind == "+":
        return left + right
    if kind == "*":
        return left * right
    if kind == "/":
        return left / right
    if kind == "^":
        result = left**right
        if isinstance(result, complex):
            raise NoValueError("complex power")
        return float(result)
    raise NoValueError(f"unknown node {kind}")
