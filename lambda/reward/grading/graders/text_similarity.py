"""``text_similarity`` (OpenAI-compatible): similarity of the rendered input to the reference.

Example::

    {"type": "text_similarity", "name": "summary", "input": "{{ sample.output_text }}",
     "reference": "{{ item.reference_answer }}", "evaluation_metric": "rouge_l",
     "pass_threshold": 0.5}

Metrics: ``fuzzy_match``, ``bleu``, ``gleu``, ``meteor``, ``rouge_1`` ... ``rouge_5``,
``rouge_l`` (see :mod:`grading.textmetrics`), and ``cosine`` of embeddings (needs ``model``,
an embeddings model called through ``bedrock-runtime``; see :mod:`grading.graders.embedding`).
The reward is the similarity itself; ``pass_threshold`` adds a ``<name>_passed`` metric (1 at
or above the threshold).
"""

from __future__ import annotations

import math

from grading.base import Grade, Grader
from grading.samples import Sample
from grading.spec import Spec
from grading.templates import Template, optional_template, render_or_response
from grading.textmetrics import METRICS, Metric

EVALUATION_METRICS = (*METRICS, "cosine")


class TextSimilarity(Grader):
    """The chosen metric between the input and the reference, in [0, 1]."""

    type_name = "text_similarity"

    def __init__(
        self,
        name: str,
        *,
        input_template: Template | None,
        reference: Template,
        metric: str,
        pass_threshold: float | None,
    ) -> None:
        super().__init__(name)
        self.input = input_template
        self.reference = reference
        self.metric_name = metric
        self.metric: Metric = METRICS[metric]
        self.pass_threshold = pass_threshold

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> Grader:
        """Build from the definition (``cosine`` builds an embedding grader)."""
        metric = spec.choice("evaluation_metric", EVALUATION_METRICS)
        if metric == "cosine":
            from grading.graders.embedding import CosineSimilarity

            return CosineSimilarity.from_spec(spec, name)
        return cls(
            name,
            input_template=optional_template(spec, "input"),
            reference=Template(spec.string("reference", empty=True), spec.at("reference")),
            metric=metric,
            pass_threshold=spec.number("pass_threshold", None, minimum=0, maximum=1),
        )

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample."""
        value = self.metric(render_or_response(self.input, sample), self.reference.render(sample))
        return with_threshold(self.name, value, self.pass_threshold)


def with_threshold(name: str, value: float, threshold: float | None) -> Grade:
    """A similarity grade, with a ``<name>_passed`` detail when a threshold is set."""
    if not math.isfinite(value):
        return Grade.failed(f"{name}: the similarity is not a finite number")
    grade = Grade.of(value)
    if threshold is None:
        return grade
    passed = 1.0 if value >= threshold else 0.0
    return Grade(raw=grade.raw, score=grade.score, details=((f"{name}_passed", passed),))
