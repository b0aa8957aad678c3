"""The promotion gate: does the tuned model replace ``/bedrock-rft/<env>/model``?

It passes when the mean paired difference (tuned - base) is at least
``promote_when.min_improvement`` and, when ``promote_when.require_ci_above_zero``, the 95%
interval's lower bound is above 0. Only then is the parameter written (a JSON string
``{"model_id", "job_id", "backend", "summary_uri", "difference_mean", "ci95",
"promoted_at"}``); otherwise it keeps its previous value. Applications read that parameter to
know which model to call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rft_eval.settings import PromoteWhen


@dataclass(frozen=True)
class Decision:
    """The gate's verdict and the reason, worded for a person."""

    promoted: bool
    reason: str


def decide(summary: dict[str, Any], rule: PromoteWhen) -> Decision:
    """The gate's decision on ``summary``'s paired difference."""
    mean = summary["difference"]["mean"]
    ci95 = summary["difference"]["ci95"]
    if mean is None or ci95 is None:
        return Decision(False, "no prompt was answered and graded for both models")
    figures = f"mean difference {mean:+.4f}, 95% CI [{ci95[0]:+.4f}, {ci95[1]:+.4f}]"
    if mean < rule.min_improvement:
        return Decision(
            False, f"{figures}: below the required improvement {rule.min_improvement:+.4f}"
        )
    if rule.require_ci_above_zero and not ci95[0] > 0:
        return Decision(False, f"{figures}: the interval's lower bound is not above 0")
    wanted = f"at least {rule.min_improvement:+.4f}"
    if rule.require_ci_above_zero:
        wanted += " with the interval above 0"
    return Decision(True, f"{figures}: {wanted}")


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
    """One paragraph for the topic: the verdict, the figures and why."""
    base, tuned = summary["base"], summary["tuned"]

    def figure(value: float | None, pattern: str) -> str:
        return "n/a" if value is None else format(value, pattern)

    verdict = "promoted" if summary["promoted"] else "NOT promoted"
    job = summary["job_id"] or "(unnamed)"
    text = (
        f"Evaluation of job {job} in {environment}: tuned model {verdict}. "
        f"Over {summary['n_prompts']} prompts, mean reward {figure(base['mean_reward'], '.3f')} "
        f"(base) vs {figure(tuned['mean_reward'], '.3f')} (tuned), pass rate "
        f"{figure(base['pass_rate'], '.1%')} vs {figure(tuned['pass_rate'], '.1%')}; "
        f"wins/ties/losses {summary['wins']}/{summary['ties']}/{summary['losses']}; "
        f"{summary['failed_calls']} failed calls, {summary['excluded_prompts']} prompts "
        f"excluded from both models. Gate: {summary['promotion_reason']}."
    )
    return text + (f" Report: {summary_uri}" if summary_uri else "")
