"""``text_similarity`` with ``"evaluation_metric": "cosine"``: cosine similarity of the input's
and the reference's embeddings, from an OpenAI-compatible embeddings endpoint.

Example::

    {"type": "text_similarity", "name": "meaning", "evaluation_metric": "cosine",
     "model": "amazon.titan-embed-text-v2:0", "input": "{{ sample.output_text }}",
     "reference": "{{ item.reference_answer }}"}

OpenAI's grader has no ``model`` field (it picks its own embeddings model); here it is
required. Whether Bedrock's OpenAI-compatible endpoint serves embeddings, and which models, is
not documented [open]: point ``OPENAI_BASE_URL`` at an endpoint that does. Calls share the
judges' concurrency, retries and deadline (``concurrency``, ``max_retries``,
``timeout_seconds``); a sample not embedded in time scores ``fallback_score`` (default 0) with
``judge_timeout``. A negative cosine earns 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from grading.base import JUDGE_ERROR, JUDGE_TIMEOUT, Batch, Grade, Grader
from grading.errors import SampleError
from grading.graders.text_similarity import with_threshold
from grading.remote import Outcome, Policy, ReplyError, log_failures, run_calls
from grading.samples import Sample
from grading.spec import Spec
from grading.templates import Template, optional_template, render_or_response

if TYPE_CHECKING:
    from openai import OpenAI


def cosine(first: Sequence[float], second: Sequence[float]) -> float:
    """Cosine similarity of two vectors; :class:`ReplyError` for unusable ones."""
    if len(first) != len(second) or not first:
        raise ReplyError("the embeddings differ in length or are empty")
    dot = sum(a * b for a, b in zip(first, second, strict=True))
    norms = math.sqrt(sum(a * a for a in first)) * math.sqrt(sum(b * b for b in second))
    if norms == 0 or not math.isfinite(dot / norms):
        raise ReplyError("an embedding has no direction")
    return max(-1.0, min(1.0, dot / norms))


class CosineSimilarity(Grader):
    """Cosine similarity of embeddings; the reward is the similarity, 0 if negative."""

    type_name = "text_similarity"

    def __init__(
        self,
        name: str,
        *,
        model: str,
        input_template: Template | None,
        reference: Template,
        policy: Policy,
        fallback: float,
        pass_threshold: float | None,
    ) -> None:
        super().__init__(name)
        self.model = model
        self.input = input_template
        self.reference = reference
        self.policy = policy
        self.fallback = fallback
        self.pass_threshold = pass_threshold

    @property
    def remote(self) -> bool:
        """Embeddings come from a model endpoint."""
        return True

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> CosineSimilarity:
        """Build from the definition (``evaluation_metric`` already read)."""
        return cls(
            name,
            model=spec.string("model"),
            input_template=optional_template(spec, "input"),
            reference=Template(spec.string("reference", empty=True), spec.at("reference")),
            policy=Policy.from_spec(spec),
            fallback=spec.number("fallback_score", 0.0, minimum=0, maximum=1),
            pass_threshold=spec.number("pass_threshold", None, minimum=0, maximum=1),
        )

    def _call(self, client: OpenAI, texts: tuple[str, str], timeout: float) -> float:
        response = client.embeddings.create(model=self.model, input=list(texts), timeout=timeout)
        vectors = sorted(response.data, key=lambda item: item.index)
        if len(vectors) != 2:
            raise ReplyError(f"expected 2 embeddings, got {len(vectors)}")
        return cosine(vectors[0].embedding, vectors[1].embedding)

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample (through :meth:`grade_batch`)."""
        return self.grade_batch([sample], Batch())[0]

    def grade_batch(self, samples: Sequence[Sample], batch: Batch) -> list[Grade]:
        """Embed every sample's pair concurrently."""
        grades: list[Grade | None] = [None] * len(samples)
        pairs: list[tuple[str, str]] = []
        positions: list[int] = []
        for index, sample in enumerate(samples):
            try:
                pair = (render_or_response(self.input, sample), self.reference.render(sample))
            except SampleError as err:
                grades[index] = Grade.failed(f"{self.name}: {err}")
                continue
            if not pair[0].strip() or not pair[1].strip():
                grades[index] = Grade.of(0.0)  # nothing to compare: no similarity
                continue
            pairs.append(pair)
            positions.append(index)
        outcomes = run_calls(pairs, self._call, self.policy, batch)
        log_failures(self.name, [samples[i].id for i in positions], outcomes)
        for index, outcome in zip(positions, outcomes, strict=True):
            grades[index] = self._grade_of(outcome, batch)
        return [grade for grade in grades if grade is not None]

    def _grade_of(self, outcome: Outcome[float], batch: Batch) -> Grade:
        if outcome.status == "ok" and outcome.value is not None:
            return with_threshold(self.name, outcome.value, self.pass_threshold)
        if outcome.status == "timeout":
            batch.stats.judge_timeout()
            flag = JUDGE_TIMEOUT
        else:
            batch.stats.judge_error()
            flag = JUDGE_ERROR
        return Grade(raw=self.fallback, score=self.fallback, flags=frozenset({flag}))
