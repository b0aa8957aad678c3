"""Grader checks: can this grader score the task, and can it be gamed?

For every record the reward handler grades synthetic responses, through the real handler:

- ``reference``: the reference answer itself (should score high),
- ``empty``: an empty response,
- ``noise``: random words,
- ``copy_prompt``: the user's own prompt copied back,
- ``other_reference``: another record's (different) reference answer,
- ``constant``: one answer for every record (the most common reference answer),
- ``spray``: a list of candidate answers (other records' answers, the right one last),

the last six should all score low. Before the probes, every reference answer is checked: a
grader that cannot read one (``math_answer`` and LaTeX it does not understand) is an error
with the record's line. The reference answer is rendered the way an answer would
be written; which rendering (bare, ``#### N``, ``\\boxed{N}``, ...) the grader expects is
found on the first records, then used for the reference and other-reference responses alike.

Errors (the grader would be gamed, or teaches nothing): an empty or noise response scores
>= 0.5 on any record; the reference scores below noise on any record; the reference scores 0
everywhere; a copied prompt or a wrong answer scores >= 0.5 on average.
"""

from __future__ import annotations

import json
import random
import statistics
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from preflight.dataset import Record
from preflight.findings import Findings, plural
from preflight.reward import GraderContractError, RewardHandler
from preflight.tokens import content_text

GAMING_THRESHOLD = 0.5
# Records used to find the rendering of the reference answer the grader expects.
CALIBRATION_RECORDS = 20
# A grader that calls a model (score_model, label_model) costs money per response: unless told
# otherwise, its checks stop at this many records.
JUDGED_RECORDS = 100

PROBES: dict[str, tuple[str, str]] = {
    # name: (title, expected)
    "reference": ("reference answer", "high"),
    "empty": ("empty response", "low"),
    "noise": ("random noise", "low"),
    "copy_prompt": ("prompt copied back", "low"),
    "other_reference": ("another record's answer", "low"),
    "constant": ("one answer for every record", "low"),
    "spray": ("a list of candidate answers", "low"),
}
# Candidate answers in a spray probe (the right one among them): more than the spray limits
# of math_answer allow in a row (max_number_run, 8).
SPRAYED_ANSWERS = 12

# Ways a correct answer may be written; str.format fields: answer (text), json (reference).
RENDERINGS: dict[str, str] = {
    "bare": "{answer}",
    "hashes": "#### {answer}",
    "sentence": "The final answer is {answer}.",
    "boxed": "\\boxed{{{answer}}}",
    "labelled": "Answer: {answer}",
    "json": "{json}",
}

# Keys that usually hold the answer inside a reference_answer object.
_ANSWER_KEYS = ("final_answer", "answer", "text", "label", "value", "output", "expected")


def answer_text(reference: Any) -> str:
    """The answer inside a reference_answer of any JSON shape, as text."""
    if isinstance(reference, str):
        return reference
    if isinstance(reference, dict):
        for key in _ANSWER_KEYS:
            value = reference.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                return str(value)
        scalars = [
            v
            for v in reference.values()
            if isinstance(v, str | int | float) and not isinstance(v, bool)
        ]
        if len(scalars) == 1:
            return str(scalars[0])
    return json.dumps(reference, ensure_ascii=False)


def render(reference: Any, rendering: str) -> str:
    """The reference answer written in one of :data:`RENDERINGS`."""
    return RENDERINGS[rendering].format(
        answer=answer_text(reference), json=json.dumps(reference, ensure_ascii=False)
    )


def _noise_words(count: int = 4096) -> tuple[str, ...]:
    """A fixed pool of random words (letters, a tenth with punctuation, no digits)."""
    rng = random.Random("preflight-noise-words")  # noqa: S311 (not for security)
    return tuple(
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9)))
        + (rng.choice(",.;:!?") if rng.random() < 0.1 else "")
        for _ in range(count)
    )


_NOISE_WORDS = _noise_words()


def noise(index: int) -> str:
    """Deterministic random words (letters and punctuation, no digits) for record ``index``.

    Drawn from a fixed pool of random words in one call per record: the probe runs on every
    record, and building each word from single letters made it the slowest part of preflight.
    """
    rng = random.Random(index)  # noqa: S311 (not for security)
    return " ".join(rng.choices(_NOISE_WORDS, k=rng.randint(15, 50)))


