"""Typed math answers: what a reference is, read once, and how an answer compares to it.

A reference is read into one kind: a number (any constant expression: ``\\frac{10}{9}``,
``2\\sqrt{3}``, ``\\pi/4``, ``50\\%``, ``3\\times10^5``), an expression with variables, an
interval (or a union of them) with open and closed ends, a set, a tuple, an equation whose
right side is the answer (``x=2``), a multiple-choice letter, or text (``\\text{Tuesday}``).
The answer is read in the reference's terms (``(1,2)`` is a tuple when the reference is one,
an interval when the reference is one) and compared by kind: never as a float by accident.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from grading.mathexpr import (
    INFINITY,
    Node,
    NoValueError,
    ParseError,
    evaluate,
    normalize,
    parse,
    variables,
)

# Characters of one answer's text (decoration and units included); a longer text is no answer
# (an expression itself is at most mathexpr.MAX_LENGTH characters).
MAX_ANSWER_LENGTH: Final = 2000

Kind = Literal[
    "number", "expression", "interval", "union", "set", "tuple", "equation", "choice", "text"
]
KINDS: Final = ("number", "expression", "interval", "set", "tuple", "equation", "choice", "text")


@dataclass(frozen=True, slots=True)
class Typed:
    """One answer of one kind. ``parts`` are the elements (interval ends, set or tuple
    members, an equation's two sides); ``node`` the expression of a number or expression;
    ``closed`` the interval's ends; ``label`` a choice letter or normalized text; ``unit``
    what followed the value (``cm``, ``degrees``)."""

    kind: Kind
    node: Node | None = None
    parts: tuple[Typed, ...] = ()
    closed: tuple[bool, bool] = (False, False)
    label: str = ""
    unit: str = ""


# Decides two expressions that floats cannot (variables that agree at every test point, or
# values without a float): :func:`grading.symbolic.equal` under the sample's time budget.
Symbolic = Callable[[Node, Node], bool]


_TEXT_COMMAND: Final = re.compile(
    r"\\(?:text|textbf|textit|mathrm|mbox|mathbf|operatorname)\s*\{([^{}]*)\}"
)
_CHOICE: Final = re.compile(r"\(?([A-Ja-j])\)?[.:]?")
_CHOICE_LEAD: Final = re.compile(r"\(([A-Ja-j])\)|([A-J])(?=[.:,)]?\s)")
# "30^\\circ", "30°", "\\frac{270}{7}\\text{ degrees}" (the text already stripped)
_DEGREES: Final = re.compile(
    r"\^\s*\{?\s*\\circ\s*\}?|\u00b0|\\degree|(?<=[0-9}])\s*\bdegrees?\s*$"
)
_PERCENT: Final = re.compile(r"\\?%$")
_UNIT_TAIL: Final = re.compile(
    # "3\text{ cm}" after any value; a bare word ("3 cm") only after a plain number
    r"^(.*?[0-9}).])\s*\\text\{\s*([A-Za-z][A-Za-z .]*?)\s*\}$"
    r"|^(-?[0-9][0-9.,]*)\s+([A-Za-z]{1,12}\.?)$"
)
_THOUSANDS: Final = re.compile(
    r"(?<![0-9.])([0-9]{1,3})((?:(?:,|\{,\}|\\,|,\\!\s?)[0-9]{3})+)(?![0-9])"  # 10,\!080 too
)
_RELATION: Final = re.compile(r"(<=|>=|!=|=|<|>)")
_RELATIONS: Final = {
    "leqslant": "<=",
    "geqslant": ">=",
    "leq": "<=",
    "geq": ">=",
    "le": "<=",
    "ge": ">=",
    "neq": "!=",
    "ne": "!=",
    "lt": "<",
    "gt": ">",
    "in": "=",  # "x \\in [-2, 7]": the right side is the answer, as in "x = 2"
}
# A relation command as a whole word: "\\le" is no prefix of "\\left", "\\in" none of
# "\\infty".
_RELATION_COMMAND: Final = re.compile(rf"\\({'|'.join(_RELATIONS)})(?![A-Za-z])")
_RELATION_SIGNS: Final = (("\u2264", "<="), ("\u2265", ">="))
_HEDGE: Final = re.compile(r"\bor\b|\beither\b|\\text\{\s*or\s*\}", re.IGNORECASE)
# Words that are units, not text answers, when they follow a number.
_WORDS: Final = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")  # not a LaTeX command


# A list of plain numbers in prose: "19, 46, and 82", "3 and 5", "1; 2; 3" that ends a text
# ("The numbers are 19, 46, and 82."). Matched on the reversed text from its end, so that
# finding it is linear in the length of the text: number, join, number, ... read backwards.
_REVERSED_NUMBER: Final = r"(?:[0-9]+\.)?[0-9]+-?"
_REVERSED_JOIN: Final = r"(?:(?:\s+dna)?\s*[,;]\s*|\s+dna\s+)"
_REVERSED_LIST: Final = re.compile(
    rf"{_REVERSED_NUMBER}(?:{_REVERSED_JOIN}{_REVERSED_NUMBER})+(?![0-9A-Za-z.,\\])"
)
_LIST_ITEM: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_GROUPED: Final = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")


def number_list(text: str, *, whole: bool = False) -> str | None:
    """The list of two or more plain numbers that ends ``text`` (all of it when ``whole``),
    written ``a, b, c``; None if there is none. Numbers with thousands separators are no list:
    ``1,234`` is one number."""
    if len(text) > MAX_ANSWER_LENGTH or ("," not in text and "and" not in text and ";" not in text):
        return None
    body = text.rstrip(" \t\n.$")
    match = _REVERSED_LIST.match(body[::-1])
    if match is None:
        return None
    start = len(body) - match.end()
    if whole and body[:start].strip(" $"):
        return None
    listed = body[start:]
    if _GROUPED.fullmatch(listed):
        return None  # "1,234,567": thousands separators
    return ", ".join(_LIST_ITEM.findall(listed))


def _strip_text(text: str) -> str:
    """``\\text{...}`` and its kin replaced by their contents."""
    while "\\" in text and _TEXT_COMMAND.search(text):
        text = _TEXT_COMMAND.sub(r" \1 ", text)
    return text


def _clean(text: str) -> str:
    """Outer decoration: ``$``, ``\\(...\\)``, emphasis, a full stop at the end."""
    text = text.strip()
    for left, right in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"), ("**", "**")):
        if text.startswith(left) and text.endswith(right) and len(text) > len(left) + len(right):
            text = text[len(left) : len(text) - len(right)].strip()
    text = text.replace("\\$", "").replace("$", "").strip()  # "\\$36": a currency sign
    while text.endswith((".", "\\.")) and not text[-2:-1].isdigit():
        text = text[:-2] if text.endswith("\\.") else text[:-1]
        text = text.rstrip()
    return text


def hedged(text: str) -> bool:
    """Whether an answer's text offers alternatives ("2 or 3", "either ...")."""
    return bool(_HEDGE.search(text))


def read(raw: str, like: Typed | None = None, *, choice_ok: bool = True) -> Typed:
    """``raw`` as a typed answer; ``like`` (a reference) says how an ambiguous answer reads.
    :class:`ParseError` if it is none."""
    if len(raw) > MAX_ANSWER_LENGTH:
        # every step below is then bounded (sets and tuples of many items included)
        raise ParseError("too long")
    text = _clean(raw)
    if not text:
        raise ParseError("empty")
    if like is not None and like.kind == "text":
        return Typed("text", label=_text_label(text))
    if like is not None and like.kind == "choice":
        letter = _choice(text) or _leading_choice(text)
        if letter is None:
            raise ParseError("no choice letter")
        return Typed("choice", label=letter)
    if choice_ok and like is None:
        letter = _choice(text, upper_only=True)
        if letter is not None:
            return Typed("choice", label=letter)
    bare = _strip_text(text).strip()
    if _is_text(bare):
        if like is None and "\\text" in text:
            return Typed("text", label=_text_label(text))
        raise ParseError("words, not math")  # "the cat": not the product t*h*e*c*a*t
    # "\\frac{1}{3}\\text{ meters}": the unit is read before the \\text around it goes
    return _structure(text if "\\text" in text and _UNIT_TAIL.match(text) else bare, like)


def _choice(text: str, upper_only: bool = False) -> str | None:
    """The letter of ``(B)``, ``B``, ``\\text{(B)}``, ``B)``; None if ``text`` is not one."""
    bare = _strip_text(text).replace("\\textbf", "").strip(" {}*")
    match = _CHOICE.fullmatch(bare)
    if match is None or (upper_only and not match.group(1).isupper()):
        return None
    if upper_only and match.group(1) in "E" and "(" not in bare:
        return None  # a bare "E" is more likely Euler's number than choice E
    return match.group(1).upper()


def _leading_choice(text: str) -> str | None:
    """The letter that opens an answer explained after it: "(B) because ...", "B. 12"."""
    match = _CHOICE_LEAD.match(_strip_text(text).strip(" {}*"))
    return None if match is None else (match.group(1) or match.group(2)).upper()


def _is_text(text: str) -> bool:
    """Words that are not math: ``Tuesday``, ``no solution`` (units after a number are not)."""
    words = _WORDS.findall(text)
    if not words:
        return False
    head = text.lstrip("-+ ")
    if head[:1].isdigit() or head.startswith("\\"):
        return False
    from grading.mathexpr import FUNCTIONS

    return any(word.lower() not in FUNCTIONS for word in words)


def _text_label(text: str) -> str:
    bare = _strip_text(text)
    return " ".join(re.sub(r"[^\w\s]", " ", bare.lower()).split())


def _units(text: str) -> tuple[str, str]:
    """The value's text and its unit: degrees, or a word after a number (``3\\text{ cm}``)."""
    if _DEGREES.search(text):
        return _DEGREES.sub("", text).strip(), "degrees"
    match = _UNIT_TAIL.match(text)
    if match is not None:
        unit = (match.group(2) or match.group(4) or "").strip().rstrip(".").lower()
        if unit and unit not in ("or", "and", "e"):
            return match.group(1) or match.group(3), unit
    return text, ""


def _thousands(text: str) -> str:
    return _THOUSANDS.sub(lambda m: m.group(1) + re.sub(r"[^0-9]", "", m.group(2)), text)


def _structure(text: str, like: Typed | None) -> Typed:
    if "\\" in text:
        text = _RELATION_COMMAND.sub(lambda match: _RELATIONS[match.group(1)], text)
    for old, new in _RELATION_SIGNS:
        if old in text:
            text = text.replace(old, new)
    if "\\cup" in text:
        # "(0,9) \\cup (9,36)": each part an interval, parentheses and all
        parts = tuple(_structure(part, _INTERVAL) for part in text.split("\\cup"))
        if not all(part.kind == "interval" for part in parts):
            raise ParseError("a union of non-intervals")
        return Typed("union", parts=parts)
    text, unit = _units(text.strip())
    text = text.strip()
    percent = _PERCENT.search(text)
    if percent is not None:
        text = text[: percent.start()].strip()
    if not (text[:1] in "([{" or text.startswith("\\{") or text.startswith("\\langle")):
        text = _thousands(text)
    text = normalize(text)
    if not text:
        raise ParseError("empty")
    typed = _relation(text, like)
    if typed is None:
        typed = _bracketed(text, like)
    if typed is None:
        items = _split_top(text, ",")
        if like is not None and like.kind == "tuple":
            typed = Typed("tuple", parts=tuple(_expression(item) for item in items))
        elif len(items) > 1 or "\\pm" in text:
            typed = _set(items)
        else:
            typed = _expression(text)
    if unit:
        return Typed(typed.kind, typed.node, typed.parts, typed.closed, typed.label, unit)
    return typed


_INTERVAL: Final = Typed("interval")


def _set(items: list[str]) -> Typed:
    """The set of ``items``; an item with one ``\\pm`` is its two values (``1\\pm\\sqrt{5}``)."""
    parts: list[Typed] = []
    for item in items:
        signs = item.count("\\pm")
        if signs > 1:
            raise ParseError("more than one \\pm")
        if signs:
            parts += (_expression(item.replace("\\pm", sign)) for sign in "+-")
        else:
            parts.append(_expression(item))
    return Typed("set", parts=tuple(parts))


def _expression(text: str) -> Typed:
    node = parse(text)
    return Typed("expression" if variables(node) else "number", node=node)


def _split_top(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside brackets."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _bracketed(text: str, like: Typed | None) -> Typed | None:
    """Sets ``\\{...\\}``, tuples ``(a, b)``, ``\\langle a, b\\rangle``, intervals
    ``[a, b)``; None if ``text`` is not bracketed as a whole."""
    if text.startswith("\\{") and text.endswith("\\}"):
        return _set(_split_top(text[2:-2], ","))
    if text.startswith("\\langle") and text.endswith("\\rangle"):
        inner = text[len("\\langle") : -len("\\rangle")]
        return Typed("tuple", parts=tuple(_expression(item) for item in _split_top(inner, ",")))
    if len(text) < 2 or text[0] not in "([" or text[-1] not in ")]":
        return None
    if _split_top(text[1:-1], ")") != [text[1:-1]] or not _balanced(text[1:-1]):
        return None  # "(1)(2)": not one bracket
    items = _split_top(text[1:-1], ",")
    if len(items) < 2:
        return None
    parts = tuple(_expression(item) for item in items)
    closed = (text[0] == "[", text[-1] == "]")
    wanted = like.kind if like is not None else None
    interval = wanted == "interval" or (
        wanted is None
        and len(parts) == 2
        and (
            closed[0]
            or closed[1]
            or any(part.node in (INFINITY, ("neg", INFINITY)) for part in parts)
        )
    )
    if wanted in ("tuple", "set") or (wanted is None and not interval):
        if closed != (False, False):
            raise (
                ParseError("a tuple in square brackets")
                if wanted == "tuple"
                else ParseError("not a tuple")
            )
        return Typed("tuple", parts=parts)
    if len(parts) != 2:
        raise ParseError("an interval has two ends")
    return Typed("interval", parts=parts, closed=closed)


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth < 0:
            return False
    return depth == 0


def _relation(text: str, like: Typed | None) -> Typed | None:
    """``x=2`` (an equation), ``1<x<2`` or ``x\\ge 3`` (an interval); None without one."""
    pieces = _RELATION.split(text)
    if len(pieces) == 1:
        return None
    sides, operators = pieces[0::2], pieces[1::2]
    if operators == ["="]:
        left, right = _structure(sides[0], None), _structure(sides[1], None)
        return Typed("equation", parts=(left, right))
    if len(operators) > 1 and all(operator == "=" for operator in operators):
        # "x = 5+5+1 = 11": the last side is the answer (Math-Verify's rule)
        left, right = _structure(sides[0], None), _structure(sides[-1], None)
        return Typed("equation", parts=(left, right))
    if "=" in operators or "!=" in operators:
        raise ParseError("a chain of equations")
    nodes = [parse(side) for side in sides]
    if len(nodes) == 2:
        (a, b), (op,) = nodes, operators
        if a[0] == "v" and not variables(b):  # x > 3
            return _ray(b, op, variable_left=True)
        if b[0] == "v" and not variables(a):  # 3 < x
            return _ray(a, op, variable_left=False)
    if len(nodes) == 3 and nodes[1][0] == "v" and operators[0][0] == operators[1][0]:
        low, high = (nodes[0], nodes[2]) if operators[0][0] == "<" else (nodes[2], nodes[0])
        closed = tuple(len(op) == 2 for op in operators)
        if operators[0][0] == ">":
            closed = closed[::-1]
        return Typed(
            "interval",
            parts=(Typed("number", node=low), Typed("number", node=high)),
            closed=(closed[0], closed[1]),
        )
    raise ParseError("an inequality that is not an interval")


def _ray(bound: Node, operator: str, *, variable_left: bool) -> Typed:
    """``x > 3`` as ``(3, oo)``; ``x <= 3`` as ``(-oo, 3]``."""
    upward = (operator[0] == ">") == variable_left
    inclusive = len(operator) == 2
    end = Typed("number", node=bound)
    if upward:
        return Typed(
            "interval", parts=(end, Typed("number", node=INFINITY)), closed=(inclusive, False)
        )
    return Typed(
        "interval", parts=(Typed("number", node=("neg", INFINITY)), end), closed=(False, inclusive)
    )


@lru_cache(maxsize=4096)  # the rollouts of one prompt share its reference
def reference(text: str, kind: str | None = None) -> Typed:
    """A reference's typed answer; ``kind`` (from the reference object) settles ``(1, 2)``.
    :class:`ParseError` if the grader cannot understand it."""
    if kind is None:
        return read(text)
    if kind not in KINDS:
        raise ParseError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    if kind in ("number", "expression"):
        typed = read(text, choice_ok=False)
        if typed.kind not in ("number", "expression"):
            raise ParseError(f"not a {kind}")
        return typed
    typed = read(text, Typed(kind))  # type: ignore[arg-type]
    if typed.kind != kind:
        raise ParseError(f"not a {kind}")
    return typed


# Points at which expressions with variables are compared (fixed: same inputs, same outputs):
# irrational-looking values in [0.5, 2.5), different for every letter and point, so that no
# identity that fails to hold happens to hold at all of them.
_POINTS: Final = tuple(
    {
        name: 0.5 + 2 * ((index * 0.6180339887 + seed * 0.4142135623 + 0.1234567) % 1)
        for index, name in enumerate("abcdefghijklmnopqrstuvwxyz")
    }
    for seed in range(4)
)


def _point(names: frozenset[str], index: int) -> dict[str, float]:
    base = _POINTS[index]
    return {name: base.get(name[0], 1.3 + 0.1 * index) + (0.01 * len(name)) for name in names}


def same_value(
    left: Node, right: Node, tolerance: float, relative: float, symbolic: Symbolic
) -> bool:
    """Whether two expressions are equal: as numbers within the tolerance; with variables,
    unequal when they differ at a test point, else as ``symbolic`` decides."""
    if left == right:  # the same tree: "x" and "x" of two equations
        return True
    names = variables(left) | variables(right)
    if not names:
        try:
            a, b = evaluate(left), evaluate(right)
        except NoValueError:
            return symbolic(left, right)
        return _close(a, b, tolerance, relative)
    for index in range(len(_POINTS)):
        point = _point(names, index)
        try:
            a, b = evaluate(left, point), evaluate(right, point)
        except NoValueError:
            return symbolic(left, right)
        if not _close(a, b, max(tolerance, 1e-9), max(relative, 1e-9)):
            return False
    return symbolic(left, right)  # agreement at points is no proof: the symbolic check decides


def _close(a: float, b: float, tolerance: float, relative: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return a == b or math.isclose(a, b, rel_tol=max(relative, 1e-12), abs_tol=tolerance)


def equivalent(
    expected: Typed, answer: Typed, tolerance: float, relative: float, symbolic: Symbolic
) -> bool:
    """Whether ``answer`` is ``expected`` (by kind); ``symbolic`` decides the pairs of
    expressions that floats cannot."""
    if expected.unit and answer.unit and expected.unit != answer.unit:
        return False
    kind = expected.kind
    if kind in ("tuple", "set", "interval", "union") and answer.kind == "equation":
        if not all(_lone_variable(part) for part in answer.parts[0].parts or (answer.parts[0],)):
            return False
        answer = answer.parts[1]  # labelled: "(p,q) = (3,2)" answers "(3,2)"
    if kind in ("number", "expression"):
        if answer.kind == "equation" and _stated_value(answer):
            answer = answer.parts[1]  # "x = 2" and "\\frac{36}{2} = 18" answer "18"
        if answer.kind not in ("number", "expression") or answer.node is None:
            return False
        assert expected.node is not None
        return same_value(expected.node, answer.node, tolerance, relative, symbolic)
    if kind in ("choice", "text"):
        return answer.kind == kind and answer.label == expected.label
    if kind == "equation":
        return _equation(expected, answer, tolerance, relative, symbolic)
    if kind == "tuple" and answer.kind == "set" and len(answer.parts) == len(expected.parts):
        # Math-Verify's rule: a set answering a tuple is read in its written order
        answer = Typed("tuple", parts=answer.parts, unit=answer.unit)
    if answer.kind != kind or len(answer.parts) != len(expected.parts):
        if kind == "set" and answer.kind in ("set", "tuple") and answer.parts:
            return _same_set(expected.parts, answer.parts, tolerance, relative, symbolic)
        return False
    if kind == "interval" and answer.closed != expected.closed:
        return False
    if kind == "set":
        return _same_set(expected.parts, answer.parts, tolerance, relative, symbolic)
    if kind == "union":
        return _same_set(expected.parts, answer.parts, tolerance, relative, symbolic)
    return all(
        equivalent(a, b, tolerance, relative, symbolic)
        for a, b in zip(expected.parts, answer.parts, strict=True)
    )


def _lone_variable(typed: Typed) -> bool:
    """Whether ``typed`` is one variable (``x``, ``p``): a label."""
    return typed.node is not None and typed.node[0] == "v"


def _stated_value(equation: Typed) -> bool:
    """Whether an equation states its right side as a value: its left side is a lone variable
    (``x = 2``) or a constant (``\\frac{36}{2} = 18``)."""
    left = equation.parts[0].node
    return left is not None and (left[0] == "v" or not variables(left))


def _equation(
    expected: Typed, answer: Typed, tolerance: float, relative: float, symbolic: Symbolic
) -> bool:
    left, right = expected.parts
    if answer.kind != "equation":
        # "x = 2" is answered by "2" when its left side is a lone variable
        lone = left.node is not None and left.node[0] == "v"
        return lone and equivalent(right, answer, tolerance, relative, symbolic)
    other_left, other_right = answer.parts
    return equivalent(left, other_left, tolerance, relative, symbolic) and equivalent(
        right, other_right, tolerance, relative, symbolic
    )


def _same_set(
    expected: tuple[Typed, ...],
    answer: tuple[Typed, ...],
    tolerance: float,
    relative: float,
    symbolic: Symbolic,
) -> bool:
    """Every element of each side equals one of the other's (order and repeats aside)."""
    return all(
        any(equivalent(a, b, tolerance, relative, symbolic) for b in answer) for a in expected
    ) and all(
        any(equivalent(a, b, tolerance, relative, symbolic) for a in expected) for b in answer
    )
