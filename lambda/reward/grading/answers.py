"""Find the one final numeric answer of a free-text solution (GSM8K and similar).

Rules, in order:

1. An empty response has no answer.
2. A response that sprays numbers (a long run of bare numbers, or more numbers than any real
   solution needs) has no answer: listing candidates must not pay.
3. Explicit final-answer markers win over stray numbers: ``#### N``, ``\\boxed{N}``,
   ``<answer>N</answer>``, "the answer is N", "Answer: N", "Final answer: N". Every marker
   must give the same value; two that disagree are two different final answers (no answer).
4. Without a marker, the last number of the response is its answer.
5. An answer offered with an alternative ("18 or 20", "18-20", "between 18 and 20") is a hedge:
   no answer.

Numbers are normalized: thousands separators, currency signs, trailing ``.0``, units or words
after the number, Markdown emphasis, LaTeX ``\\frac``/``\\text``; ``a/b`` is a fraction. Whole
tokens are compared, so 180 never counts as 18.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Final

# One number token. Not glued to a word or another number, so "x3", "v1.2" and the "4" of
# "3/4" are not tokens (Markdown's "__18__" is); a minus sign counts only where it cannot be a
# subtraction ("5-3").
NUMBER: Final = (
    r"(?<![0-9A-Za-z.,/])[-\u2212]?(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?"
    r"|(?<![0-9A-Za-z.,/])\.[0-9]+"
)
_NUMBER = re.compile(NUMBER)
_FRACTION_TAIL = re.compile(r"\s*/\s*([0-9]+(?:\.[0-9]+)?)(?![0-9.,])")
_CALCULATOR = re.compile(r"<<[^<>\n]*>>")  # GSM8K calculator annotations: <<48/2=24>>
_MARKERS = re.compile(
    r"####+[ \t]*(?P<hash>[^\n]*)"
    r"|<answer>(?P<tag>[\s\S]*?)(?:</answer>|\n|$)"
    r"|\b(?:final[ \t]+)?answer(?:[*_]{1,2})?[ \t]*"
    r"(?:is[ \t]*(?:[*_]{1,2})?[ \t]*:?|[:\uff1a])(?P<text>[^\n]*)",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_SENTENCE_END = re.compile(r"[.!?;](?=\s|$)")
_ASIDE = re.compile(r"\([^()]*\)")
_CURRENCY = r"[$\u20ac\u00a3\u00a5]?"
_HEDGE_WORDS = r"(?:or|to|and/or|vs\.?)"
_MAYBE = r"(?:(?:maybe|perhaps|possibly|even)\s+)?"
# After the answer: another number offered as an alternative to it.
_ALTERNATIVE_AFTER = re.compile(
    rf"\s*(?:[^\W\d]+\s+){{0,2}}\(?\s*{_HEDGE_WORDS}\s+{_MAYBE}{_CURRENCY}\s*({NUMBER})"
    rf"|(?:\s*[-\u2013,;]\s*|\s+){_CURRENCY}\s*({NUMBER})",
    re.IGNORECASE,
)
# Before the last number: the same, read backwards ("... 18 or 20").
_ALTERNATIVE_BEFORE = re.compile(
    rf"({NUMBER})\s*(?:[^\W\d]+\s+){{0,2}}\(?\s*(?:{_HEDGE_WORDS}\s+{_MAYBE}|[-\u2013,;]\s*)"
    rf"{_CURRENCY}\s*$",
    re.IGNORECASE,
)
_BETWEEN = re.compile(
    rf"\b(?:between|either)\s+{_CURRENCY}\s*({NUMBER})\s*(?:[^\W\d]+\s+){{0,2}}(?:and|or)\s+"
    rf"{_CURRENCY}\s*({NUMBER})",
    re.IGNORECASE,
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Answer:
    """The final answer of a text: a value, or ``None`` with the reason there is none."""

    value: float | None
    reason: str  # marker | last_number | empty | no_number | spray | hedge | conflict


@dataclass(frozen=True, slots=True)
class Limits:
    """Anti-spray limits (defaults sit well above any GSM8K reference solution)."""

    max_numbers: int = 250
    max_number_run: int = 8


def to_number(token: str) -> float:
    """The value of a :data:`NUMBER` token."""
    return float(token.replace(",", "").replace("\u2212", "-"))


def _first_value(text: str) -> tuple[float, int] | None:
    """The first number of ``text`` (``a/b`` as a fraction) and where it ends."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    value = to_number(match.group())
    end = match.end()
    tail = _FRACTION_TAIL.match(text, end)
    if tail is not None:
        denominator = to_number(tail.group(1))
        if denominator != 0:
            value, end = value / denominator, tail.end()
    return value, end


