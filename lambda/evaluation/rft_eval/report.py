"""The human report: markdown and a PNG, both functions of the summary and the records only.

The PNG has two panels: the reward distributions of both models side by side (compared
prompts only), and the per-prompt paired difference (tuned - base), sorted, with its mean and
95% interval. It is drawn with matplotlib's Agg renderer on a fresh ``Figure`` (no pyplot
state, default style whatever the machine's matplotlibrc says), and saved without the
``Software`` metadata entry, so that the same summary and records give the same bytes with
the same matplotlib (its fonts ship inside the wheel).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from rft_eval.records import Record
from rft_eval.settings import MODELS
from rft_eval.stats import pair, score

COLORS = {"base": "#8c8c8c", "tuned": "#3b75af"}
WIN, TIE, LOSS = "#2e8540", "#b0b0b0", "#c03d3e"
BINS = 10


def _figure(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else format(value, pattern)


def title(summary: dict[str, Any]) -> str:
    """What the report is about: the job, or the tuned model when no job was named."""
    return str(summary["job_id"] or f"model {summary['tuned']['model_id']}")


def markdown(summary: dict[str, Any], image: str = "report.png") -> str:
    """The report in markdown; ``image`` is the PNG's path relative to it."""
    base, tuned, diff = summary["base"], summary["tuned"], summary["difference"]
    ci = diff["ci95"]
    interval = "n/a" if ci is None else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"
    verdict = "promoted" if summary["promoted"] else "not promoted"
    lines = [
        f"# Evaluation of {title(summary)}",
        "",
        f"Environment `{summary.get('environment', '')}`, backend "
        f"`{summary.get('backend', '')}`: the tuned model against the base model on "
        f"{summary['n_prompts']} validation prompts, "
        f"{summary.get('settings', {}).get('samples_per_prompt', 1)} sample(s) per prompt and "
        "model, graded by the reward function the job trained with.",
        "",
        "| | base | tuned |",
        "|---|---|---|",
        f"| model | `{base['model_id']}` | `{tuned['model_id']}` |",
        f"| mean reward | {_figure(base['mean_reward'], '.4f')} | "
        f"{_figure(tuned['mean_reward'], '.4f')} |",
        f"| pass rate (reward >= {summary['pass_threshold']:g}) | "
        f"{_figure(base['pass_rate'], '.1%')} | {_figure(tuned['pass_rate'], '.1%')} |",
        f"| graded samples | {base['graded']} | {tuned['graded']} |",
        f"| failed calls | {base['failed_calls']} | {tuned['failed_calls']} |",
        "",
        f"**Paired difference (tuned - base):** mean {_figure(diff['mean'], '+.4f')}, 95% "
        f"bootstrap interval {interval} ({summary['bootstrap']['resamples']} resamples, seed "
        f"{summary['bootstrap']['seed']}); wins / ties / losses: {summary['wins']} / "
        f"{summary['ties']} / {summary['losses']}.",
        "",
        f"**Gate:** {verdict} (rule `{(summary.get('decision') or {}).get('rule', 'n/a')}`). "
        f"{summary['promotion_reason']}.",
        "",
    ]
    if summary["excluded_prompts"]:
        listed = ", ".join(f"`{p}`" for p in summary["excluded_prompt_ids"])
        more = summary["excluded_prompts"] - len(summary["excluded_prompt_ids"])
        missing = summary.get("missing_prompts") or 0
        lines += [
            f"**Excluded from both models:** {summary['excluded_prompts']} prompt(s) "
            f"({_figure(summary.get('excluded_share'), '.1%')}) where the base model's calls "
            f"or grading failed after retries: {listed}"
            + (f" and {more} more" if more > 0 else "")
            + " (the errors are in records.jsonl)"
            + (
                f"; {missing} of them were never evaluated (their batch failed)."
                if missing
                else "."
            ),
            "",
        ]
    failed = summary.get("tuned_failed_prompts") or 0
    if failed:
        lines += [
            f"**Tuned model failures:** on {failed} compared prompt(s) a call or grading of "
            f"the tuned model failed; those samples score 0 ({tuned.get('scored_as_failed', 0)} "
            "sample(s), errors in records.jsonl).",
            "",
        ]
    lines += [f"![reward distributions and per-prompt differences]({image})", ""]
    return "\n".join(lines)


