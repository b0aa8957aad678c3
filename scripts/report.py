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
from matplotlib.figure import Figure  # noqa: E402
from training_metrics.catalog import METRICS  # noqa: E402
from training_metrics.model import Cursor, JobState, Point, Source  # noqa: E402

from scripts.preconditions import (  # noqa: E402
    PreconditionError,
    aws_access_problem,
    credentials_problem,
    read_environments,
)
from stacks.config import (  # noqa: E402
    ConfigError,
    EnvironmentConfig,
    ObservabilityConfig,
    load_environments,
)

# Drawn on the x axis or summarised in the title instead of a panel of their own.
NOT_PANELS = {"Step", "TotalSteps", "Progress"}
SMOOTHING = 5  # steps in the trailing mean drawn over noisy curves
# The y axis of each panel: what the number is (the panel title says which metric).
Y_LABELS = {
    "RewardMean": "reward",
    "ValidationRewardMean": "reward",
    "RewardMax": "reward",
    "RewardMin": "reward",
    "Entropy": "entropy",
    "GradNorm": "norm",
    "PolicyLoss": "loss",
    "PolicyClipFraction": "share of tokens",
    "AdvantageMean": "advantage",
    "ResponseLengthMean": "tokens",
    "ResponseLengthMax": "tokens",
    "ResponseLengthMin": "tokens",
    "AbortedRatio": "share of responses",
}
# What a healthy run looks like, under each title: what a person should check the curve for.
LOOK_FOR = {
    "RewardMean": "should rise, then level off",
    "ValidationRewardMean": "should rise with training reward; a fall means overfitting",
    "Entropy": "falls slowly; a collapse towards 0 means the policy stopped exploring",
    "GradNorm": "spikes mean unstable updates",
    "PolicyClipFraction": "a steady rise means too large updates",
    "ResponseLengthMean": "a climb towards the limit means truncated answers",
    "AbortedRatio": "should stay near 0",
}


def environment(name: str) -> EnvironmentConfig:
    """The named environment from cdk.json, validated as synth validates it."""
    try:
        environments = read_environments(ROOT / "cdk.json")
    except PreconditionError as err:
        raise SystemExit(f"report: {err}") from None
    if name not in environments:
        raise SystemExit(
            f"report: ENV={name}: no such environment; defined: {', '.join(environments)}"
        )
    try:
        return load_environments({"environments": environments}, ROOT, only=name)[0]
    except ConfigError as err:
        raise SystemExit("\n".join(f"report: {line}" for line in err.lines)) from None


# The report's calls are user-facing: an unreachable endpoint fails in seconds, not minutes of
# retries (a read can still take a while: listing a long job's events is paged).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
ATTEMPTS = 2  # one retry


class ReportError(Exception):
    """A user error (region, credentials, job id, key, endpoint): one line, no traceback."""


def source_for(backend: str, region: str | None) -> tuple[Source, str]:
    """The collector's source for ``backend`` and where it reads from (for messages).

    For ``openai``, ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` win (any compatible server);
    otherwise Bedrock's endpoint of ``region`` with a short-term key from the AWS credentials,
    which are checked here, without a network call, so that their absence is one line.
    """
    custom_endpoint = backend == "openai" and os.environ.get("OPENAI_BASE_URL")
    if not region and not custom_endpoint:
        raise ReportError(
            "no region for Bedrock's endpoint: set ENV=<environment> (its region) or AWS_REGION"
        )
    if backend == "bedrock" or not os.environ.get("OPENAI_API_KEY"):
        problem = credentials_problem(region)
        if problem is not None:
            why, remedy = problem
            raise ReportError(
                f"{why} (region {region or 'unset'}): {remedy}"
                + ("" if backend == "bedrock" else ", or set OPENAI_API_KEY")
            )
    if backend == "bedrock":
        import boto3
        from botocore.config import Config
        from training_metrics.bedrock_source import BedrockSource

        config = Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"max_attempts": ATTEMPTS, "mode": "standard"},
        )
        source = BedrockSource(
            boto3.client("bedrock", region_name=region, config=config),
            boto3.client("s3", region_name=region, config=config),
        )
        return source, f"Bedrock in {region}"
    from openai import Timeout
    from rft_common.mantle import openai_client
    from training_metrics.openai_source import OpenAISource

    client = openai_client(
        region,
        max_retries=ATTEMPTS - 1,
        timeout=Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
    )
    return OpenAISource(client), str(client.base_url).rstrip("/")


