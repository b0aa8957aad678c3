"""From records to the evaluation's outputs, the same in the cloud and on a laptop:
``summary.json`` (figures + the gate's decision), ``records.jsonl``, ``report.md`` and
``report.png``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rft_eval import gate, report, stats
from rft_eval.records import Record, to_jsonl
from rft_eval.settings import Settings

NAMES = ("records.jsonl", "summary.json", "report.md", "report.png")


def build_summary(
    records: Sequence[Record],
    settings: Settings,
    *,
    job_id: str | None,
    environment: str,
    backend: str,
    sources: dict[str, Any],
    expected: Sequence[str] | None = None,
    promoted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``summary.json``'s content: identity, settings, figures and the gate's decision;
    ``sources`` says what was evaluated with what (reward function, validation file),
    ``expected`` which prompts were to be (see :func:`rft_eval.stats.summarize`), ``promoted``
    the record of the model promoted now (:func:`rft_eval.gate.read_promoted`), if any."""
    figures = stats.summarize(
        records,
        pass_threshold=settings.pass_threshold,
        resamples=settings.bootstrap_resamples,
        seed=settings.seed,
        expected=expected,
    )
    summary: dict[str, Any] = {
        "job_id": job_id,
        "environment": environment,
        "backend": backend,
        "sources": sources,
        "settings": settings.to_dict(),
        **figures,
    }
    prompt_ids = expected if expected is not None else sorted({r.prompt_id for r in records})
    summary["comparison_digest"] = gate.comparison_digest(prompt_ids, sources, summary["settings"])
    summary["promoted_model"] = gate.promoted_model(summary, promoted)
    decision = gate.decide(summary, settings.promote_when)
    summary["decision"] = decision.to_dict()
    summary["promoted"] = decision.promoted
    summary["promotion_reason"] = decision.reason
    return summary


def summary_json(summary: dict[str, Any]) -> str:
    """``summary.json``'s text (sorted keys: same summary, same bytes)."""
    return json.dumps(summary, indent=2, sort_keys=True) + "\n"


def render(summary: dict[str, Any], records: Sequence[Record]) -> dict[str, bytes]:
    """Every output file's bytes, by name (:data:`NAMES`)."""
    return {
        "records.jsonl": to_jsonl(records).encode("utf-8"),
        "summary.json": summary_json(summary).encode("utf-8"),
        "report.md": report.markdown(summary).encode("utf-8"),
        "report.png": report.png(summary, records),
    }