def _unlatex(span: str) -> str:
    span = span.replace("{,}", ",").replace("\\,", "").replace("\\!", "").replace("\\$", "$")
    span = _LATEX_FRAC.sub(r"\1/\2", span)
    return _LATEX_COMMAND.sub(" ", span).replace("{", " ").replace("}", " ")


def _span_value(span: str) -> float | str | None:
    """The value a marker's text gives: a number, ``"hedge"``, or ``None`` (no number)."""
    end = _SENTENCE_END.search(span)
    if end is not None and _NUMBER.search(span, 0, end.start()):
        span = span[: end.start()]
    if "\\" in span or "{" in span:
        span = _unlatex(span)
    between = _BETWEEN.search(span)
    if between and to_number(between.group(1)) != to_number(between.group(2)):
        return "hedge"
    head = _ASIDE.sub(" ", span) if "(" in span else span
    if "=" in head:
        head = head.rsplit("=", 1)[1]  # "15 * 8 = 120 pints": the result, not the operands
    first = _first_value(head)
    if first is None:
        return None
    value, end_at = first
    if _is_alternative(_ALTERNATIVE_AFTER.match(head, end_at), value):
        return "hedge"
    for aside in _ASIDE.findall(span) if "(" in span else ():
        # "18 (or 20)": an alternative hidden in an aside
        if _is_alternative(_ALTERNATIVE_AFTER.match(" " + aside[1:-1]), value):
            return "hedge"
    return value


def _is_alternative(match: re.Match[str] | None, value: float) -> bool:
    """Whether ``match`` (of an alternative pattern) found a different number than ``value``."""
    if match is None:
        return False
    return to_number(match.group(1) or match.group(2)) != value


def _boxed_spans(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}`` (nested braces allowed)."""
    spans = []
    for match in _BOXED.finditer(text):
        depth, start = 1, match.end()
        for index in range(start, min(len(text), start + 2000)):
            char = text[index]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    spans.append(text[start:index])
                    break
    return spans


def _marker_spans(text: str) -> list[str]:
    spans = _boxed_spans(text) if "box" in text else []
    for match in _MARKERS.finditer(text):
        spans.append(match.group("hash") or match.group("tag") or match.group("text") or "")
    return spans


@cache
def _run_pattern(length: int) -> re.Pattern[str]:
    """``length`` numbers in a row joined only by separators: a list of candidates."""
    return re.compile(
        rf"(?:(?:{NUMBER})(?:\s*[,;|]\s*|\s+(?:or|and)\s+|\s+)){{{length - 1},}}(?:{NUMBER})",
        re.IGNORECASE,
    )


def _sprays(text: str, numbers: list[str], limits: Limits) -> bool:
    if len(numbers) > limits.max_numbers:
        return True
    if len(numbers) < limits.max_number_run:
        return False
    return _run_pattern(limits.max_number_run).search(text) is not None


def final_answer(text: str, limits: Limits = Limits()) -> Answer:
    """The final numeric answer of ``text`` under the module's rules."""
    if not text or text.isspace():
        return Answer(None, "empty")
    if "<<" in text:
        text = _CALCULATOR.sub("", text)
    numbers = _NUMBER.findall(text)
    if not numbers:
        return Answer(None, "no_number")
    if _sprays(text, numbers, limits):
        return Answer(None, "spray")
    return _marked_answer(text) or _last_number(text)


def _marked_answer(text: str) -> Answer | None:
    """Rule 3: the value every marker agrees on; ``None`` if no marker gives a number."""
    values: set[float] = set()
    for span in _marker_spans(text):
        value = _span_value(span)
        if value == "hedge":
            return Answer(None, "hedge")
        if isinstance(value, float):
            values.add(value)
    if len(values) > 1:
        return Answer(None, "conflict")
    return Answer(values.pop(), "marker") if values else None


def _last_number(text: str) -> Answer:
    """Rule 4: the last number, unless it is offered as an alternative to another one."""
    last: re.Match[str] | None = None
    for match in _NUMBER.finditer(text, max(0, len(text) - 400)):
        last = match
    if last is None:  # the last number is further back than the tail
        for match in _NUMBER.finditer(text):
            last = match
    assert last is not None  # the caller found at least one number
    value = to_number(last.group())
    line_start = text.rfind("\n", 0, last.start()) + 1
    before = text[max(line_start, last.start() - 80) : last.start()]
    if _is_alternative(_ALTERNATIVE_BEFORE.search(before), value):
        return Answer(None, "hedge")
    between = _BETWEEN.search(before + last.group())
    if between and to_number(between.group(1)) != to_number(between.group(2)):
        return Answer(None, "hedge")
    tail = _FRACTION_TAIL.match(text, last.end())
    if tail is not None and to_number(tail.group(1)) != 0:
        value /= to_number(tail.group(1))
    return Answer(value, "last_number")
