"""``string_check`` (OpenAI-compatible): compare the rendered input with the reference.

Example::

    {"type": "string_check", "name": "label", "input": "{{ sample.output_text }}",
     "reference": "{{ item.reference_answer }}", "operation": "eq"}

Operations: ``eq`` (equal), ``ne`` (not equal), ``like`` (the input contains the reference),
``ilike`` (the same, ignoring case). Strings are compared as they render, without trimming,
as OpenAI's grader does. An empty reference for ``like``/``ilike`` would reward every
response, so it fails the sample instead.
"""

from __future__ import annotations

from grading.base import FAIL, PASS, Grade, Grader
from grading.errors import SampleError
from grading.samples import Sample
from grading.spec import Spec
from grading.templates import Template, optional_template, render_or_response

OPERATIONS = ("eq", "ne", "like", "ilike")


class StringCheck(Grader):
    """1 if the operation holds, else 0."""

    type_name = "string_check"

    def __init__(
        self, name: str, *, input_template: Template | None, reference: Template, operation: str
    ) -> None:
        super().__init__(name)
        self.input = input_template
        self.reference = reference
        self.operation = operation

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> StringCheck:
        """Build from the definition."""
        return cls(
            name,
            input_template=optional_template(spec, "input"),
            reference=Template(spec.string("reference", empty=True), spec.at("reference")),
            operation=spec.choice("operation", OPERATIONS),
        )

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample."""
        text = render_or_response(self.input, sample)
        reference = self.reference.render(sample)
        if self.operation == "eq":
            return PASS if text == reference else FAIL
        if self.operation == "ne":
            return PASS if text != reference else FAIL
        if not reference:
            raise SampleError(f"{self.operation}: the reference rendered empty")
        if self.operation == "like":
            return PASS if reference in text else FAIL
        return PASS if reference.casefold() in text.casefold() else FAIL
