"""``length``: a penalty for responses outside a length band.

Example::

    {"type": "length", "name": "concise", "unit": "words", "min": 20, "max": 300,
     "falloff": 100}

``unit``: ``characters``, ``words`` (runs of non-blank characters) or ``tokens`` (an
approximation without a tokenizer: words and punctuation marks counted separately; real
tokenizers split long words further). Inside ``[min, max]`` the reward is 1; outside it falls
linearly to 0 over ``falloff`` units (0, the default, means a hard edge).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from grading.base import Grade, Grader
from grading.samples import Sample
from grading.spec import Spec
from grading.templates import Template, optional_template, render_or_response

_WORDS = re.compile(r"\S+")
_TOKENS = re.compile(r"\w+|[^\w\s]")
COUNTERS: dict[str, Callable[[str], int]] = {
    "characters": len,
    "words": lambda text: len(_WORDS.findall(text)),
    "tokens": lambda text: len(_TOKENS.findall(text)),
}


class Length(Grader):
    """1 inside the band, falling linearly to 0 outside it."""

    type_name = "length"

    def __init__(
        self,
        name: str,
        *,
        input_template: Template | None,
        unit: str,
        minimum: float,
        maximum: float | None,
        falloff: float,
    ) -> None:
        super().__init__(name)
        self.input = input_template
        self.count = COUNTERS[unit]
        self.minimum = minimum
        self.maximum = maximum
        self.falloff = falloff

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> Length:
        """Build from the definition."""
        minimum = spec.number("min", 0, minimum=0, integer=True)
        maximum = spec.number("max", None, minimum=1, integer=True)
        if maximum is not None and maximum < minimum:
            raise spec.error("max", f"must be at least min ({minimum}), got {maximum}")
        if maximum is None and minimum == 0:
            raise spec.error("min", "give min, max or both")
        return cls(
            name,
            input_template=optional_template(spec, "input"),
            unit=spec.choice("unit", tuple(COUNTERS), "tokens"),
            minimum=minimum,
            maximum=maximum,
            falloff=spec.number("falloff", 0.0, minimum=0),
        )

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample."""
        size = self.count(render_or_response(self.input, sample))
        if size < self.minimum:
            distance = self.minimum - size
        elif self.maximum is not None and size > self.maximum:
            distance = size - self.maximum
        else:
            return Grade.of(1.0)
        if self.falloff <= 0:
            return Grade.of(0.0)
        return Grade.of(max(0.0, 1.0 - distance / self.falloff))
