"""``math_answer``: the response's final answer equals the reference's (with tolerance).

Example::

    {"type": "math_answer", "name": "gsm8k", "tolerance": 1e-6}

The reference is ``item.reference_answer`` unless ``reference`` (a template) says otherwise; it
may be a number, a string ("72", "$1,234", a worked solution ending in ``#### 72``, or LaTeX
math: ``\\frac{10}{9}``, ``[0,1)``, ``x=2``, ``\\text{(B)}``), or an object with
``final_answer`` / ``answer`` / ``text`` / ``value`` and optionally ``kind`` (accepted for
datasets written for the earlier reader: it keeps the reference off the plain-number path; the
reading is Math-Verify's).

A reference in math delimiters (``$34$``, ``\\(...\\)``) grades as without them; a list of
numbers (``19, 46, and 82``) is a set. A response is read after its last ``</think>`` (a
``<think>`` never closed: no answer).

Fast first, then Math-Verify: a plain-number reference takes the numeric path of
:mod:`grading.answers` (GSM8K never leaves it); any other reference is parsed once per batch by
Math-Verify (:mod:`grading.mathverify`, imported on first use), which reads the response's
last 2,000 characters and decides equivalence under the per-sample ``time_budget``. Kept on
purpose beside it (:mod:`grading.mathlists`): lists of plain numbers in prose, candidates one
per line and boxes that disagree score as ``docs/graders.md`` says.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from math import isclose
from typing import Any, Final

from grading.answers import (
    MAX_ANSWER_CHARS,
    NUMBER,
    PLAIN_MARKER,
    Limits,
    answer_part,
    candidate,
    final_answer,
    spraying,
    to_number,
)
from grading.base import FAIL, PASS, Batch, Grade, Grader
from grading.errors import SampleError
from grading.log import debug_enabled, logger
from grading.mathlists import boxes_disagree, listed_candidates, number_list
from grading.mathverify import BudgetExceededError, bounded, parse, risky, verified
from grading.samples import Sample
from grading.spec import Spec
from grading.templates import Template

_PLAIN = re.compile(rf"\s*[$\u20ac\u00a3\u00a5]?\s*({NUMBER})\s*%?\s*")
# Words (not LaTeX, not a function name): the reference is prose, read as GSM8K reads it.
_PROSE = re.compile(
    r"\b(?!(?:sin|cos|tan|sec|csc|cot|sqrt|log|exp|abs|sinh|cosh|tanh)\b)[A-Za-z]{3,}"
)
# A decimal comma: digits, a comma, then digits that are no thousands group (not three) or
# after a lone 0 ("0,111").
_DECIMAL_COMMA = re.compile(r"-?(?:[0-9]+,(?:[0-9]{1,2}|[0-9]{4,})|0,[0-9]+)")
_REFERENCE_KEYS = ("final_answer", "answer", "text", "value")
# References are never "spray" (a worked solution may list many numbers).
_NO_LIMITS = Limits(max_numbers=1 << 30, max_number_run=1 << 30)


_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))


def _undelimited(text: str) -> str:
    """A reference without the math delimiters around all of it (``$34$``, ``\\(...\\)``,
    ``\\[...\\]``, ``$$...$$``): it grades as the same reference without them."""
    text = text.strip()
    for left, right in _DELIMITERS:
        if (
            len(text) > len(left) + len(right)
            and text.startswith(left)
            and text.endswith(right)
            and left not in text[len(left) : -len(right)]  # "$1$ and $2$" is no one math
        ):
            return text[len(left) : -len(right)].strip()
    return text


# Kinds a reference object may name (datasets written for the reader before Math-Verify): a
# kind keeps the reference off the plain-number and list shortcuts; Math-Verify reads it.
KINDS: Final = (
    "number", "expression", "interval", "set", "tuple", "equation", "choice", "text",
)  # fmt: skip
# Seconds to read one reference (once per batch per prompt).
REFERENCE_BUDGET: Final = 5.0


UNREADABLE: Final = "the reference answer is not math this grader reads (Math-Verify finds none)"


@dataclass(frozen=True)
class MathReference:
    """A reference that is not a plain number, as Math-Verify parsed it (``gold``), with the
    count of its parts (a set or tuple of many is exempt from the spray rule) and, for a list of
    plain numbers in prose (``19, 46, and 82``), the numbers."""

    gold: tuple[Any, ...]
    parts: int
    listed: frozenset[float] | None = None

    @property
    def text_only(self) -> bool:
        """Math-Verify found no math, only text (``[0,1``, ``\\foo{3}``): it compares the text
        as written, so only the same text scores."""
        return len(self.gold) < 2


def math_reference(text: str, listed: str | None = None) -> MathReference:
    """Math-Verify's parse of a reference's text (in ``$...$`` unless it has math delimiters or
    a box, then as written);
    :class:`SampleError` (the sample scores 0 with ``grader_error``) when it finds no answer."""
    if risky(text):
        raise SampleError("the reference answer holds a power too large to compute")
    try:
        # Math-Verify's LaTeX extraction wants math delimiters around a gold answer
        text = for_math_verify(text)
        unescaped = text.replace("\\$", "")  # a dollar sign is no delimiter
        delimited = "$" in unescaped or "\\(" in text or "\\[" in text or "\\boxed" in text
        wrapped = text if delimited else f"${text}$"
        gold = bounded(lambda: parse(wrapped) or parse(text), REFERENCE_BUDGET, text)
    except BudgetExceededError:
        raise SampleError(
            f"the reference answer took over {REFERENCE_BUDGET:g} s to read"
        ) from None
    if not gold:
        raise SampleError(UNREADABLE)
    value = gold[0]
    parts = len(value.args) if type(value).__name__ in ("FiniteSet", "Tuple") else 1
    numbers = frozenset(map(float, listed.split(", "))) if listed is not None else None
    return MathReference(tuple(gold), parts, numbers)


@lru_cache(maxsize=4096)  # the rollouts of one prompt share its reference
def _reference_from_text(text: str, kind: str | None = None) -> float | MathReference:
    delimited = "$" in text or "\\(" in text or "\\[" in text
    bare = _undelimited(text) if delimited else text
    if kind is None:
        plain = _PLAIN.fullmatch(bare)
        if plain is not None and _DECIMAL_COMMA.fullmatch(plain.group(1)) is None:
            return to_number(plain.group(1))
        if _DECIMAL_COMMA.fullmatch(bare.strip()):
            return float(bare.strip().replace(",", "."))  # "1,22", "0,111": Math-Verify's reading
        if (listed := number_list(bare.replace("$", ""), whole=True)) is not None:
            # "19, 46, and 82" or "$1$ and $2$": a list, never its last number
            return math_reference(f"${listed}$", listed)
        if "####" in bare or (not delimited and "\\" not in bare and _PROSE.search(bare)):
            # a worked solution (GSM8K's own answer field) or a sentence: its final number
            answer = final_answer(bare, _NO_LIMITS)
            if answer.value is None:
                raise SampleError(f"the reference answer has no single number ({answer.reason})")
            return answer.value
    elif kind not in KINDS:
        raise SampleError(f"the reference answer's kind {kind!r} is not one of {', '.join(KINDS)}")
    return math_reference(text)


@lru_cache(maxsize=4096)
def number_reference(value: float) -> MathReference:
    """A plain-number reference for a response whose answer is LaTeX math (``\\sqrt{12}``)."""
    return math_reference(f"${int(value) if value.is_integer() else repr(value)}$")


# LaTeX math (a fraction's last number is no answer), near the end where the final answer
# stands: each backslash of the tail, from the last (a GSM8K response has none, or one: its
# \boxed).
_LATEX_MATH = (
    "frac",
    "dfrac",
    "tfrac",
    "sqrt",
    "pi",
    "sin",
    "cos",
    "tan",
    "log",
    "ln",
    "exp",
    "cdot",
    "times",
    "infty",
)
_TAIL = 400


def _latex_math(text: str) -> bool:
    begin = max(0, len(text) - _TAIL)
    if text.find("^", begin) >= 0:
        return True
    at = text.rfind("\\", begin)
    while at >= 0:
        if text.startswith(_LATEX_MATH, at + 1):
            return True
        at = text.rfind("\\", begin, at)
    return False


# Numbers the numeric rules read otherwise than Math-Verify: a decimal comma ("2,74", "1000,99":
# not groups of three), digit groups separated by blanks ("1 000"), near the end.
_OTHER_NUMBER = re.compile(
    r"[0-9],(?:[0-9]{1,2}|[0-9]{4,})(?![0-9])|(?<![0-9])[0-9]{1,3} [0-9]{3}(?![0-9])"
)


def _other_format(text: str, value: float | None, reason: str) -> bool:
    """Whether a response the numeric rules did not find right may still be: no number found
    (an expression such as ``(9+1)``; not a hedge), a LaTeX relation, or a number format of
    :data:`_OTHER_NUMBER` in its last :data:`_TAIL` characters. Wrong GSM8K answers (most
    of them a plain wrong number) never leave the numeric path."""
    tail = text[-_TAIL:]
    if value is None:  # never a hedge or a conflict, nor "3x" (a number glued to a letter)
        return reason != "conflict" and (
            "\\" in tail or _OTHER_NUMBER.fullmatch(tail.strip()) is not None
        )
    if "\\" in tail:
        return True
    return ("," in tail or " " in tail) and _OTHER_NUMBER.search(tail) is not None


def _answer_text(text: str) -> str:
    """The part of a response its final answer is read from: after its reasoning trace, the
    last :data:`~grading.answers.MAX_ANSWER_CHARS` characters at most."""
    if "think>" in text:
        text = _after_thinking(text)
    return text if len(text) <= MAX_ANSWER_CHARS else answer_part(text)


def _after_thinking(text: str) -> str:
    """The response after its reasoning trace: what follows the last ``</think>`` (a chat
    template may open the trace in the prompt, so a lone ``</think>`` counts too). A trace that
    is opened and never closed holds no final answer (a rollout cut off while thinking): the
    empty text, scored 0."""
    close = text.rfind("</think>")
    if close >= 0:
        return text[close + len("</think>") :]
    return "" if "<think>" in text else text


def reference_value(raw: Any) -> float | MathReference:
    """The value of a reference answer in any of the shapes datasets use: a float for a
    plain number (the fast path), else Math-Verify's parse of it."""
    if type(raw) is dict and type(final := raw.get("final_answer")) is str:
        # the project's dataset shape, the common case; most GSM8K answers are plain integers
        if final.isdigit() and final.isascii():
            return float(final)
        kind = raw.get("kind")
        if kind is not None and not isinstance(kind, str):
            raise SampleError("the reference answer's kind is not a string")
        return _reference_from_text(final, kind)
    if isinstance(raw, bool):
        raise SampleError("the reference answer is a boolean, not a number")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise SampleError("the reference answer is not a finite number")
        return float(raw)
    if isinstance(raw, str):
        return _reference_from_text(raw)
    if isinstance(raw, dict):
        for key in _REFERENCE_KEYS:
            if key in raw:
                return reference_value(raw[key])
        raise SampleError(f"the reference answer object has none of {', '.join(_REFERENCE_KEYS)}")
    if raw is None:
        raise SampleError("the sample has no reference_answer")
    raise SampleError(f"the reference answer is a {type(raw).__name__}")


# An alternative after the last box: "\\boxed{2} or 3", "$\\boxed{x=2}$ or $x=-2$".
_OR_AFTER_BOX = re.compile(r"\}\s*\$*\s*[.,;]?\s*(?:or|either|alternatively)\b", re.IGNORECASE)
# What a bare answer line may not hold to be wrapped in math delimiters: a word of two letters
# or more (outside
# \text{} and its kin, which hold words in LaTeX); how long it may be; what makes it math.
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_TEXT_GROUP = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{[^{}]*\}")
_BARE_LINE = 200
_NUMERAL = re.compile(r"[-+]?[0-9][0-9., ]*")
_OPERATOR = re.compile(r"[-+*/^=<>(),\[\]{}]|[0-9][A-Za-z]")


# The characters of a response Math-Verify reads: the end, where the final answer stands. Its
# extraction is superlinear on degenerate text (8,000 characters of "7 7 7 ..." take 0.5 s, 2,000
# take 13 ms).
MATH_VERIFY_CHARS: Final = 2000


def _math_part(text: str) -> str:
    """The last :data:`MATH_VERIFY_CHARS` characters of a response, from a line's start (or a
    blank) near the cut, so that no expression is split where a line allows."""
    if len(text) <= MATH_VERIFY_CHARS:
        return text
    cut = len(text) - MATH_VERIFY_CHARS
    line = text.find("\n", cut, cut + 200)
    if line >= 0:
        return text[line + 1 :]
    blank = text.find(" ", cut, cut + 100)
    return text[blank + 1 :] if blank >= 0 else text[cut:]


def _hedged(text: str) -> bool:
    """Whether the response hedges between boxes: an alternative after its last box, or boxes
    on different lines that disagree (Math-Verify reads the last box)."""
    box = text.rfind("\\boxed")
    if box < 0:
        return False
    return _OR_AFTER_BOX.search(text, box, box + 300) is not None or boxes_disagree(text)


# LaTeX's separators between digit groups (``1\\,000``, ``11,\\!111``, ``1{,}000``), which
# Math-Verify reads as products or lists: removed where a group of three digits follows.
_GROUP_SEPARATOR = re.compile(r"(?<=[0-9])(?:\\,|\{,\}|,\\!\s?|\\!\s?|\\ )(?=[0-9]{3}(?![0-9]))")


def for_math_verify(text: str) -> str:
    """A text as Math-Verify should read it: LaTeX digit-group separators removed."""
    if "\\" in text or "{,}" in text:
        return _GROUP_SEPARATOR.sub("", text)
    return text


def _delimited(text: str) -> str:
    """The response as Math-Verify reads answers: a response without any math delimiters whose
    last line is a bare answer (``\\frac{10}{9}``, ``2\\sqrt{3}``, ``(6,31,-1)``, ``p - q``, no
    words outside ``\\text{}``) gets ``$...$`` around that line; Math-Verify would read it as
    plain text (``2\\sqrt{3}`` as 2, a tuple as its last number)."""
    text = for_math_verify(text)
    if "$" in text.replace("\\$", "") or "\\(" in text or "\\[" in text or "boxed" in text:
        return text
    head, _, last = text.rstrip().rpartition("\n")
    line = last.strip()
    if not line or len(line) > _BARE_LINE or _WORD.search(_TEXT_GROUP.sub("", line)):
        return text
    if "\\" not in line and (not _OPERATOR.search(line) or _NUMERAL.fullmatch(line)):
        return text  # a number ("1000,99", "1 000") or a word: Math-Verify reads it as text
    return f"{head}\n${line}$" if head else f"${line}$"


def _same_numbers(listed: str, expected: frozenset[float]) -> bool:
    """Whether a list ``a, b, c`` holds the reference's numbers (as a set, in any order)."""
    numbers = {float(item) for item in listed.split(", ")}
    return len(numbers) == len(expected) and all(
        any(isclose(value, other, rel_tol=1e-9, abs_tol=1e-9) for other in expected)
        for value in numbers
    )


class MathAnswer(Grader):
    """1 if the final answer equals the reference within tolerance, else 0."""

    type_name = "math_answer"

    def __init__(
        self,
        name: str,
        *,
        input_template: Template | None,
        reference: Template | None,
        tolerance: float,
        relative_tolerance: float,
        limits: Limits,
        time_budget: float = 1.0,
    ) -> None:
        super().__init__(name)
        self.input = input_template
        self.reference = reference
        self.tolerance = tolerance
        self.relative_tolerance = relative_tolerance
        self.limits = limits
        self.time_budget = time_budget

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> MathAnswer:
        """Build from the definition."""
        input_template = reference = None
        if spec.has("input"):
            input_template = Template(spec.string("input"), spec.at("input"))
        if spec.has("reference"):
            reference = Template(spec.string("reference"), spec.at("reference"))
        defaults = Limits()
        return cls(
            name,
            input_template=input_template,
            reference=reference,
            tolerance=spec.number("tolerance", 1e-6, minimum=0),
            relative_tolerance=spec.number("relative_tolerance", 0.0, minimum=0, maximum=1),
            time_budget=spec.number("time_budget", 1.0, minimum=0.01, maximum=10),
            limits=Limits(
                max_numbers=spec.number(
                    "max_numbers", defaults.max_numbers, minimum=1, integer=True
                ),
                max_number_run=spec.number(
                    "max_number_run", defaults.max_number_run, minimum=2, integer=True
                ),
            ),
        )

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample."""
        return self.grade_batch([sample], Batch())[0]

    def grade_batch(self, samples: Sequence[Sample], batch: Batch) -> list[Grade]:
        """Grade a batch. The spray rule can only take a reward away, so it runs last, on the
        correct answers only, all at once (C-level scans of the batch). Each response is read
        from its :func:`~grading.answers.answer_part`; a sample whose grading raises fails
        alone."""
        texts, failures = self._texts(samples)
        # "<" first: one character is found by memchr, "think>" takes a slower scan (measured
        # per 1,024 GSM8K responses: 13 us against 110 us, 3% of the batch)
        texts = [
            text if len(text) <= MAX_ANSWER_CHARS and "<" not in text else _answer_text(text)
            for text in texts
        ]
        debug = debug_enabled()
        reference = self.reference
        tolerance, relative = self.tolerance, self.relative_tolerance
        grades: list[Grade] = []
        correct: list[int] = []  # the samples graded PASS so far
        for index, (sample, text) in enumerate(zip(samples, texts, strict=True)):
            if failures and index in failures:
                grades.append(failures[index])
                continue
            try:
                expected = reference_value(
                    sample.item.get("reference_answer")
                    if reference is None
                    else reference.render(sample)
                )
            except SampleError as err:
                grades.append(Grade.failed(f"{self.name}: {err}"))
                continue
            if type(expected) is float:  # a plain number
                value, reason = candidate(text)
                # Without LaTeX, or with markers that all hold just a number (GSM8K's common
                # cases), the number is the answer; else it may be LaTeX math (\sqrt{12} is no
                # 12), compared by kind.
                if "\\" not in text or reason == PLAIN_MARKER or not _latex_math(text):
                    if value is not None and (
                        value == expected
                        or isclose(value, expected, rel_tol=relative, abs_tol=tolerance)
                    ):
                        correct.append(index)
                        grades.append(PASS)
                        continue
                    if reason == PLAIN_MARKER or not _other_format(text, value, reason):
                        if debug and value is None:
                            logger.debug("sample %r: no final answer (%s)", sample.id, reason)
                        grades.append(FAIL)
                        continue
                    # a format the numeric rules read otherwise (a decimal comma, "1 000",
                    # "\\approx", an expression): Math-Verify decides
                try:
                    expected = number_reference(expected)
                except SampleError as err:
                    grades.append(Grade.failed(f"{self.name}: {err}"))
                    continue
            assert isinstance(expected, MathReference)
            grade, sprayable = self._verified(expected, text, batch, sample.id)
            if sprayable:
                correct.append(index)
            grades.append(grade)
        for sprayed in spraying([texts[index] for index in correct], self.limits):
            index = correct[sprayed]
            if debug:
                logger.debug("sample %r: no final answer (spray)", samples[index].id)
            grades[index] = FAIL
        return grades

    def _verified(
        self, expected: MathReference, text: str, batch: Batch, sample_id: Any
    ) -> tuple[Grade, bool]:
        """The grade of a response to a reference Math-Verify reads, and whether the spray rule
        applies to it (a correct answer that is not itself a long set or tuple)."""
        if not text or text.isspace() or listed_candidates(text) or _hedged(text):
            return FAIL, False  # no answer, candidates one per line, or an alternative
        budget = self.time_budget
        remaining = batch.remaining()
        if remaining is not None:  # never past the invocation's own deadline
            budget = min(budget, max(remaining, 0.0))
        response = _delimited(_math_part(text))
        if risky(response):
            return Grade.failed(
                f"{self.name}: the comparison was not attempted: a power too large to compute"
                " (a tower, or an exponent of seven digits or more)"
            ), False
        try:
            same = bounded(lambda: verified(list(expected.gold), response), budget, response)
        except BudgetExceededError as err:
            return Grade.failed(
                f"{self.name}: the comparison exceeded its budget ({err}; {self.time_budget} s)"
            ), False
        except Exception as err:  # a bug or a library's error fails this sample only
            # The exception text may quote the response: it goes to debug logs only.
            logger.debug("sample %r: %r while grading", sample_id, err)
            return Grade.failed(f"{self.name}: {type(err).__name__} while grading"), False
        if not same and expected.listed is not None:
            # "The numbers are 19, 46, and 82.": Math-Verify reads the last number only
            listed = number_list(text.rstrip().rsplit("\n", 1)[-1])
            same = listed is not None and _same_numbers(listed, expected.listed)
        if not same:
            return FAIL, False
        return PASS, expected.parts < self.limits.max_number_run - 1

    def reference_problem(self, item: dict[str, Any]) -> str | None:
        """Why this grader cannot understand a dataset record's reference (None if it can):
        preflight reports it with the record's line."""
        try:
            if self.reference is not None:
                raw: Any = self.reference.render(Sample(id="preflight", output_text="", item=item))
            else:
                raw = item.get("reference_answer")
            value = reference_value(raw)
        except SampleError as err:
            return str(err)
        if isinstance(value, MathReference) and value.text_only:
            return (
                "the reference answer is not math this grader reads (Math-Verify finds only"
                " its text, so only that same text would score)"
            )
        return None

    def _texts(self, samples: Sequence[Sample]) -> tuple[list[str], dict[int, Grade]]:
        """The text to find each answer in, and the samples whose input cannot be rendered."""
        if self.input is None:
            return [sample.output_text for sample in samples], {}
        texts: list[str] = []
        failures: dict[int, Grade] = {}
        for index, sample in enumerate(samples):
            try:
                texts.append(self.input.render(sample))
            except SampleError as err:
                failures[index] = Grade.failed(f"{self.name}: {err}")
                texts.append("")
        return texts, failures