def png(summary: dict[str, Any], records: Sequence[Record], dpi: int = 100) -> bytes:
    """The report's PNG (see the module docstring)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    paired = pair(records)
    compared = set(paired.prompt_ids)
    with matplotlib.rc_context(rc=matplotlib.rcParamsDefault):
        figure = Figure(figsize=(12, 4.6), layout="constrained")
        FigureCanvasAgg(figure)
        left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
        _distributions(left, summary, records, compared)
        _differences(right, summary, paired.differences)
        figure.suptitle(
            f"{title(summary)}: tuned vs base on {summary['n_prompts']} prompts "
            f"({'promoted' if summary['promoted'] else 'not promoted'})",
            fontsize=11,
        )
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=dpi, metadata={"Software": None})
    return out.getvalue()


def _distributions(
    axis: Any, summary: dict[str, Any], records: Sequence[Record], compared: set[str]
) -> None:
    width = 1.0 / BINS
    for offset, model in zip((-0.2, 0.2), MODELS, strict=True):
        # As the means count them: a failed tuned sample of a compared prompt is a 0.
        rewards = [score(r) for r in records if r.model == model and r.prompt_id in compared]
        counts = [0] * BINS
        for value in rewards:
            counts[min(BINS - 1, max(0, int(value * BINS)))] += 1
        total = max(1, len(rewards))
        centers = [(i + 0.5) * width + offset * width for i in range(BINS)]
        mean = summary[model]["mean_reward"]
        axis.bar(
            centers,
            [c / total for c in counts],
            width=width * 0.4,
            color=COLORS[model],
            label=f"{model}: mean {_figure(mean, '.3f')}",
        )
        if mean is not None:
            axis.axvline(mean, color=COLORS[model], linestyle="--", linewidth=1.2)
    axis.axvline(summary["pass_threshold"], color="black", linestyle=":", linewidth=1)
    axis.set_xlim(0, 1)
    axis.set_xlabel(f"reward (dotted: pass threshold {summary['pass_threshold']:g})")
    axis.set_ylabel("share of samples")
    axis.set_title("Reward distribution per model", fontsize=10)
    axis.legend(loc="upper center", fontsize=8)


def _differences(axis: Any, summary: dict[str, Any], differences: Sequence[float]) -> None:
    ordered = sorted(differences)
    colors = [WIN if d > 1e-9 else LOSS if d < -1e-9 else TIE for d in ordered]
    axis.bar(range(len(ordered)), ordered, width=1.0, color=colors, zorder=2)
    ties = [i for i, color in enumerate(colors) if color == TIE]
    if ties:  # bars of height 0: shade where they are
        axis.axvspan(
            ties[0] - 0.5,
            ties[-1] + 0.5,
            color=TIE,
            alpha=0.3,
            zorder=0,
            label=f"ties ({len(ties)})",
        )
    diff = summary["difference"]
    if diff["mean"] is not None:
        axis.axhline(
            diff["mean"], color="black", linewidth=1.2, zorder=3, label=f"mean {diff['mean']:+.3f}"
        )
        low, high = diff["ci95"]
        axis.axhspan(
            low,
            high,
            color="#f0c419",
            alpha=0.45,
            zorder=1,
            label=f"95% CI [{low:+.3f}, {high:+.3f}]",
        )
    axis.axhline(0, color="black", linewidth=0.6)
    axis.set_ylim(-1.05, 1.05)
    axis.set_xlim(-0.5, max(1, len(ordered)) - 0.5)
    axis.set_xlabel("prompts, sorted by difference")
    axis.set_ylabel("tuned - base mean reward")
    axis.set_title(
        f"Per-prompt difference: {summary['wins']} wins, {summary['ties']} ties, "
        f"{summary['losses']} losses",
        fontsize=10,
    )
    axis.legend(loc="lower right", fontsize=8)
