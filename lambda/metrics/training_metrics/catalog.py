"""The training metrics this project publishes, and how each backend spells them.

The OpenAI-compatible API reports a step's metrics as flat keys (``critic_rewards_mean``);
native Bedrock jobs name the same series with slashes (``critic/rewards/mean``) in their
console and metrics files. :func:`canonical` folds both spellings into one key, so a single
table maps either backend onto the CloudWatch metric names below. Names not in the table
are ignored: Bedrock may add columns at any time, and a new column must not break the
collector.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

NAMESPACE = "BedrockRft/Training"

Family = Literal["train", "validation"]
Unit = Literal["None", "Count", "Percent"]


@dataclass(frozen=True)
class Metric:
    """One published series: its CloudWatch name, unit, cursor family and meaning."""

    name: str
    unit: Unit
    family: Family
    label: str


# Order matters: it is the order of the panels in `make report`.
METRICS: tuple[Metric, ...] = (
    Metric("RewardMean", "None", "train", "Training reward (mean)"),
    Metric("ValidationRewardMean", "None", "validation", "Validation reward (mean)"),
    Metric("RewardMax", "None", "train", "Training reward (max)"),
    Metric("RewardMin", "None", "train", "Training reward (min)"),
    Metric("Entropy", "None", "train", "Policy entropy"),
    Metric("GradNorm", "None", "train", "Gradient norm"),
    Metric("PolicyLoss", "None", "train", "Policy-gradient loss"),
    Metric("PolicyClipFraction", "None", "train", "Policy clip fraction"),
    Metric("AdvantageMean", "None", "train", "Advantages (mean)"),
    Metric("ResponseLengthMean", "None", "train", "Response length (mean, tokens)"),
    Metric("ResponseLengthMax", "None", "train", "Response length (max, tokens)"),
    Metric("ResponseLengthMin", "None", "train", "Response length (min, tokens)"),
    Metric("AbortedRatio", "None", "train", "Aborted responses (share)"),
    Metric("Step", "Count", "train", "Training step"),
    Metric("TotalSteps", "Count", "train", "Total training steps"),
    Metric("Progress", "Percent", "train", "Progress (%)"),
)
BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}

# Job-level series, published once per run rather than once per step.
JOB_RUNNING = "JobRunning"
JOB_SUCCEEDED = "JobSucceeded"
JOB_FAILED = "JobFailed"
MINUTES_SINCE_LAST_STEP = "MinutesSinceLastStep"

# canonical(source name) -> CloudWatch metric name. OpenAI-compatible names come from the
# documented `metrics` event; native names from the documented console graphs
# (reference: bedrock-rft.md §4). The validation aliases are defensive: where Mantle puts
# validation results is [open], so several plausible spellings map to the same series.
_ALIASES: dict[str, str] = {
    "critic_rewards_mean": "RewardMean",
    "critic_rewards_max": "RewardMax",
    "critic_rewards_min": "RewardMin",
    "val_score_rewards_mean_1": "ValidationRewardMean",
    "val_score_rewards_mean": "ValidationRewardMean",
    "val_rewards_mean": "ValidationRewardMean",
    "val_reward_mean": "ValidationRewardMean",
    "valid_reward_mean": "ValidationRewardMean",
    "validation_reward_mean": "ValidationRewardMean",
    "actor_entropy": "Entropy",
    "actor_grad_norm": "GradNorm",
    "actor_pg_loss": "PolicyLoss",
    "actor_pg_clipfrac": "PolicyClipFraction",
    "critic_advantages_mean": "AdvantageMean",
    "response_length_mean": "ResponseLengthMean",
    "response_length_max": "ResponseLengthMax",
    "response_length_min": "ResponseLengthMin",
    "response_aborted_ratio": "AbortedRatio",
    "total_steps": "TotalSteps",
}

# Columns / keys that carry the step number, in order of preference.
STEP_KEYS = ("step", "step_number", "global_step", "training_step", "steps")
# Columns that may carry a wall-clock time per row in native metrics files ([open]).
TIME_KEYS = ("timestamp", "time", "wall_time", "datetime")

_SEPARATORS = re.compile(r"[^a-z0-9]+")


def canonical(source_name: str) -> str:
    """Fold a source spelling into one key: lower case, runs of non-alphanumerics -> '_'.

    ``critic/rewards/mean`` and ``critic_rewards_mean`` both become ``critic_rewards_mean``;
    ``val-score/rewards/mean@1`` becomes ``val_score_rewards_mean_1``.
    """
    return _SEPARATORS.sub("_", source_name.strip().lower()).strip("_")


def metric_for(source_name: str) -> Metric | None:
    """The published metric a source column/key feeds, or ``None`` to ignore it."""
    name = _ALIASES.get(canonical(source_name))
    return BY_NAME[name] if name else None
