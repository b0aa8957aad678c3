"""``json_schema``: the response parses as JSON and validates against a JSON Schema.

Example::

    {"type": "json_schema", "name": "invoice",
     "schema": {"type": "object", "required": ["total"],
                "properties": {"total": {"type": "number"}}}}

The response may be bare JSON or a single Markdown code fence around it. The schema is checked
when the definition loads (``jsonschema``; its ``$schema`` picks the draft, 2020-12 by default).
Reward 1 when the document validates, else 0. With ``"partial": true`` a document that parses
but does not validate earns ``partial_credit`` (default 0) instead, to reward well-formed JSON
early in training.
"""

from __future__ import annotations

from typing import Any

from grading.base import FAIL, PASS, Grade, Grader
from grading.errors import DefinitionError
from grading.samples import Sample, parse_json_output
from grading.spec import Spec, child_path
from grading.templates import Template, optional_template


def schema_validator(schema: Any, path: str) -> Any:
    """A ``jsonschema`` validator for ``schema``; an invalid schema is a DefinitionError at the
    JSON path of its problem."""
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    if not isinstance(schema, dict | bool):
        raise DefinitionError(path, "must be a JSON Schema (an object)")
    validator_class = validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except SchemaError as err:
        where = path
        for part in err.absolute_path:
            where = child_path(where, part)
        raise DefinitionError(where, f"invalid JSON Schema: {err.message}") from None
    return validator_class(schema)


class JsonSchema(Grader):
    """1 if the output is JSON that validates, else 0 (or the partial credit)."""

    type_name = "json_schema"

    def __init__(
        self, name: str, *, input_template: Template | None, validator: Any, partial: float
    ) -> None:
        super().__init__(name)
        self.input = input_template
        self.validator = validator
        self.partial = partial

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> JsonSchema:
        """Build from the definition."""
        partial = spec.number("partial_credit", 0.0, minimum=0, maximum=1)
        return cls(
            name,
            input_template=optional_template(spec, "input"),
            validator=schema_validator(spec.raw("schema"), spec.at("schema")),
            partial=partial,
        )

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample."""
        if self.input is None:
            document = sample.output_json
        else:
            document = parse_json_output(self.input.render(sample))
        if document is None:
            return FAIL  # not JSON (JSON null is not a document worth a reward either)
        if self.validator.is_valid(document):
            return PASS
        return Grade.of(self.partial)
