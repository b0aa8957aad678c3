"""``text_similarity`` with ``"evaluation_metric": "cosine"``: cosine similarity of the input's
and the reference's embeddings.

Example::

    {"type": "text_similarity", "name": "meaning", "evaluation_metric": "cosine",
     "model": "amazon.titan-embed-text-v2:0", "input": "{{ sample.output_text }}",
     "reference": "{{ item.reference_answer }}"}

OpenAI's grader has no ``model`` field (it picks its own embeddings model, undocumented);
here ``model`` is optional and defaults to :data:`DEFAULT_MODEL`, Amazon Titan Text
Embeddings V2, the Bedrock embeddings model whose request shape is used below. Identical texts
score 1.0 without a call. Bedrock's OpenAI-compatible endpoint serves no embeddings API (user guide,
endpoints): the model is called through ``bedrock-runtime`` ``InvokeModel`` with the Titan
Text Embeddings request body ``{"inputText": ...}`` and read from the response's
``embedding`` (user guide, Titan Embeddings G1/V2 parameters), signed with the function's own
credentials. With ``OPENAI_BASE_URL`` set, the embeddings API of that OpenAI-compatible
endpoint is used instead. Each distinct text of a batch is embedded once (rollouts of one
prompt share its reference). Calls share the judges' concurrency, retries and deadline
(``concurrency``, ``max_retries``, ``timeout_seconds``); a sample not embedded in time scores
``fallback_score`` (default 0) with ``judge_timeout``. A negative cosine earns 0.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from grading.base import JUDGE_ERROR, JUDGE_TIMEOUT, Batch, Grade, Grader
from grading.errors import SampleError
from grading.graders.text_similarity import with_threshold
from grading.remote import (
    Endpoint,
    OpenAIEndpoint,
    Outcome,
    Policy,
    ReplyError,
    log_failures,
    run_calls,
)
from grading.runtime_endpoint import RuntimeEndpoint
from grading.samples import Sample
from grading.spec import Spec
from grading.templates import Template, optional_template, render_or_response

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from openai import OpenAI

# The model when the definition names none (stacks/reward.py grants InvokeModel on it then).
DEFAULT_MODEL = "amazon.titan-embed-text-v2:0"


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
        self.runtime = RuntimeEndpoint(
            timeout_seconds=policy.timeout_seconds, concurrency=policy.concurrency
        )
        self.openai = OpenAIEndpoint(model)

    @property
    def remote(self) -> bool:
        """Embeddings come from a model endpoint."""
        return True

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> CosineSimilarity:
        """Build from the definition (``evaluation_metric`` already read)."""
        return cls(
            name,
            model=spec.string("model", DEFAULT_MODEL),
            input_template=optional_template(spec, "input"),
            reference=Template(spec.string("reference", empty=True), spec.at("reference")),
            policy=Policy.from_spec(spec),
            fallback=spec.number("fallback_score", 0.0, minimum=0, maximum=1),
            pass_threshold=spec.number("pass_threshold", None, minimum=0, maximum=1),
        )

    def _embed_runtime(self, client: BaseClient, text: str, timeout: float) -> list[float]:
        """One text's embedding from ``bedrock-runtime`` (the read timeout is the client's)."""
        response = client.invoke_model(
            modelId=self.model,
            body=json.dumps({"inputText": text}).encode(),
            contentType="application/json",
            accept="application/json",
        )
        try:
            payload = json.loads(response["body"].read())
        except (ValueError, KeyError) as err:
            raise ReplyError("the embeddings reply is not JSON") from err
        vector = payload.get("embedding") if isinstance(payload, dict) else None
        return _vector(vector)

    def _embed_openai(self, client: OpenAI, text: str, timeout: float) -> list[float]:
        """One text's embedding from an OpenAI-compatible embeddings API."""
        response = client.embeddings.create(model=self.model, input=text, timeout=timeout)
        if len(response.data) != 1:
            raise ReplyError(f"expected 1 embedding, got {len(response.data)}")
        return _vector(response.data[0].embedding)

    def _embed_all(self, texts: list[str], batch: Batch) -> list[Outcome[list[float]]]:
        if os.environ.get("OPENAI_BASE_URL"):
            endpoint: Endpoint[Any] = self.openai
            return run_calls(texts, self._embed_openai, self.policy, batch, endpoint)
        return run_calls(texts, self._embed_runtime, self.policy, batch, self.runtime)

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample (through :meth:`grade_batch`)."""
        return self.grade_batch([sample], Batch())[0]

    def grade_batch(self, samples: Sequence[Sample], batch: Batch) -> list[Grade]:
        """Embed every distinct text of the batch concurrently, then compare the pairs."""
        grades: list[Grade | None] = [None] * len(samples)
        pairs: dict[int, tuple[str, str]] = {}
        for index, sample in enumerate(samples):
            try:
                pair = (render_or_response(self.input, sample), self.reference.render(sample))
            except SampleError as err:
                grades[index] = Grade.failed(f"{self.name}: {err}")
                continue
            if not pair[0].strip() or not pair[1].strip():
                grades[index] = Grade.of(0.0)  # nothing to compare: no similarity
                continue
            if pair[0] == pair[1]:  # the same text: the same embedding, exactly 1
                grades[index] = with_threshold(self.name, 1.0, self.pass_threshold)
                continue
            pairs[index] = pair
        texts = list(dict.fromkeys(text for pair in pairs.values() for text in pair))
        embedded = dict(zip(texts, self._embed_all(texts, batch), strict=True))
        outcomes = [_similarity(embedded[a], embedded[b]) for a, b in pairs.values()]
        log_failures(self.name, [samples[i].id for i in pairs], outcomes)
        for index, outcome in zip(pairs, outcomes, strict=True):
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


def _vector(value: Any) -> list[float]:
    """An embedding as floats; :class:`ReplyError` for anything else."""
    if not isinstance(value, list) or not value:
        raise ReplyError("the reply has no embedding")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise ReplyError("the embedding is not a list of numbers")
    return [float(x) for x in value]


def _similarity(first: Outcome[list[float]], second: Outcome[list[float]]) -> Outcome[float]:
    """The cosine of two embeddings, or the worse failure of the two calls."""
    for outcome in (first, second):
        if outcome.status == "timeout":
            return Outcome("timeout", reason=outcome.reason)
    for outcome in (first, second):
        if outcome.status == "error":
            return Outcome("error", reason=outcome.reason)
    if first.value is None or second.value is None:
        return Outcome("error", reason="no embedding")
    try:
        return Outcome("ok", cosine(first.value, second.value))
    except ReplyError as err:
        return Outcome("error", reason=str(err))
