"""``format``: the response has the required structure (tags and/or sections).

Example::

    {"type": "format", "name": "think-answer", "required_tags": ["think", "answer"],
     "only_tags": true}

- ``required_tags``: each ``<tag>...</tag>`` appears exactly once, with non-blank content.
- ``required_sections``: each heading appears at the start of a line (``"## Answer"``,
  ``"Answer:"``), once.
- ``in_order`` (default true): they appear in the listed order.
- ``only_tags`` (default false): nothing but blank space outside the required tags.
- ``scoring``: ``all`` (default: 1 when every requirement holds, else 0) or ``fraction`` (the
  share of requirements that hold).
"""

from __future__ import annotations

import re

from grading.base import Grade, Grader
from grading.errors import DefinitionError
from grading.samples import Sample
from grading.spec import Spec
from grading.templates import Template, optional_template, render_or_response

_TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


class FormatCheck(Grader):
    """The share (or all-or-nothing) of structural requirements a response meets."""

    type_name = "format"

    def __init__(
        self,
        name: str,
        *,
        input_template: Template | None,
        tags: list[str],
        sections: list[str],
        in_order: bool,
        only_tags: bool,
        fraction: bool,
    ) -> None:
        super().__init__(name)
        self.input = input_template
        self.tags = [
            re.compile(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", re.DOTALL) for tag in tags
        ]
        self.sections = [re.compile(rf"^[ \t]*{re.escape(heading)}", re.M) for heading in sections]
        self.in_order = in_order
        self.only_tags = only_tags
        self.fraction = fraction

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> FormatCheck:
        """Build from the definition."""
        tags = spec.strings("required_tags", [], min_items=0)
        for index, tag in enumerate(tags):
            if not _TAG_NAME.match(tag):
                raise DefinitionError(
                    f"{spec.at('required_tags')}[{index}]", f"'{tag}' is not a tag name"
                )
        sections = spec.strings("required_sections", [], min_items=0)
        if not tags and not sections:
            raise spec.error("required_tags", "give required_tags, required_sections or both")
        only_tags = spec.boolean("only_tags", False)
        if only_tags and not tags:
            raise spec.error("only_tags", "needs required_tags")
        return cls(
            name,
            input_template=optional_template(spec, "input"),
            tags=tags,
            sections=sections,
            in_order=spec.boolean("in_order", True),
            only_tags=only_tags,
            fraction=spec.choice("scoring", ("all", "fraction"), "all") == "fraction",
        )

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample."""
        text = render_or_response(self.input, sample)
        checks: list[bool] = []
        positions: list[int] = []
        outside = text
        for pattern in self.tags:
            found = pattern.findall(text)
            checks.append(len(found) == 1 and bool(found[0].strip()))
            match = pattern.search(text)
            positions.append(match.start() if match else -1)
            outside = pattern.sub("", outside)
        for pattern in self.sections:
            found = pattern.findall(text)
            checks.append(len(found) == 1)
            match = pattern.search(text)
            positions.append(match.start() if match else -1)
        if self.in_order and len(positions) > 1:
            present = [position for position in positions if position >= 0]
            checks.append(len(present) == len(positions) and present == sorted(present))
        if self.only_tags:
            checks.append(not outside.strip())
        if self.fraction:
            return Grade.of(sum(checks) / len(checks))
        return Grade.of(1.0 if all(checks) else 0.0)
