"""The promotion gate: does the tuned model replace ``/bedrock-rft/<env>/model``?

The rules, in order; the first that fails decides (``summary["decision"]["rule"]`` names it):

1. ``compared_prompts``: at least one prompt was compared;
2. ``max_excluded_share``: at most ``promote_when.max_excluded_share`` of the prompts were
   excluded (the base model failed on them, or their batch never finished);
3. ``min_prompts``: at least ``promote_when.min_prompts`` prompts were compared;
4. ``min_improvement``: the mean paired difference (tuned - base, the tuned model's failures
   scored 0, see :mod:`rft_eval.stats`) is at least ``promote_when.min_improvement``;
5. ``ci_above_zero`` (when ``promote_when.require_ci_above_zero``): the 95% interval's lower
   bound is above 0;
6. ``beats_promoted`` (when ``promote_when.compare_with_promoted`` and the environment has a
   promoted model whose evaluation is comparable: same validation prompts, same grader
   version, same sampling settings): the tuned model's mean reward is at least the promoted
   model's recorded mean plus ``min_improvement``. A promoted model evaluated otherwise cannot
   be compared on recorded figures; the summary says so and the base rules decide.

When every rule passes, the last one applied is the deciding rule. Only then is the parameter
written (a JSON string ``{"model_id", "job_id", "backend", "summary_uri", "difference_mean",
"ci95", "promoted_at", "evaluation": {"digest", "tuned_mean_reward", "base_mean_reward",
"n_prompts"}}``); otherwise it keeps its previous value. Applications read that parameter to
know which model to call; the next evaluation reads its ``evaluation`` to compare with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rft_eval.settings import PromoteWhen


@dataclass(frozen=True)
class Decision:
    """The gate's verdict, the rule that decided and the reason, worded for a person."""

    promoted: bool
    reason: str
    rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        """``summary.json``'s ``decision``."""
        return {"promoted": self.promoted, "rule": self.rule, "reason": self.reason}


def comparison_digest(
    prompt_ids: Sequence[str], sources: Mapping[str, Any], settings: Mapping[str, Any]
) -> str:
    """What makes two evaluations' tuned means comparable: the same prompts, graded by the
    same grader (``sources`` without the run's own records), sampled the same way."""
    identity = {
        "prompts": sorted(prompt_ids),
        "sources": {k: v for k, v in sources.items() if k != "records"},
        "sampling": {
            k: settings.get(k) for k in ("samples_per_prompt", "temperature", "max_tokens")
        },
    }
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_promoted(ssm: Any, name: str) -> dict[str, Any] | None:
    """The promoted model's record, or None when nothing was promoted yet (or the parameter
    is not a JSON object: then there is nothing to compare with either)."""
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    try:
        record = json.loads(value)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def promoted_model(summary: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any] | None:
    """``summary.json``'s ``promoted_model``: the model promoted now and whether the gate can
    compare with it (None when nothing is promoted)."""
    if record is None:
        return None
    evaluation = record.get("evaluation")
    mean = evaluation.get("tuned_mean_reward") if isinstance(evaluation, dict) else None
    found: dict[str, Any] = {
        "model_id": record.get("model_id"),
        "job_id": record.get("job_id"),
        "mean_reward": mean if isinstance(mean, int | float) else None,
        "comparable": False,
    }
    if not isinstance(evaluation, dict) or found["mean_reward"] is None:
        found["why"] = "its record has no evaluation figures (promoted before they were kept)"
    elif evaluation.get("digest") != summary.get("comparison_digest"):
        found["why"] = (
            "it was evaluated on other prompts, with another grader version or other sampling "
            "settings"
        )
    else:
        found["comparable"] = True
        found["why"] = "same prompts, grader version and sampling settings"
    return found


def decide(summary: dict[str, Any], rule: PromoteWhen) -> Decision:
    """The gate's decision on ``summary`` (see the module docstring for the rules)."""
    return _refusal(summary, rule) or _verdict(summary, rule)


def _figures(summary: dict[str, Any]) -> str:
    mean, ci95 = summary["difference"]["mean"], summary["difference"]["ci95"]
    return f"mean difference {mean:+.4f}, 95% CI [{ci95[0]:+.4f}, {ci95[1]:+.4f}]"


