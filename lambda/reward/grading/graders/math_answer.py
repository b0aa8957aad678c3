"""``math_answer``: the response's final answer equals the reference's (with tolerance).

Example::

    {"type": "math_answer", "name": "gsm8k", "tolerance": 1e-6}

The reference is ``item.reference_answer`` unless ``reference`` (a template) says otherwise; it
may be a number, a string ("72", "$1,234", a worked solution ending in ``#### 72``, or LaTeX
math: ``\\frac{10}{9}``, ``[0,1)``, ``x=2``, ``\\text{(B)}``), or an object with
``final_answer`` / ``answer`` / ``text`` / ``value`` and optionally ``kind`` (``"interval"``
or ``"tuple"`` settles ``(1, 2)``).

A reference in math delimiters (``$34$``, ``\\(...\\)``) grades as without them; a list of
numbers (``19, 46, and 82``) is a set. A response is read after its last ``</think>`` (a
``<think>`` never closed: no answer).

Fast first, exact second: a plain-number reference takes the numeric path of
:mod:`grading.answers` (GSM8K never reaches the rest); any other reference is read once per
batch into a typed answer (:mod:`grading.mathkinds`), the response's final answer is found by
:mod:`grading.mathresponse` and compared by kind, with floats first and sympy
(:mod:`grading.symbolic`, imported on first use) only for what floats cannot decide, under
the per-sample ``time_budget``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from math import isclose
from typing import Any

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
from grading.mathcompare import Comparison, typed_reference
from grading.mathkinds import Typed, number_list
from grading.samples import Sample
from grading.spec import Spec
from grading.templates import Template

_PLAIN = re.compile(rf"\s*[$\u20ac\u00a3\u00a5]?\s*({NUMBER})\s*%?\s*")
# Words (not LaTeX, not a function name): the reference is prose, read as GSM8K reads it.
_PROSE = re.compile(
    r"\b(?!(?:sin|cos|tan|sec|csc|cot|sqrt|log|exp|abs|sinh|cosh|tanh)\b)[A-Za-z]{3,}"
)
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


@lru_cache(maxsize=4096)  # the rollouts of one prompt share its reference
def _reference_from_text(text: str, kind: str | None = None) -> float | Typed:
    if "$" in text or "\\(" in text or "\\[" in text:
        text = _undelimited(text)
    plain = _PLAIN.fullmatch(text) if kind is None else None
    if plain is not None:
        return to_number(plain.group(1))
    if kind is None and (listed := number_list(text, whole=True)) is not None:
        return typed_reference(listed, None)  # "19, 46, and 82": a list, never its last number
    if kind is None and ("####" in text or ("\\" not in text and _PROSE.search(text))):
        # a worked solution (GSM8K's own answer field) or a sentence: its final number
        answer = final_answer(text, _NO_LIMITS)
        if answer.value is None:
            raise SampleError(f"the reference answer has no single number ({answer.reason})")
        return answer.value
    return typed_reference(text, kind)  # a \text{...} answer stays text, digits and all


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


@lru_cache(maxsize=4096)
def _typed_float(value: float) -> Typed:
    return Typed("number", node=("n", repr(value)))


def typed_number(expected: float | Typed) -> Typed:
    """A reference as a typed answer (a plain number becomes a number literal)."""
    return expected if isinstance(expected, Typed) else _typed_float(expected)


def reference_value(raw: Any) -> float | Typed:
    """The value of a reference answer in any of the shapes datasets use: a float for a
    plain number (the fast path), else its typed answer."""
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
        comparison = Comparison(tolerance, relative, self.time_budget, self.limits, batch)
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
            if not isinstance(expected, Typed):  # a plain number
                value, reason = candidate(text)
                # Without LaTeX, or with markers that all hold just a number (GSM8K's common
                # cases), the number is the answer; else it may be LaTeX math (\sqrt{12} is no
                # 12), compared by kind.
                if "\\" not in text or reason == PLAIN_MARKER or not _latex_math(text):
                    if value is None:
                        if debug:
                            logger.debug("sample %r: no final answer (%s)", sample.id, reason)
                        grades.append(FAIL)
                    elif value == expected or isclose(
                        value, expected, rel_tol=relative, abs_tol=tolerance
                    ):
                        correct.append(index)
                        grades.append(PASS)
                    else:
                        grades.append(FAIL)
                    continue
                expected = typed_number(expected)
            grade, sprayable = self._typed(comparison, expected, text, sample.id)
            if sprayable:
                correct.append(index)
            grades.append(grade)
        for sprayed in spraying([texts[index] for index in correct], self.limits):
            index = correct[sprayed]
            if debug:
                logger.debug("sample %r: no final answer (spray)", samples[index].id)
            grades[index] = FAIL
        return grades

    def _typed(
        self, comparison: Comparison, expected: Typed, text: str, sample_id: Any
    ) -> tuple[Grade, bool]:
        """The grade of a response to a typed reference, and whether the spray rule applies
        to it (a correct answer that is not itself a long list)."""
        try:
            grade = comparison.grade(expected, text)
        except Exception as err:  # a bug or a library's error fails this sample only
            # The exception text may quote the response: it goes to debug logs only.
            logger.debug("sample %r: %r while grading", sample_id, err)
            return Grade.failed(f"{self.name}: {type(err).__name__} while grading"), False
        if grade.error is not None:
            return Grade.failed(f"{self.name}: {grade.error}"), False
        return grade, grade is PASS and not comparison.many_parts(expected)

    def reference_problem(self, item: dict[str, Any]) -> str | None:
        """Why this grader cannot understand a dataset record's reference (None if it can):
        preflight reports it with the record's line."""
        try:
            if self.reference is not None:
                raw: Any = self.reference.render(Sample(id="preflight", output_text="", item=item))
            else:
                raw = item.get("reference_answer")
            reference_value(raw)
        except SampleError as err:
            return str(err)
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