def prompt_text(record: Record) -> str:
    """The user's turns of a prompt, as one text."""
    return "\n\n".join(
        content_text(m.get("content")) for m in record.messages if m.get("role") == "user"
    )


def rollout(record: Record, response: str, rollout_id: str) -> dict[str, Any]:
    """A rollout in the shape Bedrock sends the grader (bedrock-rft.md §2)."""
    return {
        "id": rollout_id,
        "messages": [*record.messages, {"role": "assistant", "content": response}],
        "metadata": {"reference_answer": record.reference_answer, **record.extra},
    }


def distribution(scores: Sequence[float]) -> dict[str, Any]:
    """Summary of rewards: count, mean, min, max, median, share >= 0.5, share > 0."""
    if not scores:
        return {"count": 0}
    return {
        "count": len(scores),
        "mean": round(statistics.fmean(scores), 4),
        "min": round(min(scores), 4),
        "median": round(statistics.median(scores), 4),
        "max": round(max(scores), 4),
        "share_at_least_half": round(sum(s >= GAMING_THRESHOLD for s in scores) / len(scores), 4),
        "share_nonzero": round(sum(s > 0 for s in scores) / len(scores), 4),
    }


@dataclass
class ProbeResult:
    """The rewards one kind of synthetic response earned (None: not applicable)."""

    name: str
    scores: list[float | None] = field(default_factory=list)

    @property
    def values(self) -> list[float]:
        """The rewards, without the records the probe did not apply to."""
        return [s for s in self.scores if s is not None]

    def to_dict(self) -> dict[str, Any]:
        """Title, expectation and reward distribution as plain JSON data."""
        title, expected = PROBES[self.name]
        return {"title": title, "expected": expected, **distribution(self.values)}


