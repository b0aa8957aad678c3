"""The figures: per model and paired over prompts.

Failures never help the tuned model (the gate could otherwise be passed by failing):

- a sample **fails** when its call failed after the retries, its grading failed, or the grader
  flagged it ``grader_error`` or ``judge_error`` (the reward function scores those 0, which is
  not a judgement of the answer);
- a failed sample of the **tuned** model scores 0: a prompt the tuned model cannot answer is a
  prompt it got wrong;
- a prompt where **any** sample of the **base** model failed is excluded from both models
  (scoring the base 0 there would credit the tuned model with the base's failure), and so is a
  prompt without records (its batch never finished). ``excluded_prompts`` and
  ``excluded_share`` count them; the gate refuses to promote above a limit.

On the compared prompts:

- per model: the mean reward over its samples (the tuned model's failures as 0), the pass rate
  (share of samples with reward >= ``pass_threshold``), the graded samples, the samples scored 0
  for a failure, and the failed calls (over every prompt, compared or not);
- paired: per prompt, tuned mean reward minus base mean reward; their mean, a 95% percentile
  bootstrap interval of that mean (prompts resampled with replacement by ``random.Random(seed)``,
  each resample keeping a prompt's two means together: the same records and settings give the
  same interval), and wins/ties/losses.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rft_eval.records import Record
from rft_eval.settings import MODELS

# Two per-prompt means closer than this are a tie (sums of floats in a different order).
TIE_TOLERANCE = 1e-9
DIGITS = 6  # summary figures are rounded: same records, same text
LISTED_EXCLUDED = 50
# The reward function's per-sample flags (metrics of value 1) for "could not be graded".
ERROR_FLAGS = ("grader_error", "judge_error")


def failed(record: Record) -> bool:
    """Whether ``record`` is a failure: no reward, an error, or a grader or judge error flag."""
    return (
        record.error is not None
        or record.reward is None
        or any(record.metrics.get(flag, 0.0) > 0 for flag in ERROR_FLAGS)
    )


def score(record: Record) -> float:
    """The reward ``record`` counts with: 0 for a failure."""
    return 0.0 if failed(record) or record.reward is None else record.reward


@dataclass(frozen=True)
class Paired:
    """The compared prompts' per-prompt mean rewards, in prompt-id order, and the rest."""

    prompt_ids: list[str]
    base: list[float]
    tuned: list[float]
    excluded: list[str]
    # Compared prompts on which at least one tuned sample failed (and scored 0).
    tuned_failed: list[str]

    @property
    def differences(self) -> list[float]:
        """Tuned minus base, per prompt."""
        return [t - b for b, t in zip(self.base, self.tuned, strict=True)]


def pair(records: Sequence[Record]) -> Paired:
    """Per-prompt mean rewards of both models under the module's failure rule."""
    by_prompt: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_prompt[record.prompt_id][record.model].append(record)
    ids: list[str] = []
    base: list[float] = []
    tuned: list[float] = []
    excluded: list[str] = []
    tuned_failed: list[str] = []
    for pid in sorted(by_prompt):
        models = by_prompt[pid]
        # Any failed base sample excludes the prompt: the base's other samples of it may be
        # the easy ones, and a base mean over fewer samples is not the same comparison.
        if not all(models[m] for m in MODELS) or any(failed(r) for r in models["base"]):
            excluded.append(pid)
            continue
        ids.append(pid)
        base.append(_mean([score(r) for r in models["base"]]))
        tuned.append(_mean([score(r) for r in models["tuned"]]))
        if any(failed(r) for r in models["tuned"]):
            tuned_failed.append(pid)
    return Paired(ids, base, tuned, excluded, tuned_failed)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` (0..100) percentile of sorted values, interpolated linearly between ranks
    (numpy's default method)."""
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_ci(
    values: Sequence[float], resamples: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of ``values`` (seeded)."""
    if not values:
        raise ValueError("no values to resample")
    rng = random.Random(seed)  # noqa: S311 (statistics, not security)
    n = len(values)
    means = sorted(math.fsum(rng.choices(values, k=n)) / n for _ in range(resamples))
    tail = (1.0 - level) / 2.0 * 100.0
    return percentile(means, tail), percentile(means, 100.0 - tail)


def _round(value: float) -> float:
    return round(value, DIGITS)


def model_figures(
    records: Sequence[Record], model: str, compared: set[str], pass_threshold: float
) -> dict[str, Any]:
    """One model's figures: over the compared prompts (failures scored 0), and its failed
    calls over all."""
    mine = [r for r in records if r.model == model]
    counted = [r for r in mine if r.prompt_id in compared]
    rewards = [score(r) for r in counted]
    model_ids = sorted({r.model_id for r in mine})
    return {
        "model_id": model_ids[0] if len(model_ids) == 1 else model_ids or None,
        "mean_reward": _round(_mean(rewards)) if rewards else None,
        "pass_rate": (
            _round(sum(r >= pass_threshold for r in rewards) / len(rewards)) if rewards else None
        ),
        "graded": sum(not failed(r) for r in counted),
        # Compared samples that failed (call, grading, grader or judge error), scored 0.
        "scored_as_failed": sum(failed(r) for r in counted),
        "failed_calls": sum(r.error is not None for r in mine),
        "grader_errors": sum(r.error is None and r.reward is not None and failed(r) for r in mine),
    }


def summarize(
    records: Sequence[Record],
    *,
    pass_threshold: float,
    resamples: int,
    seed: int,
    expected: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The summary's figures (``summary.json`` without the run's identity and the gate).

    ``expected``: the prompt ids that were to be evaluated; those without any record (a
    Distributed Map child that failed for good) are excluded and counted as missing.
    """
    paired = pair(records)
    seen = {r.prompt_id for r in records}
    missing = sorted(set(expected or ()) - seen)
    excluded = paired.excluded + missing
    compared = set(paired.prompt_ids)
    differences = paired.differences
    total = len(compared) + len(excluded)
    if differences:
        low, high = bootstrap_ci(differences, resamples, seed)
        difference: dict[str, Any] = {
            "mean": _round(_mean(differences)),
            "ci95": [_round(low), _round(high)],
        }
    else:
        difference = {"mean": None, "ci95": None}
    return {
        "n_prompts": len(compared),
        "base": model_figures(records, "base", compared, pass_threshold),
        "tuned": model_figures(records, "tuned", compared, pass_threshold),
        "difference": difference,
        "wins": sum(d > TIE_TOLERANCE for d in differences),
        "ties": sum(abs(d) <= TIE_TOLERANCE for d in differences),
        "losses": sum(d < -TIE_TOLERANCE for d in differences),
        "failed_calls": sum(r.error is not None for r in records),
        "excluded_prompts": len(excluded),
        "excluded_share": _round(len(excluded) / total) if total else None,
        # Compared prompts where the tuned model failed at least once (scored 0 there).
        "tuned_failed_prompts": len(paired.tuned_failed),
        # The first few, to start looking (records.jsonl has every failed call's error).
        "excluded_prompt_ids": excluded[:LISTED_EXCLUDED],
        # Of the excluded: prompts with no record at all (their batch never finished).
        "missing_prompts": len(missing),
        "pass_threshold": pass_threshold,
        "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95},
    }
