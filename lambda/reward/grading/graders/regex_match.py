"""``regex``: a regular expression matches (or, with ``negate``, does not match) the input.

Example::

    {"type": "regex", "name": "final-line", "pattern": "^#### -?[0-9,]+$", "flags": ["m"]}

``mode`` is ``search`` (anywhere, the default) or ``fullmatch`` (the whole input). ``flags``:
``i`` (ignore case), ``m`` (``^``/``$`` at line ends), ``s`` (``.`` matches newlines), ``x``
(verbose). The pattern is compiled when the definition loads; it runs on model output, so keep
it free of nested quantifiers that backtrack badly.
"""

from __future__ import annotations

import re

from grading.base import FAIL, PASS, Grade, Grader
from grading.samples import Sample
from grading.spec import Spec
from grading.templates import Template, optional_template, render_or_response

FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


class RegexMatch(Grader):
    """1 if the pattern matches (does not match, with ``negate``), else 0."""

    type_name = "regex"

    def __init__(
        self,
        name: str,
        *,
        input_template: Template | None,
        pattern: re.Pattern[str],
        fullmatch: bool,
        negate: bool,
    ) -> None:
        super().__init__(name)
        self.input = input_template
        self.pattern = pattern
        self.fullmatch = fullmatch
        self.negate = negate

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> RegexMatch:
        """Build from the definition."""
        flags = 0
        for index, flag in enumerate(spec.strings("flags", [], min_items=0)):
            if flag not in FLAGS:
                raise spec.error("flags", f"[{index}] '{flag}' is not a flag; flags: i, m, s, x")
            flags |= FLAGS[flag]
        source = spec.string("pattern")
        try:
            pattern = re.compile(source, flags)
        except re.error as err:
            raise spec.error("pattern", f"invalid regular expression: {err}") from None
        return cls(
            name,
            input_template=optional_template(spec, "input"),
            pattern=pattern,
            fullmatch=spec.choice("mode", ("search", "fullmatch"), "search") == "fullmatch",
            negate=spec.boolean("negate", False),
        )

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample."""
        text = render_or_response(self.input, sample)
        found = self.pattern.fullmatch(text) if self.fullmatch else self.pattern.search(text)
        return PASS if (found is not None) != self.negate else FAIL