@dataclass
class GraderCheckResult:
    """What the grader checks measured."""

    grader: str
    records: int = 0
    rendering: str | None = None
    rendering_means: dict[str, float] = field(default_factory=dict)
    probes: dict[str, ProbeResult] = field(default_factory=dict)
    handler_metrics: dict[str, float] = field(default_factory=dict)
    invocations: int = 0
    completed: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON data."""
        return {
            "grader": self.grader,
            "records": self.records,
            "completed": self.completed,
            "reference_rendering": self.rendering,
            "reference_rendering_means": self.rendering_means,
            "probes": {name: probe.to_dict() for name, probe in self.probes.items()},
            "handler_invocations": self.invocations,
            "handler_metrics": self.handler_metrics,
        }


def _other_index(records: Sequence[Record], index: int) -> int | None:
    """A record, half the file away, whose answer differs from record ``index``'s."""
    count = len(records)
    own = answer_text(records[index].reference_answer).strip()
    start = index + max(1, count // 2)
    for step in range(min(count - 1, 25)):
        other = (start + step) % count
        if other != index and answer_text(records[other].reference_answer).strip() != own:
            return other
    return None


def _spray(records: Sequence[Record], index: int, rendering: str) -> str | None:
    """Other records' answers and then record ``index``'s, one per line, each rendered."""
    own = answer_text(records[index].reference_answer).strip()
    answers: dict[str, Any] = {}
    count = len(records)
    for step in range(1, min(count, 200)):
        other = records[(index + step * 7) % count].reference_answer
        text = answer_text(other).strip()
        if text != own:
            answers.setdefault(text, other)
        if len(answers) == SPRAYED_ANSWERS - 1:
            break
    if len(answers) < 2:
        return None
    rendered = [render(other, rendering) for other in answers.values()]
    return "\n".join([*rendered, render(records[index].reference_answer, rendering)])


def _constant(records: Sequence[Record]) -> Any:
    """The most common reference answer (the first of the most common), in one pass: the
    probe runs on every record, so anything per record here would be quadratic or worse."""
    first: dict[str, Any] = {}
    counts: Counter[str] = Counter()
    for record in records:
        text = answer_text(record.reference_answer).strip()
        counts[text] += 1
        first.setdefault(text, record.reference_answer)
    # most_common orders equal counts by first occurrence: the first of the most common.
    common, _ = counts.most_common(1)[0]
    return first[common]


def check_references(
    handler: RewardHandler, records: Sequence[Record], findings: Findings, dataset_name: str
) -> None:
    """An error for each record whose reference answer the grader cannot read (with its
    line): at training time such a record only ever scores 0."""
    for grader in handler.graders():
        problem_of = getattr(grader, "reference_problem", None)
        if problem_of is None:
            continue
        for record in records:
            item = {**record.extra, "reference_answer": record.reference_answer}
            problem = problem_of(item)
            if problem is not None:
                findings.error(
                    "reference-unreadable",
                    "the grader cannot read the reference answer",
                    f"{dataset_name} {record.label}: {grader.name}: {problem}",
                )


def _calibrate(handler: RewardHandler, records: Sequence[Record]) -> dict[str, float]:
    """Mean reward of each rendering of the reference, on the first records."""
    sample = records[:CALIBRATION_RECORDS]
    means: dict[str, float] = {}
    for name in RENDERINGS:
        rollouts = [
            rollout(r, render(r.reference_answer, name), f"calibrate-{name}-{i}")
            for i, r in enumerate(sample)
        ]
        means[name] = round(statistics.fmean(handler.scores(rollouts)), 4)
    return means


def run_grader_checks(
    handler: RewardHandler,
    records: Sequence[Record],
    findings: Findings,
    dataset_name: str,
    *,
    progress: Callable[[int], None] | None = None,
    judged_records: int | None = JUDGED_RECORDS,
) -> GraderCheckResult:
    """Grade the synthetic responses of every record through ``handler``; report problems.

    When the calibration shows that the grader calls a model (the handler's ``JudgeCalls``
    metric), only the first ``judged_records`` records are checked (None: all).
    """
    result = GraderCheckResult(grader=str(handler.grader), records=len(records))
    if not records:
        findings.error(
            "grader-no-records",
            "no records to grade",
            f"{handler.grader}: no valid record to run the grader checks on",
        )
        return result
    check_references(handler, records, findings, dataset_name)
    try:
        result.rendering_means = _calibrate(handler, records)
        # The first rendering with the best mean: dict order puts the plainest first.
        result.rendering = max(result.rendering_means, key=lambda k: result.rendering_means[k])
        judged = handler.output.metrics.get("JudgeCalls", 0) > 0
        if judged and judged_records is not None and len(records) > judged_records:
            records = records[:judged_records]
            result.records = len(records)
            result.notes.append(
                f"{handler.grader} calls a model: grader checks ran on the first "
                f"{judged_records} records only (--grader-records to choose)"
            )
        constant = render(_constant(records), result.rendering)
        responses: dict[str, list[str | None]] = {
            "reference": [render(r.reference_answer, result.rendering) for r in records],
            "empty": ["" for _ in records],
            "noise": [noise(i) for i in range(len(records))],
            "copy_prompt": [prompt_text(r) for r in records],
            "other_reference": [],
            # One answer for every record, computed once (once per record was cubic).
            "constant": [constant] * len(records),
            "spray": [_spray(records, i, result.rendering) for i in range(len(records))],
        }
        for i in range(len(records)):
            other = _other_index(records, i)
            responses["other_reference"].append(
                None if other is None else render(records[other].reference_answer, result.rendering)
            )
        for name, texts in responses.items():
            probe = result.probes[name] = ProbeResult(name)
            todo = [(i, t) for i, t in enumerate(texts) if t is not None]
            scores = handler.scores([rollout(records[i], text, f"{name}-{i}") for i, text in todo])
            probe.scores = [None] * len(records)
            for (i, _), score in zip(todo, scores, strict=True):
                probe.scores[i] = score
            if progress is not None:
                progress(len(todo))
    except GraderContractError as err:
        findings.error(
            "grader-contract", "the reward handler broke its contract", f"{handler.grader}: {err}"
        )
        return result
    finally:
        result.handler_metrics = {k: round(v, 4) for k, v in handler.output.metrics.items()}
        result.invocations = handler.invocations
    result.completed = True
    judge_grader(result, records, findings, dataset_name, str(handler.grader))
    _judge_health(handler, findings)
    errors = int(handler.output.metrics.get("GraderErrors", 0))
    if errors:
        reasons = "; ".join(
            f"{reason} ({count:,})" for reason, count in handler.output.problems.most_common(3)
        )
        findings.warning(
            "grader-errors",
            "the grader could not grade some responses",
            f"{handler.grader}: {plural(errors, 'response')} could not be graded (scored 0)"
            + (f"; reasons: {reasons}" if reasons else ""),
        )
    return result


def _judge_health(handler: RewardHandler, findings: Findings) -> None:
    """Warn about failed or timed-out model calls (the handler's Judge* metrics)."""
    metrics = handler.output.metrics
    calls = int(metrics.get("JudgeCalls", 0))
    for metric, what in (("JudgeErrors", "failed"), ("JudgeTimeouts", "timed out")):
        count = int(metrics.get(metric, 0))
        if count:
            findings.warning(
                "judge-" + metric.removeprefix("Judge").lower(),
                f"model-judge calls {what}",
                f"{handler.grader}: {plural(count, 'judgement')} {what} "
                f"({plural(calls, 'model call')}); those "
                "responses scored 0. Is the endpoint reachable (OPENAI_BASE_URL, AWS "
                "credentials)?",
            )


def judge_grader(
    result: GraderCheckResult,
    records: Sequence[Record],
    findings: Findings,
    dataset_name: str,
    grader: str,
) -> None:
    """Turn the measured rewards of ``result`` into findings (errors and warnings)."""
    probes = result.probes
    reference, noise_scores = probes["reference"].scores, probes["noise"].scores
    for i, record in enumerate(records):
        where = f"{dataset_name} {record.label}"
        empty = probes["empty"].scores[i]
        if empty is not None and empty >= GAMING_THRESHOLD:
            findings.error(
                "grader-rewards-empty",
                "grader rewards an empty response",
                f"{where}: an empty response scores {empty:.2f}",
            )
        nz = noise_scores[i]
        if nz is not None and nz >= GAMING_THRESHOLD:
            findings.error(
                "grader-rewards-noise",
                "grader rewards random noise",
                f"{where}: random noise scores {nz:.2f}",
            )
        ref = reference[i]
        if ref is not None and nz is not None and ref < nz:
            findings.error(
                "reference-below-noise",
                "reference answer scores below noise",
                f"{where}: the reference answer scores {ref:.2f}, noise {nz:.2f}",
            )
        if ref is not None and ref < GAMING_THRESHOLD:
            findings.warning(
                "reference-low",
                "reference answer scores low",
                f"{where}: the reference answer "
                f"({render(record.reference_answer, result.rendering or 'bare')!r}"
                f") scores {ref:.2f}",
            )
        for name, code, title in (
            ("copy_prompt", "prompt-copy-rewarded", "grader rewards the prompt copied back"),
            ("other_reference", "wrong-answer-rewarded", "grader rewards another record's answer"),
            ("spray", "spray-rewarded", "grader rewards a list of candidate answers"),
        ):
            score = probes[name].scores[i] if name in probes else None
            if score is not None and score >= GAMING_THRESHOLD:
                findings.warning(code, title, f"{where}: {PROBES[name][0]} scores {score:.2f}")
    reference_values = probes["reference"].values
    if reference_values and max(reference_values) == 0:
        tried = ", ".join(
            repr(form.format(answer="<answer>", json="<reference JSON>"))
            for form in RENDERINGS.values()
        )
        findings.error(
            "grader-cannot-score",
            "grader gives the reference answer nothing",
            f"{grader}: the reference answer scores 0 on all {len(reference_values):,}"
            f" records (written as {tried}): the grader cannot score this task",
        )
    for name, code in (
        ("copy_prompt", "grader-rewards-prompt-copy"),
        ("other_reference", "grader-rewards-wrong-answer"),
        ("constant", "grader-rewards-constant"),
        ("spray", "grader-rewards-spray"),
    ):
        values = probes[name].values if name in probes else []
        if values and statistics.fmean(values) >= GAMING_THRESHOLD:
            findings.error(
                code,
                f"grader rewards {PROBES[name][0]} on average",
                f"{grader}: {PROBES[name][0]} scores {statistics.fmean(values):.2f} "
                f"on average over {plural(len(values), 'record')}",
            )
