"""The preflight PNG's structure, through matplotlib's objects (not pixels)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from preflight.findings import Findings
from preflight.grader_checks import GAMING_THRESHOLD, GraderCheckResult, ProbeResult
from preflight.plot import MEAN_LABEL, SHADE_LABEL, THRESHOLD_LABEL, figure_of, plot_histograms
from preflight.report import PreflightReport


def _report(copy_prompt: Sequence[float | None]) -> PreflightReport:
    probes = {
        "reference": ProbeResult("reference", [1.0] * 500),
        "empty": ProbeResult("empty", [0.0] * 500),
        "copy_prompt": ProbeResult("copy_prompt", list(copy_prompt)),
    }
    grader = GraderCheckResult(grader="g.json", records=500, probes=probes, completed=True)
    return PreflightReport(findings=Findings(), grader=grader)


def _figure(report: PreflightReport) -> Figure:
    figure = figure_of(report)
    assert figure is not None
    return figure


def test_rare_gaming_responses_are_counted_and_marked() -> None:
    """5 of 500 copied prompts scoring 1.0: visible on the log axis, counted, in red."""
    figure = _figure(_report([0.0] * 495 + [1.0] * 5))
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert len(panels) == 3
    for axis in panels:
        assert axis.get_xlabel() == "reward"
        assert axis.get_ylabel() == "responses (log scale)"
        assert axis.get_yscale() == "log"
        thresholds = [line for line in axis.get_lines() if line.get_label() == THRESHOLD_LABEL]
        assert [tuple(cast(Sequence[float], line.get_xdata())) for line in thresholds] == [
            (GAMING_THRESHOLD, GAMING_THRESHOLD)
        ]
        assert MEAN_LABEL in axis.get_legend_handles_labels()[1]
    copy = panels[2]
    assert copy.get_title() == (
        "prompt copied back (should score low)\nmean 0.01; 5 of 500 responses at or above 0.5"
    )
    assert copy.title.get_color() != "black"
    bar_counts = [text.get_text() for text in copy.texts if text.get_text()]
    assert bar_counts == ["495", "5"]
    assert panels[0].get_title().endswith("0 of 500 responses below 0.5")
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == [SHADE_LABEL, MEAN_LABEL, THRESHOLD_LABEL]
    plt.close(figure)


def test_a_probe_without_rewards_has_no_panel_and_no_rewards_write_nothing(tmp_path: Path) -> None:
    figure = _figure(_report([None] * 500))
    assert sum(axis.get_visible() for axis in figure.axes) == 2
    plt.close(figure)
    empty = PreflightReport(findings=Findings())
    assert plot_histograms(empty, tmp_path / "p.png") is False
    assert not (tmp_path / "p.png").exists()
