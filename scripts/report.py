"""Draw a fine-tuning job's training curves into a PNG (``make report JOB=<id> [ENV=<name>]``).

The points come from the job's own API through the metrics collector's code
(``lambda/metrics/training_metrics``): the same events, checkpoints and metrics files, parsed
and named the same way, so the PNG shows exactly what the dashboard would. The OpenAI-
compatible endpoint is ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` when set (any compatible
server), else Bedrock's in the environment's region with a short-term key. With ``--env`` the
backend, region and alarm thresholds (drawn as dashed lines) come from that environment in
cdk.json; without it the backend is ``openai`` and the thresholds are the defaults.

Prints the PNG's path as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _folder in (ROOT / "lambda" / "common", ROOT / "lambda" / "metrics", ROOT):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
from training_metrics.catalog import METRICS  # noqa: E402
from training_metrics.model import Cursor, JobState, Point, Source  # noqa: E402

from stacks.config import EnvironmentConfig, ObservabilityConfig  # noqa: E402

# Drawn on the x axis or summarised in the title instead of a panel of their own.
NOT_PANELS = {"Step", "TotalSteps", "Progress"}
SMOOTHING = 5  # steps in the trailing mean drawn over noisy curves


def environment(name: str) -> EnvironmentConfig:
    """The named environment from cdk.json (validated; its files are not needed here)."""
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    environments = context.get("environments", {})
    if name not in environments:
        raise SystemExit(
            f"report: ENV={name}: no such environment; defined: {', '.join(environments)}"
        )
    return EnvironmentConfig.model_validate({"name": name, **environments[name]})


def source_for(backend: str, region: str | None) -> Source:
    """The collector's source for ``backend`` (OPENAI_BASE_URL wins for openai)."""
    if backend == "bedrock":
        import boto3
        from training_metrics.bedrock_source import BedrockSource

        return BedrockSource(
            boto3.client("bedrock", region_name=region), boto3.client("s3", region_name=region)
        )
    from rft_common.mantle import openai_client
    from training_metrics.openai_source import OpenAISource

    return OpenAISource(openai_client(region, max_retries=2, timeout=60.0))


def series(points: list[Point]) -> dict[str, list[tuple[int, float]]]:
    """Points grouped per metric as (step, value), in step order."""
    grouped: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for point in sorted(points, key=lambda p: p.step):
        grouped[point.metric].append((point.step, point.value))
    return grouped


def trailing_mean(values: list[float], window: int) -> list[float]:
    """The mean of each value and up to ``window - 1`` values before it."""
    out = []
    for index in range(len(values)):
        chunk = values[max(0, index - window + 1) : index + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def draw(
    state: JobState, points: list[Point], thresholds: ObservabilityConfig, out: Path
) -> list[str]:
    """Write the PNG: one panel per metric with data, step on x; returns the panel titles."""
    data = series(points)
    panels = [m for m in METRICS if m.name in data and m.name not in NOT_PANELS]
    if not panels:
        raise SystemExit(f"report: job {state.job_id} has no training metrics yet")
    columns = 2 if len(panels) > 1 else 1
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.4 * columns, 2.9 * rows), squeeze=False)
    last_step = max(step for name in data for step, _ in data[name])
    limits = {
        "Entropy": (thresholds.entropy_floor, "alarm below"),
        "ResponseLengthMean": (thresholds.response_length_ceiling, "alarm above"),
    }
    for index, (axis, metric) in enumerate(zip(axes.flat, panels, strict=False)):
        steps, values = zip(*data[metric.name], strict=True)
        # per-step series are noisy: draw them light with a trailing mean on top; sparse
        # series (validation every N steps) are drawn as they are
        smooth = metric.family == "train" and len(values) > SMOOTHING
        axis.plot(
            steps,
            values,
            color="#1f77b4",
            linewidth=1,
            marker="o",
            markersize=2.5 if smooth else 4,
            alpha=0.5 if smooth else 1.0,
            label="per step" if smooth else None,
        )
        if smooth:
            axis.plot(
                steps,
                trailing_mean(list(values), SMOOTHING),
                color="#1f77b4",
                linewidth=2,
                label=f"mean of last {SMOOTHING} steps",
            )
        title = metric.label
        if metric.name in limits:
            level, words = limits[metric.name]
            title += f" - {words} {level:g}"
            # drawn when it is near the curve; far away it would flatten the curve to a line
            if min(values) * 0.5 <= level <= max(values) * 1.5:
                axis.axhline(
                    level, color="#d62728", linestyle="--", linewidth=1, label="alarm threshold"
                )
        axis.set_title(title, fontsize=10, loc="left")
        axis.set_xlim(0, last_step + 1)
        axis.grid(True, alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7, loc="best", frameon=False)
        if index + columns >= len(panels):  # lowest panel of its column
            axis.set_xlabel("training step")
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(_title(state, data), fontsize=11)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return [m.label for m in panels]


def _title(state: JobState, data: dict[str, list[tuple[int, float]]]) -> str:
    steps = data.get("Step") or []
    total = data.get("TotalSteps") or []
    progress = f"step {steps[-1][0]}" if steps else "no steps"
    if steps and total:
        progress += f" of {int(total[-1][1])}"
    return f"RFT job {state.job_id} ({state.backend}): {state.raw_status}, {progress}"


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch, draw, print the PNG path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("job", help="the fine-tuning job id (native: name or ARN)")
    parser.add_argument("--env", help="environment in cdk.json (backend, region, thresholds)")
    parser.add_argument("--out", type=Path, help="PNG path (default reports/<job>.png)")
    args = parser.parse_args(argv)

    config = environment(args.env) if args.env else None
    backend = config.backend if config else "openai"
    region = config.region if config else os.environ.get("AWS_REGION")
    thresholds = config.observability if config else ObservabilityConfig()
    source = source_for(backend, region)
    state = source.state(args.job)
    points = source.fetch(args.job, Cursor()).points
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", args.job)[-120:]
    out: Path = args.out or ROOT / "reports" / f"{safe_name}.png"
    panels = draw(state, points, thresholds, out)
    print(f"{state.job_id}: {state.raw_status}; {len(points)} points; panels: {', '.join(panels)}")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
