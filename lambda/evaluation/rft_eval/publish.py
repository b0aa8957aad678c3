"""What the evaluation tells the team: CloudWatch metrics and the topic's paragraph.

Metrics (namespace ``BedrockRft/Evaluation`` unless the context names another):
``EvalRewardMean`` and ``EvalPassRate`` with dimensions ``Environment`` and ``Model`` (``base``
| ``tuned``), and ``EvalPromoted`` (1 or 0) with ``Environment``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rft_eval.settings import MODELS

# SNS subjects are at most 100 characters.
_SUBJECT_LENGTH = 100


def metric_data(summary: dict[str, Any], environment: str, at: datetime) -> list[dict[str, Any]]:
    """``PutMetricData``'s ``MetricData`` for ``summary`` (figures that exist only)."""
    data: list[dict[str, Any]] = []
    for model in MODELS:
        for name, key in (("EvalRewardMean", "mean_reward"), ("EvalPassRate", "pass_rate")):
            value = summary[model][key]
            if value is None:
                continue
            data.append(
                {
                    "MetricName": name,
                    "Dimensions": [
                        {"Name": "Environment", "Value": environment},
                        {"Name": "Model", "Value": model},
                    ],
                    "Timestamp": at,
                    "Value": float(value),
                    "Unit": "None",
                }
            )
    data.append(
        {
            "MetricName": "EvalPromoted",
            "Dimensions": [{"Name": "Environment", "Value": environment}],
            "Timestamp": at,
            "Value": 1.0 if summary["promoted"] else 0.0,
            "Unit": "Count",
        }
    )
    return data


def put_metrics(
    cloudwatch: Any, namespace: str, summary: dict[str, Any], environment: str, at: datetime
) -> None:
    """Publish the evaluation's metrics."""
    cloudwatch.put_metric_data(
        Namespace=namespace, MetricData=metric_data(summary, environment, at)
    )


def notify(sns: Any, topic_arn: str, environment: str, promoted: bool, text: str) -> None:
    """Publish the one-paragraph notification to the environment's topic."""
    verdict = "promoted" if promoted else "not promoted"
    subject = f"Bedrock RFT {environment}: evaluation done, tuned model {verdict}"
    sns.publish(TopicArn=topic_arn, Subject=subject[:_SUBJECT_LENGTH], Message=text)