def _refusal(summary: dict[str, Any], rule: PromoteWhen) -> Decision | None:
    """The first of rules 1-5 that fails, as a refusal (None: they all pass)."""
    mean = summary["difference"]["mean"]
    ci95 = summary["difference"]["ci95"]
    if mean is None or ci95 is None:
        return Decision(
            False, "no prompt was answered and graded for both models", "compared_prompts"
        )
    share = summary.get("excluded_share") or 0.0
    if share > rule.max_excluded_share:
        return Decision(
            False,
            f"{summary['excluded_prompts']} prompts excluded ({share:.1%}), more than the "
            f"{rule.max_excluded_share:.1%} allowed: the models were not compared on the same "
            "prompts",
            "max_excluded_share",
        )
    n = summary["n_prompts"]
    if n < rule.min_prompts:
        return Decision(
            False,
            f"{n} prompts compared, fewer than the {rule.min_prompts} required",
            "min_prompts",
        )
    if mean < rule.min_improvement:
        return Decision(
            False,
            f"{_figures(summary)}: below the required improvement {rule.min_improvement:+.4f}",
            "min_improvement",
        )
    if rule.require_ci_above_zero and not ci95[0] > 0:
        return Decision(
            False,
            f"{_figures(summary)}: the interval's lower bound is not above 0",
            "ci_above_zero",
        )
    return None


def _verdict(summary: dict[str, Any], rule: PromoteWhen) -> Decision:
    """Rules 1-5 passed: rule 6 (the promoted model), when it applies, decides."""
    figures = _figures(summary)
    wanted = f"at least {rule.min_improvement:+.4f} over the base"
    decided = "min_improvement"
    if rule.require_ci_above_zero:
        wanted += " with the interval above 0"
        decided = "ci_above_zero"
    current = summary.get("promoted_model")
    if rule.compare_with_promoted and current and current["comparable"]:
        tuned = summary["tuned"]["mean_reward"]
        # Rounded as the summary's figures are (0.65 + 0.05 is 0.7000000000000001).
        bar = round(current["mean_reward"] + rule.min_improvement, 6)
        versus = (
            f"mean reward {tuned:.4f} against {current['mean_reward']:.4f} of the promoted "
            f"model {current['model_id']}"
        )
        if tuned < bar:
            return Decision(False, f"{figures}, but {versus}: below {bar:.4f}", "beats_promoted")
        return Decision(True, f"{figures}: {wanted}; {versus}", "beats_promoted")
    if rule.compare_with_promoted and current:
        wanted += f"; the promoted model {current['model_id']} not compared: {current['why']}"
    return Decision(True, f"{figures}: {wanted}", decided)


def parameter_value(
    summary: dict[str, Any], summary_uri: str, backend: str, now: datetime | None = None
) -> str:
    """The promoted model parameter's value for ``summary``."""
    moment = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return json.dumps(
        {
            "model_id": summary["tuned"]["model_id"],
            "job_id": summary["job_id"],
            "backend": backend,
            "summary_uri": summary_uri,
            "difference_mean": summary["difference"]["mean"],
            "ci95": summary["difference"]["ci95"],
            "promoted_at": moment,
            # What the next evaluation compares with (rule beats_promoted).
            "evaluation": {
                "digest": summary.get("comparison_digest"),
                "tuned_mean_reward": summary["tuned"]["mean_reward"],
                "base_mean_reward": summary["base"]["mean_reward"],
                "n_prompts": summary["n_prompts"],
            },
        },
        sort_keys=True,
    )


def promote(ssm: Any, name: str, value: str) -> None:
    """Write the promoted model parameter (only ever called when the gate passed)."""
    ssm.put_parameter(
        Name=name,
        Value=value,
        Type="String",
        Overwrite=True,
        Description="The promoted model (written by the evaluation's promotion gate)",
    )


def notification(summary: dict[str, Any], environment: str, summary_uri: str | None) -> str:
    """One paragraph for the topic: the verdict, the rule that decided, the figures and why."""
    base, tuned = summary["base"], summary["tuned"]

    def figure(value: float | None, pattern: str) -> str:
        return "n/a" if value is None else format(value, pattern)

    verdict = "promoted" if summary["promoted"] else "NOT promoted"
    job = summary["job_id"] or "(unnamed)"
    decision = summary.get("decision") or {}
    text = (
        f"Evaluation of job {job} in {environment}: tuned model {verdict}. "
        f"Over {summary['n_prompts']} prompts, mean reward {figure(base['mean_reward'], '.3f')} "
        f"(base) vs {figure(tuned['mean_reward'], '.3f')} (tuned), pass rate "
        f"{figure(base['pass_rate'], '.1%')} vs {figure(tuned['pass_rate'], '.1%')}; "
        f"wins/ties/losses {summary['wins']}/{summary['ties']}/{summary['losses']}; "
        f"{summary['failed_calls']} failed calls, {tuned.get('scored_as_failed', 0)} tuned "
        f"samples scored 0 for a failure, {summary['excluded_prompts']} prompts "
        f"({figure(summary.get('excluded_share'), '.1%')}) excluded from both models. "
        f"Gate (rule {decision.get('rule', 'n/a')}): {summary['promotion_reason']}."
    )
    return text + (f" Report: {summary_uri}" if summary_uri else "")