def _openai_error(err: Exception, job: str, where: str) -> str | None:
    import openai

    if isinstance(err, openai.NotFoundError):
        return f"job {job} not found at {where}: check JOB= (jobs are regional: check ENV=)"
    if isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
        return (
            f"{where} refused the key (HTTP {err.status_code}: {err.message}): check "
            "OPENAI_API_KEY, or your AWS credentials when it is unset"
        )
    if isinstance(err, openai.APIStatusError):
        return f"{where} answered HTTP {err.status_code} for job {job}: {err.message}"
    if isinstance(err, openai.APIConnectionError):  # timeouts included
        return f"cannot reach {where} ({err}): check the network, the region or OPENAI_BASE_URL"
    return None


def _aws_error(err: Exception, job: str, where: str) -> str | None:
    import botocore.exceptions

    line = aws_access_problem(err, where)
    if line is not None or not isinstance(err, botocore.exceptions.ClientError):
        return line
    error = err.response.get("Error", {})
    code, message = error.get("Code", "?"), error.get("Message", "")
    if code in ("ResourceNotFoundException", "ValidationException"):
        return f"job {job} not found in {where} ({code}: {message}): check JOB= and ENV="
    return f"{where} answered {code} for job {job}: {message}"


def user_error(err: Exception, job: str, where: str) -> str | None:
    """The one line for an error the user can fix (job id, key, network), else None (a bug)."""
    return _openai_error(err, job, where) or _aws_error(err, job, where)


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
    figure, titles = figure_of(state, points, thresholds)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return titles


def figure_of(
    state: JobState, points: list[Point], thresholds: ObservabilityConfig
) -> tuple[Figure, list[str]]:
    """The figure (the caller saves and closes it) and its panel titles."""
    data = series(points)
    panels = [m for m in METRICS if m.name in data and m.name not in NOT_PANELS]
    if not panels:
        raise SystemExit(f"report: job {state.job_id} has no training metrics yet")
    columns = 2 if len(panels) > 1 else 1
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.4 * columns, 3.3 * rows), squeeze=False)
    last_step = max(step for name in data for step, _ in data[name])
    limits = {
        "Entropy": (thresholds.entropy_floor, "alarm below"),
        "ResponseLengthMean": (thresholds.response_length_ceiling, "alarm above"),
    }
    for axis, metric in zip(axes.flat, panels, strict=False):
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
        hint = LOOK_FOR.get(metric.name)
        axis.set_title(title + (f"\n{hint}" if hint else ""), fontsize=10, loc="left")
        axis.set_xlim(0, last_step + 1)
        axis.grid(True, alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7, loc="best", frameon=False)
        axis.set_xlabel("training step", fontsize=9)
        axis.set_ylabel(Y_LABELS.get(metric.name, "value"), fontsize=9)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(_title(state, data), fontsize=11)
    figure.tight_layout()
    return figure, [m.label for m in panels]


def _title(state: JobState, data: dict[str, list[tuple[int, float]]]) -> str:
    steps = data.get("Step") or []
    total = data.get("TotalSteps") or []
    progress = f"step {steps[-1][0]}" if steps else "no steps"
    if steps and total:
        progress += f" of {int(total[-1][1])}"
    return f"RFT job {state.job_id} ({state.backend}): {state.raw_status}, {progress}"


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch, draw, print the PNG path; a user error is one line on stderr (exit status 1)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("job", help="the fine-tuning job id (native: name or ARN)")
    parser.add_argument("--env", help="environment in cdk.json (backend, region, thresholds)")
    parser.add_argument("--out", type=Path, help="PNG path (default reports/<job>.png)")
    args = parser.parse_args(argv)

    config = environment(args.env) if args.env else None
    backend = config.backend if config else "openai"
    region = config.region if config else os.environ.get("AWS_REGION")
    thresholds = config.observability if config else ObservabilityConfig()
    where = "the endpoint"
    try:
        source, where = source_for(backend, region)
        state = source.state(args.job)
        points = source.fetch(args.job, Cursor()).points
    except ReportError as err:
        raise SystemExit(f"report: {err}") from None
    except Exception as err:
        line = user_error(err, args.job, where)
        if line is None:
            raise  # a bug: keep the traceback
        raise SystemExit(f"report: {line}") from None
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", args.job)[-120:]
    out: Path = args.out or ROOT / "reports" / f"{safe_name}.png"
    panels = draw(state, points, thresholds, out)
    print(f"{state.job_id}: {state.raw_status}; {len(points)} points; panels: {', '.join(panels)}")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
