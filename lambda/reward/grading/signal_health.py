"""Training-signal health of one batch: is the reward still carrying a learning signal, and
is the policy gaming the grader? Published as EMF metrics in ``BedrockRft/Grader``.

Definitions (docs/observability.md repeats them for readers of the dashboard):

* A **prompt group** is the set of rollouts in the batch that answer the same prompt (same
  prompt messages and same dataset fields). Bedrock does not document whether all rollouts
  of one prompt (``trainingSamplePerPrompt``) arrive in one invocation (reference §2, §9.5:
  batch size is [open]), so groups are formed **within each batch**; a prompt whose
  rollouts are split across invocations counts once per batch with the part it got there.
  Only groups of two or more rollouts count (one reward has no variance). ``PromptGroups``
  says how many there were: 0 in every batch means Bedrock splits groups and the two
  group metrics are not published.
* ``ZeroVarianceShare``: the share of those groups whose rewards are all equal (within
  1e-9). Such a group gives a group-relative (GRPO) update nothing to learn from.
* ``RewardStd``: the population standard deviation of the rewards within each group,
  averaged over the groups.
* ``UnparsedShare``: the share of responses in which no answer was found at all (see
  :func:`unparsed`).
* ``RepetitionShare``: the share of degenerate responses: the last ``REPETITION_SLICE``
  characters, encoded as UTF-8 and at least ``REPETITION_MIN_BYTES`` long, shrink by a factor
  of ``REPETITION_RATIO`` or more under zlib (level 1). Prose and worked solutions compress
  2-3x; a response looping on a phrase or a block compresses 6-15x. Bounded work per
  response whatever its length.
* ``ResponseChars``: the response lengths in characters, as 21 values per batch: the batch's
  0th, 5th, ..., 100th percentiles (nearest rank). The dashboard's p50 and p95 of a period
  are read from these points (every batch weighs the same); a fixed count keeps the cost of
  a batch of 1,000 rollouts the same as one of 10.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from grading.definition import Definition
from grading.metrics import emf_provider
from grading.samples import Sample

REPETITION_SLICE: Final = 4096
REPETITION_MIN_BYTES: Final = 512
REPETITION_RATIO: Final = 4.0
_EQUAL: Final = 1e-9
# Math markup that holds a non-numeric answer (\pi, x = y) even when there is no digit.
_MATH_MARKS: Final = ("\\boxed", "$", "\\(", "\\[")
_DIGIT: Final = re.compile(r"[0-9]")
# The answer rules' reasons for finding no value at all (hedge and conflict are answers).
_NOTHING_FOUND: Final = frozenset({"empty", "no_number"})


@dataclass(slots=True)
class Health:
    """The signal-health figures of one batch (``None``: not defined for this batch)."""

    responses: int = 0
    prompt_groups: int = 0
    zero_variance_share: float | None = None
    reward_std: float | None = None
    unparsed_share: float | None = None
    repetition_share: float | None = None
    response_chars: list[int] = field(default_factory=list)
    # Per response (aligned with the batch's samples): for the stored rollout records.
    unparsed: list[bool] = field(default_factory=list)
    repetitive: list[bool] = field(default_factory=list)


def repetitive(text: str) -> bool:
    """Whether ``text`` is degenerate by the compression measure (module docstring)."""
    if len(text) * 4 < REPETITION_MIN_BYTES:  # fewer bytes than the minimum, whatever the text
        return False
    if len(text) < REPETITION_MIN_BYTES and text.isascii():  # one byte a character: too short
        return False
    data = text[-REPETITION_SLICE:].encode("utf-8", "replace")
    if len(data) < REPETITION_MIN_BYTES:
        return False
    return len(data) >= REPETITION_RATIO * len(zlib.compress(data, 1))


def _answer_kind(definition: Definition) -> str:
    """Which answer the definition looks for: ``math`` (a math_answer grader anywhere),
    ``json`` (a json_schema grader), else ``text`` (any non-blank response is an answer)."""
    kinds = {grader.type_name for grader in definition.graders()}
    if "math_answer" in kinds:
        return "math"
    if "json_schema" in kinds:
        return "json"
    return "text"


def unparsed(sample: Sample, kind: str) -> bool:
    """Whether no answer at all was found in the response.

    Every kind: a blank response. ``math``: also a response in which the answer rules of
    :mod:`grading.answers` find neither a marked answer nor any number, and that holds no math
    markup (``\\boxed``, ``$``, ``\\(``, ``\\[``). ``json``: also a response that is not a JSON
    document (bare or in one code fence). A wrong or hedged answer is an answer: it is not
    counted here.
    """
    text = sample.output_text
    if not text or text.isspace():
        return True
    if kind == "math":
        if _DIGIT.search(text) is not None and "<<" not in text:
            return False  # a number the rules read (only calculator notes <<...>> are not)
        from grading.answers import candidate

        value, reason = candidate(text)
        return (
            value is None
            and reason in _NOTHING_FOUND
            and not any(mark in text for mark in _MATH_MARKS)
        )
    if kind == "json":
        return sample.output_json is None
    return False


def group_key(sample: Sample) -> tuple[object, ...]:
    """What makes two rollouts answers to the same prompt: its messages and dataset fields.

    Text messages are taken as (role, content) pairs (the common case: hashed, not copied);
    anything else is JSON. The dataset fields of one record reach every rollout of its prompt
    in the same order, so their ``repr`` tells them apart without sorting."""
    parts: list[object] = []
    for message in sample.prompt_messages:
        if type(message) is dict and type(content := message.get("content")) is str:
            parts.append((message.get("role"), content))
        else:
            parts.append(json.dumps(message, sort_keys=True, default=str))
    parts.append(repr(sample.item))
    return tuple(parts)


def measure(
    samples: Sequence[Sample | None], scores: Sequence[float], definition: Definition
) -> Health:
    """The batch's health; ``samples`` and ``scores`` are aligned with the batch (``None`` for
    a rollout that could not be parsed: it has no response and joins no group)."""
    health = Health()
    kind = _answer_kind(definition)
    groups: dict[tuple[object, ...], list[float]] = {}
    for sample, score in zip(samples, scores, strict=True):
        if sample is None:
            health.unparsed.append(False)
            health.repetitive.append(False)
            continue
        text = sample.output_text
        health.response_chars.append(len(text))
        health.unparsed.append(unparsed(sample, kind))
        health.repetitive.append(repetitive(text))
        groups.setdefault(group_key(sample), []).append(score)
    health.responses = len(health.response_chars)
    if health.responses:
        health.unparsed_share = sum(health.unparsed) / health.responses
        health.repetition_share = sum(health.repetitive) / health.responses
    scored = [rewards for rewards in groups.values() if len(rewards) >= 2]
    health.prompt_groups = len(scored)
    if scored:
        flat = sum(1 for rewards in scored if max(rewards) - min(rewards) <= _EQUAL)
        health.zero_variance_share = flat / len(scored)
        health.reward_std = sum(_std(rewards) for rewards in scored) / len(scored)
    return health


def _std(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((value - mean) ** 2 for value in values) / len(values))


def publish_health(
    health: Health,
    *,
    environment: str,
    grader: str,
    samples_written: int | None = None,
    write_errors: int | None = None,
) -> None:
    """Print the batch's health (and, when sampling is on, the rollout-sample counts) as one
    EMF record, plus the response lengths (Powertools flushes every 100 values)."""
    dimensions = {"Environment": environment or "unknown", "Grader": grader}
    main = emf_provider(dimensions)
    main.add_metric(name="PromptGroups", unit="Count", value=health.prompt_groups)
    figures = {
        "ZeroVarianceShare": health.zero_variance_share,
        "RewardStd": health.reward_std,
        "UnparsedShare": health.unparsed_share,
        "RepetitionShare": health.repetition_share,
    }
    for name, value in figures.items():
        if value is not None:
            main.add_metric(name=name, unit="None", value=value)
    if samples_written is not None:
        main.add_metric(name="RolloutSamplesWritten", unit="Count", value=samples_written)
    if write_errors is not None:
        main.add_metric(name="RolloutSampleWriteErrors", unit="Count", value=write_errors)
    main.flush_metrics()
    if health.response_chars:
        lengths = emf_provider(dimensions)
        for chars in percentiles(health.response_chars):
            lengths.add_metric(name="ResponseChars", unit="Count", value=chars)
        lengths.flush_metrics()


def percentiles(values: Sequence[int], step: int = 5) -> list[int]:
    """The 0th, ``step``-th, ..., 100th percentiles of ``values`` (nearest rank)."""
    ordered = sorted(values)
    last = len(ordered) - 1
    return [ordered[round(last * share / 100)] for share in range(0, 101, step)]


def scores_of(outputs: Sequence[dict[str, Any]]) -> list[float]:
    """The reward of each output of the batch, in order."""
    return [float(output["aggregate_reward_score"]) for output in outputs]
