"""``math_answer``: the response's final numeric answer equals the reference's (with tolerance).

Example::

    {"type": "math_answer", "name": "gsm8k", "tolerance": 1e-6}

The reference is ``item.reference_answer`` unless ``reference`` (a template) says otherwise; it
may be a number, a string ("72", "$1,234", or a worked solution ending in ``#### 72``), or an
object with ``final_answer`` / ``answer`` / ``text`` / ``value``. How the response's answer is
found is described in :mod:`grading.answers`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from math import isclose
from typing import Any

from grading.answers import NUMBER, Limits, candidate, final_answer, spraying, to_number
from grading.base import FAIL, PASS, Batch, Grade, Grader
from grading.errors import SampleError
from grading.log import debug_enabled, logger
from grading.samples import Sample
from grading.spec import Spec
from grading.templates import Template

_PLAIN = re.compile(rf"\s*[$\u20ac\u00a3\u00a5]?\s*({NUMBER})\s*%?\s*")
_REFERENCE_KEYS = ("final_answer", "answer", "text", "value")
# References are never "spray" (a worked solution may list many numbers).
_NO_LIMITS = Limits(max_numbers=1 << 30, max_number_run=1 << 30)


@lru_cache(maxsize=4096)  # the rollouts of one prompt share its reference
def _reference_from_text(text: str) -> float:
    plain = _PLAIN.fullmatch(text)
    if plain is not None:
        return to_number(plain.group(1))
    answer = final_answer(text, _NO_LIMITS)
    if answer.value is None:
        raise SampleError(f"the reference answer has no single number ({answer.reason})")
    return answer.value


def reference_value(raw: Any) -> float:
    """The numeric value of a reference answer in any of the shapes datasets use."""
    if type(raw) is dict and type(final := raw.get("final_answer")) is str:
        # the project's dataset shape, the common case; most GSM8K answers are plain integers
        if final.isdigit() and final.isascii():
            return float(final)
        return _reference_from_text(final)
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
    ) -> None:
        super().__init__(name)
        self.input = input_template
        self.reference = reference
        self.tolerance = tolerance
        self.relative_tolerance = relative_tolerance
        self.limits = limits

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
        correct answers only, all at once (C-level scans of the batch)."""
        texts, failures = self._texts(samples)
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
                if reference is not None:
                    expected = reference_value(reference.render(sample))
                else:
                    expected = reference_value(sample.item.get("reference_answer"))
            except SampleError as err:
                grades.append(Grade.failed(f"{self.name}: {err}"))
                continue
            value, reason = candidate(text)
            if value is None:
                if debug:
                    logger.debug("sample %r: no final answer (%s)", sample.id, reason)
                grades.append(FAIL)
            elif value == expected or isclose(value, expected, rel_tol=relative, abs_tol=tolerance):
                correct.append(index)
                grades.append(PASS)
            else:
                grades.append(FAIL)
        for sprayed in spraying([texts[index] for index in correct], self.limits):
            index = correct[sprayed]
            if debug:
                logger.debug("sample %r: no final answer (spray)", samples[index].id)
            grades[index] = FAIL
        return grades

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
