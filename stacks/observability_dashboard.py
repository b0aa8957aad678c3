"""The CloudWatch dashboard of one environment.

Rows, top to bottom: the job (text: which job, how to read the curves; progress), training
curves (reward, entropy, grad norm, policy loss, advantages, response length), what the model
is learning (the reward beside the grader's signal-health metrics), grader health
(the reward Lambda's own EMF metrics), the reward Lambda itself, and the alarms. Grader series
use SEARCH over the ``Grader`` dimension, so a renamed grader appears without a redeploy.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.observability_alarms import training_metric

GRADER_NAMESPACE = "BedrockRft/Grader"
STEP = Duration.minutes(1)  # training points carry their step's own time, about one a minute
FIVE_MINUTES = Duration.minutes(5)
RED, ORANGE = "#d62728", "#ff7f0e"

HOW_TO_READ = """\
**How to read the curves** (one point per training step):
* **Reward** rising = the model is learning; flat from the start = the base model never earns \
a reward on these prompts (check the grader on a few samples). Validation reward falling while \
training reward rises = overfitting.
* **Entropy** drifting down slowly is normal (about 0.8-1.1 is healthy); a collapse towards 0 \
= mode collapse: the policy repeats a few answers (alarm below {floor:g}).
* **Grad norm** spikes = unstable updates; repeated spikes suggest a lower learning rate.
* **Response length** climbing fast while reward rises = likely reward hacking: longer answers \
score better for the wrong reason (alarm above {ceiling:g} tokens). Read some samples.
* **What the model is learning** (from the grader's batches): a high zero-variance share = \
most prompts give every rollout the same reward, so there is nothing to learn; no-answer or \
repetitive responses rising with the reward = reward hacking. `make samples ENV=<env>` shows \
what the model wrote.
* **Grader health**: a high share of zero rewards or grader errors means the reward signal, \
not the model, is the problem."""


def dashboard_name(config: EnvironmentConfig) -> str:
    """The dashboard's name (fixed, so bookmarks and the stack output stay valid)."""
    return f"bedrock-rft-{config.name}"


def build_dashboard(
    scope: Construct,
    *,
    config: EnvironmentConfig,
    reward_function: lambda_.IFunction,
    collector: lambda_.IFunction,
    alarms: list[cw.Alarm],
    job_id: str | None,
) -> cw.Dashboard:
    """The dashboard ``bedrock-rft-<environment>``."""
    dashboard = cw.Dashboard(
        scope,
        "Dashboard",
        dashboard_name=dashboard_name(config),
        default_interval=Duration.hours(12),
    )
    dashboard.add_widgets(_job_text(scope, config, job_id), _progress(config))
    dashboard.add_widgets(*_training_row(config))
    dashboard.add_widgets(*_training_row_two(config))
    dashboard.add_widgets(*learning_row(config))
    dashboard.add_widgets(*_grader_row(config))
    dashboard.add_widgets(
        _graph(
            "Grader: mean score per sub-grader (multi graders)",
            [grader_search(config, "SubGraderMean", "Average", "mean", per="SubGrader")],
            width=24,
        )
    )
    dashboard.add_widgets(*_reward_lambda_row(config, reward_function))
    dashboard.add_widgets(
        cw.AlarmStatusWidget(title="Alarms", alarms=alarms, width=16, height=4),
        cw.GraphWidget(
            title="Metrics collector",
            left=[
                collector.metric_invocations(period=FIVE_MINUTES, statistic="Sum"),
                collector.metric_errors(period=FIVE_MINUTES, statistic="Sum", color=RED),
            ],
            width=8,
            height=4,
        ),
    )
    return dashboard


def _job_text(scope: Construct, config: EnvironmentConfig, job_id: str | None) -> cw.TextWidget:
    region = Stack.of(scope).region
    record = f"/bedrock-rft/{config.name}/job"
    parameter_url = (
        f"https://{region}.console.aws.amazon.com/systems-manager/parameters"
        f"{record}/description?region={region}"
    )
    if job_id:
        job_line = (
            f"Job started by this stack: `{job_id}` "
            f"({config.backend} backend, {config.base_model})."
        )
    else:
        job_line = (
            f"This stack starts no job ({config.backend} backend, {config.base_model}); "
            "the collector follows whatever job is recorded."
        )
    markdown = (
        f"## Bedrock RFT - environment `{config.name}`\n"
        f"{job_line} The current job is recorded in SSM [{record}]({parameter_url}); a new job "
        "appears here without a redeploy.\n\n"
        + HOW_TO_READ.format(
            floor=config.observability.entropy_floor,
            ceiling=config.observability.response_length_ceiling,
        )
    )
    return cw.TextWidget(markdown=markdown, width=16, height=11)


def _progress(config: EnvironmentConfig) -> cw.SingleValueWidget:
    metrics = [
        training_metric(config, "Progress", "Maximum", FIVE_MINUTES).with_(label="Progress (%)"),
        training_metric(config, "Step", "Maximum", FIVE_MINUTES).with_(label="Step"),
        training_metric(config, "TotalSteps", "Maximum", FIVE_MINUTES).with_(label="Total steps"),
        training_metric(config, "JobRunning", "Maximum", FIVE_MINUTES).with_(
            label="Running (1) / not (0)"
        ),
        training_metric(config, "MinutesSinceLastStep", "Maximum", FIVE_MINUTES).with_(
            label="Minutes since last step"
        ),
        # the reconciler's count of running jobs nobody recorded (its own schedule)
        training_metric(
            config,
            "OrphanedJobs",
            "Maximum",
            Duration.minutes(config.job.orphans.schedule_minutes),
        ).with_(label="Orphaned jobs"),
    ]
    return cw.SingleValueWidget(
        title="Job progress (latest)",
        metrics=metrics,
        width=8,
        height=11,
        set_period_to_time_range=False,
    )


def _graph(
    title: str,
    metrics: list[cw.IMetric],
    *,
    annotations: list[cw.HorizontalAnnotation] | None = None,
    width: int = 8,
    right: list[cw.IMetric] | None = None,
) -> cw.GraphWidget:
    return cw.GraphWidget(
        title=title,
        left=metrics,
        right=right or [],
        left_annotations=annotations or [],
        width=width,
        height=6,
    )


def _training_row(config: EnvironmentConfig) -> list[cw.IWidget]:
    floor = config.observability.entropy_floor
    return [
        _graph(
            "Reward (training mean, validation mean)",
            [
                training_metric(config, "RewardMean", "Average", STEP).with_(label="training"),
                training_metric(config, "ValidationRewardMean", "Average", STEP).with_(
                    label="validation", color=ORANGE
                ),
            ],
        ),
        _graph(
            "Policy entropy",
            [training_metric(config, "Entropy", "Average", STEP)],
            annotations=[cw.HorizontalAnnotation(value=floor, label="collapse alarm", color=RED)],
        ),
        _graph("Gradient norm", [training_metric(config, "GradNorm", "Average", STEP)]),
    ]


def _training_row_two(config: EnvironmentConfig) -> list[cw.IWidget]:
    ceiling = config.observability.response_length_ceiling
    return [
        _graph("Policy-gradient loss", [training_metric(config, "PolicyLoss", "Average", STEP)]),
        _graph("Advantages (mean)", [training_metric(config, "AdvantageMean", "Average", STEP)]),
        _graph(
            "Response length (tokens)",
            [
                training_metric(config, "ResponseLengthMean", "Average", STEP).with_(label="mean"),
                training_metric(config, "ResponseLengthMax", "Average", STEP).with_(label="max"),
            ],
            annotations=[
                cw.HorizontalAnnotation(value=ceiling, label="reward-hacking alarm", color=RED)
            ],
        ),
    ]


def grader_search(
    config: EnvironmentConfig,
    metric: str,
    statistic: str,
    label: str,
    *,
    per: str = "Grader",
) -> cw.MathExpression:
    """Every grader's ``metric`` of this environment, one series per value of ``per``
    (``Grader``, or ``SubGrader`` for the per-sub-grader means of a ``multi`` grader)."""
    dimensions = "Environment,Grader" + (",SubGrader" if per == "SubGrader" else "")
    query = f'{{{GRADER_NAMESPACE},{dimensions}}} Environment="{config.name}" MetricName="{metric}"'
    return cw.MathExpression(
        expression=f"SEARCH('{query}', '{statistic}', 300)",
        # a dynamic label: one line per grader (or sub-grader), named after it
        label=f"{label} (${{PROP('Dim.{per}')}})",
        period=FIVE_MINUTES,
    )


LEARNING_ROW_TITLE = "What the model is learning"


def learning_row(config: EnvironmentConfig) -> list[cw.IWidget]:
    """The training-signal row: the reward curve beside the reward function's per-batch
    signal-health metrics (grading/signal_health.py; docs/observability.md)."""
    settings = config.observability
    signal_annotations = []
    if settings.zero_variance_alarm:
        signal_annotations.append(
            cw.HorizontalAnnotation(
                value=settings.zero_variance_ceiling, label="no-signal alarm", color=RED
            )
        )
    hacking_annotations = []
    if settings.reward_hacking_alarm:
        hacking_annotations.append(
            cw.HorizontalAnnotation(
                value=settings.reward_hacking_share_floor,
                label="reward-hacking alarm floor (while reward rises)",
                color=ORANGE,
            )
        )
    return [
        _graph(
            f"{LEARNING_ROW_TITLE}: reward (training steps, grader batches)",
            [
                training_metric(config, "RewardMean", "Average", STEP).with_(label="training"),
                grader_search(config, "RewardMean", "Average", "grader batches"),
            ],
            width=6,
        ),
        _graph(
            "Learning signal: prompt groups with one reward for all rollouts (share)",
            [grader_search(config, "ZeroVarianceShare", "Average", "zero-variance share")],
            right=[grader_search(config, "RewardStd", "Average", "reward std within groups")],
            annotations=signal_annotations,
            width=6,
        ),
        _graph(
            "Gaming the grader? Responses without an answer, repetitive responses (share)",
            [
                grader_search(config, "UnparsedShare", "Average", "no answer"),
                grader_search(config, "RepetitionShare", "Average", "repetitive"),
            ],
            annotations=hacking_annotations,
            width=6,
        ),
        _graph(
            "Response length (characters)",
            [
                grader_search(config, "ResponseChars", "p50", "p50"),
                grader_search(config, "ResponseChars", "p95", "p95"),
            ],
            width=6,
        ),
    ]


def _grader_row(config: EnvironmentConfig) -> list[cw.IWidget]:
    return [
        _graph(
            "Grader: reward mean and share of zero rewards",
            [grader_search(config, "RewardMean", "Average", "reward mean")],
            right=[grader_search(config, "ZeroRewardShare", "Average", "zero-reward share")],
        ),
        _graph(
            "Grader: samples and errors",
            [grader_search(config, "Samples", "Sum", "samples")],
            right=[grader_search(config, "GraderErrors", "Sum", "grader errors")],
        ),
        _graph(
            "Grader: judge latency (ms) and errors",
            [
                grader_search(config, "JudgeLatency", "p50", "judge latency p50"),
                grader_search(config, "JudgeLatency", "p99", "judge latency p99"),
            ],
            right=[
                grader_search(config, "JudgeErrors", "Sum", "judge errors"),
                grader_search(config, "JudgeTimeouts", "Sum", "judge timeouts"),
            ],
        ),
    ]


def _reward_lambda_row(config: EnvironmentConfig, function: lambda_.IFunction) -> list[cw.IWidget]:
    timeout_ms = config.reward_function.timeout_seconds * 1000
    return [
        _graph(
            "Reward Lambda: invocations, errors, throttles",
            [
                function.metric_invocations(period=FIVE_MINUTES, statistic="Sum"),
                function.metric_errors(period=FIVE_MINUTES, statistic="Sum", color=RED),
                function.metric_throttles(period=FIVE_MINUTES, statistic="Sum", color=ORANGE),
            ],
        ),
        _graph(
            "Reward Lambda: concurrent executions",
            [function.metric("ConcurrentExecutions", period=FIVE_MINUTES, statistic="Maximum")],
        ),
        _graph(
            "Reward Lambda: duration (ms)",
            [
                function.metric_duration(period=FIVE_MINUTES, statistic="p50").with_(label="p50"),
                function.metric_duration(period=FIVE_MINUTES, statistic="p99").with_(label="p99"),
            ],
            annotations=[
                cw.HorizontalAnnotation(value=timeout_ms, label="timeout", color=RED),
                cw.HorizontalAnnotation(
                    value=round(timeout_ms * config.observability.reward_lambda_duration_ratio),
                    label="alarm",
                    color=ORANGE,
                ),
            ],
        ),
    ]
