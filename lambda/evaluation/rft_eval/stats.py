"""The figures: per model and paired over prompts.

A prompt counts only when every call of BOTH models on it was answered and graded: a prompt
whose calls failed for one model is excluded from both (scoring it 0 for that model alone
would bias the comparison) and counted in ``excluded_prompts``. On the compared prompts:

- per model: the mean reward over its graded samples, the pass rate (share of samples with
  reward >= ``pass_threshold``), the number of graded samples, and the failed calls (over every
  prompt, compared or not);
- paired: per prompt, tuned mean reward minus base mean reward; their mean, a 95% percentile
  bootstrap interval of that mean (prompts resampled with replacement by ``random.Random(seed)``:
  the same records and settings give the same interval), and wins/ties/losses.
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


@dataclass(frozen=True)
class Paired:
    """The compared prompts' per-prompt mean rewards, in prompt-id order."""

    prompt_ids: list[str]
    base: list[float]
    tuned: list[float]
    excluded: list[str]

    @property
    def differences(self) -> list[float]:
        """Tuned minus base, per prompt."""
        return [t - b for b, t in zip(self.base, self.tuned, strict=True)]


def pair(records: Sequence[Record]) -> Paired:
    """Per-prompt mean rewards of both models, and the prompts excluded from both."""
    by_prompt: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_prompt[record.prompt_id][record.model].append(record)
    ids: list[str] = []
    base: list[float] = []
    tuned: list[float] = []
    excluded: list[str] = []
    for pid in sorted(by_prompt):
        models = by_prompt[pid]
        complete = all(
            models[m] and all(r.error is None and r.reward is not None for r in models[m])
            for m in MODELS
        )
        if not complete:
            excluded.append(pid)
            continue
        ids.append(pid)
        base.append(_mean([r.reward for r in models["base"] if r.reward is not None]))
        tuned.append(_mean([r.reward for r in models["tuned"] if r.reward is not None]))
    return Paired(ids, base, tuned, excluded)


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


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, DIGITS)


def model_figures(
    records: Sequence[Record], model: str, compared: set[str], pass_threshold: float
) -> dict[str, Any]:
    """One model's figures: over the compared prompts, and its failed calls over all."""
    mine = [r for r in records if r.model == model]
    rewards = [r.reward for r in mine if r.prompt_id in compared and r.reward is not None]
    model_ids = sorted({r.model_id for r in mine})
    return {
        "model_id": model_ids[0] if len(model_ids) == 1 else model_ids or None,
        "mean_reward": _round(_mean(rewards)) if rewards else None,
        "pass_rate": (
            _round(sum(r >= pass_threshold for r in rewards) / len(rewards)) if rewards else None
        ),
        "graded": len(rewards),
        "failed_calls": sum(r.error is not None for r in mine),
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
        # The first few, to start looking (records.jsonl has every failed call's error).
        "excluded_prompt_ids": excluded[:LISTED_EXCLUDED],
        # Of the excluded: prompts with no record at all (their batch never finished).
        "missing_prompts": len(missing),
        "pass_threshold": pass_threshold,
        "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95},
    }
