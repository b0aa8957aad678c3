"""The preflight report: a terminal view (rich) and JSON for CI (the PNG: preflight/plot.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preflight.baseline import BaselineResult
from preflight.dataset import DatasetResult
from preflight.findings import HINTS, Findings, plural
from preflight.grader_checks import PROBES, GraderCheckResult

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

REPORT_VERSION = 1


@dataclass
class PreflightReport:
    """Everything one preflight run found."""

    findings: Findings
    datasets: list[DatasetResult] = field(default_factory=list)
    grader: GraderCheckResult | None = None
    baseline: BaselineResult | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when no error was found (warnings do not fail)."""
        return self.findings.error_count == 0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON data (the schema CI reads; ``version`` bumps on change)."""
        return {
            "version": REPORT_VERSION,
            "passed": self.passed,
            "errors": self.findings.error_count,
            "warnings": self.findings.warning_count,
            "settings": self.settings,
            "datasets": [d.to_dict() for d in self.datasets],
            "grader": self.grader.to_dict() if self.grader else None,
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "findings": [g.to_dict() for g in self.findings.groups],
            "notes": list(self.notes),
            "timings_seconds": {k: round(v, 3) for k, v in self.timings.items()},
        }


def write_json(report: PreflightReport, path: Path) -> None:
    """Write the JSON report to ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """A table whose first column is text (folded when long) and the rest numbers."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        if index == 0:
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _dataset_rows(report: PreflightReport) -> list[list[str]]:
    rows = []
    for d in report.datasets:
        stats = d.token_stats()
        tokens = f"{stats['median']:,} / {stats['p95']:,} / {stats['max']:,}" if stats else "-"
        limit = "-"
        if d.max_prompt_tokens is not None:
            limit = f"{d.over_prompt_limit:,} of limit {d.max_prompt_tokens:,}"
        rows.append([d.path, f"{d.records:,}", f"{len(d.valid):,}", tokens, limit])
    return rows


def _probe_rows(grader: GraderCheckResult) -> list[list[str]]:
    rows = []
    for name, probe in grader.probes.items():
        stats = probe.to_dict()
        values = [_fmt(stats.get(k)) for k in ("mean", "min", "median", "max")]
        rows.append(
            [PROBES[name][0], PROBES[name][1], *values, _fmt(stats.get("share_at_least_half"))]
        )
    return rows


def _baseline_row(b: BaselineResult) -> list[str]:
    stats = b.to_dict()["rewards"]
    return [
        f"{b.requested:,}",
        f"{len(b.samples) - b.failed:,}",
        f"{b.failed:,}",
        _fmt(stats.get("mean")),
        _fmt(stats.get("share_nonzero")),
        _fmt(stats.get("share_at_least_half")),
        _fmt(b.zero_variance_share),
    ]


def _print_findings(report: PreflightReport, console: Console) -> None:
    from rich.text import Text

    for group in report.findings.groups:
        style = "bold red" if group.severity == "error" else "yellow"
        head = Text(f"{group.severity.upper()} ", style=style)
        head.append(f"{group.title}: {group.count:,}", style="bold")
        # soft_wrap: one finding per line, whole, so logs can be searched for "line 7:"
        console.print(head, soft_wrap=True)
        for example in group.examples:
            console.print(Text(f"    {example}"), soft_wrap=True)
        if group.count > len(group.examples):
            console.print(Text(f"    ... and {group.count - len(group.examples):,} more"))
        if group.code in HINTS:
            console.print(Text(f"    why: {HINTS[group.code]}", style="dim"), soft_wrap=True)
    for note in report.notes:
        console.print(Text(f"note: {note}", style="dim"), soft_wrap=True)
    verdict = Text(
        "PASSED" if report.passed else "FAILED", style="bold green" if report.passed else "bold red"
    )
    verdict.append(
        f": {plural(report.findings.error_count, 'error')}, "
        f"{plural(report.findings.warning_count, 'warning')}",
        style="bold",
    )
    console.print(verdict)


def render_terminal(report: PreflightReport, console: Console) -> None:
    """Print the report as tables and grouped findings."""
    console.print(
        _table(
            "Datasets",
            ("file", "records", "valid", "prompt tokens~ median / p95 / max", "over prompt limit"),
            _dataset_rows(report),
        )
    )
    grader = report.grader
    if grader is not None and grader.probes:
        console.print(
            _table(
                f"Grader {grader.grader} on {plural(grader.records, 'record')} "
                f"(reference written as: {grader.rendering})",
                ("response", "should be", "mean", "min", "median", "max", "share >= 0.5"),
                _probe_rows(grader),
            )
        )
    if report.baseline is not None:
        console.print(
            _table(
                f"Baseline: {report.baseline.model}",
                (
                    "responses",
                    "answered",
                    "failed",
                    "mean reward",
                    "share > 0",
                    "share >= 0.5",
                    "zero-variance share",
                ),
                [_baseline_row(report.baseline)],
            )
        )
    _print_findings(report, console)
