"""``multi`` (OpenAI-compatible): named sub-graders combined by a formula.

Example::

    {"type": "multi", "name": "answer-and-format",
     "graders": {
       "accuracy": {"type": "math_answer"},
       "format": {"type": "regex", "pattern": "^#### -?[0-9]+$", "flags": ["m"]}},
     "calculate_output": "0.8 * accuracy + 0.2 * format"}

Each sub-grader's value (on its own scale: a 0-10 judge gives 0-10) is a name in the formula
(see :mod:`grading.formula`) and a Metric entry of the sample's result. The reward is the
formula's value limited to [0, 1]. ``graders`` may also be one grader object (the openai
SDK's type for it): the formula then names that grader by its ``name``. If any sub-grader
cannot grade a sample, the sample scores 0 with ``grader_error``; a judge timeout uses the
judge's fallback score and is flagged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from grading.base import Batch, Grade, Grader, clamp01
from grading.errors import DefinitionError, SampleError
from grading.formula import Formula
from grading.registry import build_grader
from grading.samples import Sample
from grading.spec import Spec, child_path

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Multi(Grader):
    """A formula over sub-graders."""

    type_name = "multi"

    def __init__(self, name: str, *, graders: dict[str, Grader], formula: Formula) -> None:
        super().__init__(name)
        self.graders = graders
        self.formula = formula

    @property
    def remote(self) -> bool:
        """A multi calls a model endpoint when one of its graders does."""
        return any(grader.remote for grader in self.graders.values())

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> Multi:
        """Build from the definition."""
        graders_spec = spec.child("graders")
        if not graders_spec.data:
            raise spec.error("graders", "must name at least one grader")
        if isinstance(graders_spec.data.get("type"), str):
            graders = _single(graders_spec)
        else:
            graders = {}
            for key in graders_spec.data:
                where = child_path(graders_spec.path, key)
                if not _IDENTIFIER.match(key):
                    raise DefinitionError(
                        where, "a grader's name must be an identifier (a formula uses it)"
                    )
                graders[key] = build_grader(Spec(graders_spec.raw(key), where), key)
            graders_spec.finish()
        formula = Formula(
            spec.string("calculate_output"), frozenset(graders), spec.at("calculate_output")
        )
        return cls(name, graders=graders, formula=formula)

    def children(self) -> Sequence[Grader]:
        """The sub-graders."""
        return list(self.graders.values())

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample (through :meth:`grade_batch`, which the runner uses)."""
        return self.grade_batch([sample], Batch())[0]

    def grade_batch(self, samples: Sequence[Sample], batch: Batch) -> list[Grade]:
        """Each sub-grader grades the whole batch (judges concurrently), then the formula."""
        columns = {key: grader.grade_batch(samples, batch) for key, grader in self.graders.items()}
        results = []
        for index in range(len(samples)):
            row = {key: column[index] for key, column in columns.items()}
            results.append(self._combine(row))
        return results

    def _combine(self, row: dict[str, Grade]) -> Grade:
        details: list[tuple[str, float]] = []
        flags: set[str] = set()
        for key, grade in row.items():
            if grade.error is not None:
                return Grade.failed(grade.error)
            details.append((key, grade.raw))
            details.extend(grade.details)
            flags.update(grade.flags)
        try:
            value = self.formula.evaluate({key: grade.raw for key, grade in row.items()})
        except SampleError as err:
            return Grade.failed(f"{self.name}: {err}")
        return Grade(
            raw=value, score=clamp01(value), details=tuple(details), flags=frozenset(flags)
        )


def _single(spec: Spec) -> dict[str, Grader]:
    """``graders`` as one grader object (the openai SDK's ``MultiGrader.graders`` type): the
    formula names it by its ``name``."""
    name = spec.data.get("name")
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise spec.error(
            "name", "a single grader under graders needs an identifier name (the formula uses it)"
        )
    return {name: build_grader(spec, name)}
