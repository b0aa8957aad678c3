"""Per-batch grader metrics in CloudWatch embedded metric format (Powertools).

Namespace ``BedrockRft/Grader``; dimensions ``Environment`` and ``Grader`` only (low
cardinality: the dashboard finds every batch of every job under the same two values).
Per-sub-grader means carry a third dimension, ``SubGrader``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from grading.base import Stats

NAMESPACE = "BedrockRft/Grader"


@dataclass(slots=True)
class Summary:
    """What one batch produced, for metrics."""

    scores: list[float] = field(default_factory=list)
    grader_errors: int = 0
    # sub-grader name -> its values over the batch
    details: dict[str, list[float]] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    remote: bool = False  # whether judge metrics apply


def emf_provider(dimensions: Mapping[str, str]) -> AmazonCloudWatchEMFProvider:
    """A fresh EMF provider for one record in the grader namespace, with ``dimensions``."""
    # A fresh provider per batch, with its own sets (the Metrics class shares state between
    # instances). service="" because Powertools would otherwise add a "service" dimension
    # from POWERTOOLS_SERVICE_NAME and the dashboard's metrics would not match.
    return AmazonCloudWatchEMFProvider(
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE,
        service="",
        metric_set={},
        dimension_set={},
        metadata_set={},
        default_dimensions=dict(dimensions),
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def publish(summary: Summary, *, environment: str, grader: str) -> None:
    """Print the batch's EMF records to stdout (CloudWatch Logs turns them into metrics)."""
    dimensions = {"Environment": environment or "unknown", "Grader": grader}
    main = emf_provider(dimensions)
    if summary.remote:
        # Latencies first: Powertools flushes on its own every 100 values, and the metrics
        # added after them make sure the final flush below is never empty.
        for latency in summary.stats.judge_latency_ms:
            main.add_metric(name="JudgeLatency", unit="Milliseconds", value=latency)
    main.add_metric(name="Samples", unit="Count", value=len(summary.scores))
    main.add_metric(name="GraderErrors", unit="Count", value=summary.grader_errors)
    if summary.scores:
        zero = sum(1 for score in summary.scores if score == 0.0)
        main.add_metric(name="RewardMean", unit="None", value=_mean(summary.scores))
        main.add_metric(name="ZeroRewardShare", unit="None", value=zero / len(summary.scores))
    if summary.remote:
        stats = summary.stats
        main.add_metric(name="JudgeCalls", unit="Count", value=stats.judge_calls)
        main.add_metric(name="JudgeErrors", unit="Count", value=stats.judge_errors)
        main.add_metric(name="JudgeTimeouts", unit="Count", value=stats.judge_timeouts)
        main.add_metric(name="JudgeStructured", unit="Count", value=stats.judge_structured)
        main.add_metric(name="JudgeUnstructured", unit="Count", value=stats.judge_unstructured)
    main.flush_metrics()
    for name, values in summary.details.items():
        if values:
            sub = emf_provider({**dimensions, "SubGrader": name})
            sub.add_metric(name="SubGraderMean", unit="None", value=_mean(values))
            sub.flush_metrics()
