"""The dashboard row of the evaluation: both models' mean reward and pass rate, whether the
tuned model was promoted, and the evaluation's executions and alarms.

Each evaluation publishes one point per metric (namespace ``BedrockRft/Evaluation``,
dimensions ``Environment`` and ``Model`` = ``base`` | ``tuned``; ``EvalPromoted`` with
``Environment`` only), so the graphs show one dot per evaluated job.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_stepfunctions as sfn

from stacks.config import EnvironmentConfig
from stacks.evaluation_iam import EVALUATION_NAMESPACE

HOUR = Duration.hours(1)
MODELS = (("base", "#7f7f7f"), ("tuned", "#1f77b4"))
RED = "#d62728"


def evaluation_metric(
    config: EnvironmentConfig, name: str, model: str | None, statistic: str = "Maximum"
) -> cw.Metric:
    """One evaluation series of this environment (per model when ``model`` is given)."""
    dimensions = {"Environment": config.name}
    if model is not None:
        dimensions["Model"] = model
    return cw.Metric(
        namespace=EVALUATION_NAMESPACE,
        metric_name=name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=HOUR,
    )


def evaluation_row(
    config: EnvironmentConfig, state_machine: sfn.StateMachine, alarms: list[cw.Alarm]
) -> list[cw.IWidget]:
    """Reward and pass rate per model, promotion, executions and alarms (one row)."""
    threshold = config.evaluation.pass_threshold
    return [
        cw.GraphWidget(
            title="Evaluation: mean reward (base vs tuned)",
            left=[
                evaluation_metric(config, "EvalRewardMean", model).with_(label=model, color=color)
                for model, color in MODELS
            ],
            width=6,
            height=6,
        ),
        cw.GraphWidget(
            title=f"Evaluation: pass rate (reward >= {threshold:g})",
            left=[
                evaluation_metric(config, "EvalPassRate", model).with_(label=model, color=color)
                for model, color in MODELS
            ],
            width=6,
            height=6,
        ),
        cw.GraphWidget(
            title="Evaluation: promoted (1) or not (0), executions",
            left=[evaluation_metric(config, "EvalPromoted", None).with_(label="promoted")],
            right=[
                state_machine.metric_succeeded(period=HOUR, statistic="Sum"),
                state_machine.metric_failed(period=HOUR, statistic="Sum", color=RED),
            ],
            width=6,
            height=6,
        ),
        cw.AlarmStatusWidget(title="Evaluation alarms", alarms=alarms, width=6, height=6),
    ]
