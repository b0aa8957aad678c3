"""The preflight PNG: one reward histogram per synthetic response (and the baseline).

Each panel says what a person should look for. The grader checks call a reward at or above
``GAMING_THRESHOLD`` "rewarded": the threshold is drawn, and the side where responses should
not be (above it for the responses that must score low, below it for the reference answer)
is shaded and counted in the title. Counts are on a log scale and written on the bars, so
that 5 gaming responses among 500 are as visible as the 495 others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from preflight.findings import plural
from preflight.grader_checks import GAMING_THRESHOLD, PROBES

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.container import BarContainer
    from matplotlib.figure import Figure

    from preflight.report import PreflightReport

BINS = [i / 20 for i in range(21)]
BAR = "#3b75af"
MEAN = "#c03d3e"
WRONG_SIDE = "#f4c7c3"  # light red: where responses should not be
SHADE_LABEL = "where no response should be"
MEAN_LABEL = "mean reward"
THRESHOLD_LABEL = f"threshold {GAMING_THRESHOLD:g}: rewarded at or above"


@dataclass(frozen=True)
class Panel:
    """One histogram: its title, its rewards, and whether they should be high or low."""

    title: str
    values: list[float]
    expected: str | None  # "high", "low", or None (the baseline: no expectation)

    def wrong(self) -> int:
        """How many rewards sit on the side of the threshold they should not be on."""
        if self.expected == "low":
            return sum(v >= GAMING_THRESHOLD for v in self.values)
        if self.expected == "high":
            return sum(v < GAMING_THRESHOLD for v in self.values)
        return 0


def panels(report: PreflightReport) -> list[Panel]:
    """The histograms of ``report``: one per probe that produced rewards, then the baseline."""
    found: list[Panel] = []
    if report.grader is not None:
        for name, probe in report.grader.probes.items():
            title, expected = PROBES[name]
            found.append(Panel(title, probe.values, expected))
    if report.baseline is not None:
        found.append(Panel(f"baseline: {report.baseline.model}", report.baseline.rewards, None))
    return [panel for panel in found if panel.values]


def _draw(axis: Axes, panel: Panel) -> None:
    from matplotlib.ticker import ScalarFormatter

    values = panel.values
    mean = sum(values) / len(values)
    if panel.expected == "low":
        axis.axvspan(GAMING_THRESHOLD, 1, color=WRONG_SIDE, alpha=0.5, label=SHADE_LABEL)
    elif panel.expected == "high":
        axis.axvspan(0, GAMING_THRESHOLD, color=WRONG_SIDE, alpha=0.5, label=SHADE_LABEL)
    counts, _, bars = axis.hist(values, bins=BINS, color=BAR, edgecolor="white", log=True)
    # the count on every non-empty bar: a bar of 1 on a log axis is easy to miss
    labels = [f"{int(count):,}" if count else "" for count in counts]
    axis.bar_label(cast("BarContainer", bars), labels=labels, fontsize=7, padding=1)
    axis.axvline(mean, color=MEAN, linestyle="--", linewidth=1.2, label=MEAN_LABEL)
    axis.axvline(GAMING_THRESHOLD, color="black", linestyle=":", linewidth=1, label=THRESHOLD_LABEL)
    axis.set_xlim(-0.02, 1.02)  # a mean of 0 or 1 stays visible at the edge
    axis.set_ylim(0.5, len(values) * 3)  # room above the tallest bar for its count
    axis.yaxis.set_major_formatter(ScalarFormatter())  # 1, 10, 100 rather than 10^0, 10^1
    axis.set_xlabel("reward", fontsize=8)
    axis.set_ylabel("responses (log scale)", fontsize=8)
    axis.tick_params(labelsize=7)
    headline = panel.title + (f" (should score {panel.expected})" if panel.expected else "")
    wrong = panel.wrong()
    side = "at or above" if panel.expected == "low" else "below"
    verdict = f"mean {mean:.2f}; " + (
        f"{wrong:,} of {plural(len(values), 'response')} {side} {GAMING_THRESHOLD:g}"
        if panel.expected
        else plural(len(values), "response")
    )
    axis.set_title(f"{headline}\n{verdict}", fontsize=9, color=MEAN if wrong else "black")


def _legend_entries(axes: Iterable[Axes]) -> tuple[list[Artist], list[str]]:
    """Each distinct legend label of ``axes`` once, with its first handle."""
    entries: dict[str, Artist] = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    return list(entries.values()), list(entries)


def figure_of(report: PreflightReport) -> Figure | None:
    """The figure of ``report`` (the caller saves and closes it), or None without rewards."""
    drawn = panels(report)
    if not drawn:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    columns = min(3, len(drawn))
    rows = (len(drawn) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for axis, panel in zip(axes.flat, drawn, strict=False):
        _draw(axis, panel)
    for axis in list(axes.flat)[len(drawn) :]:
        axis.set_visible(False)
    figure.suptitle(
        "Reward distributions (preflight): bars in a shaded area, and red titles, need a look",
        fontsize=11,
    )
    # one legend for all panels (they share their marks), below the title
    handles, labels = _legend_entries(axes.flat[: len(drawn)])
    figure.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.95),
        ncols=3,
        fontsize=8,
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    return figure


def plot_histograms(report: PreflightReport, path: Path) -> bool:
    """Save the PNG of ``report`` to ``path``; False (nothing written) when there is no reward."""
    figure = figure_of(report)
    if figure is None:
        return False
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
