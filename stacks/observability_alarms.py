"""The alarms of one environment, all to its notification topic, thresholds from config."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.observability_collector import TRAINING_NAMESPACE

GRADER_NAMESPACE = "BedrockRft/Grader"

FIVE_MINUTES = Duration.minutes(5)
ABOVE_OR_AT = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
ABOVE = cw.ComparisonOperator.GREATER_THAN_THRESHOLD
BELOW = cw.ComparisonOperator.LESS_THAN_THRESHOLD
NOT_BREACHING = cw.TreatMissingData.NOT_BREACHING
MISSING = cw.TreatMissingData.MISSING


@dataclass(frozen=True)
class AlarmSpec:
    """What one alarm watches and when it goes off."""

    metric: cw.IMetric
    description: str
    threshold: float
    comparison: cw.ComparisonOperator
    missing: cw.TreatMissingData
    periods: int = 1  # consecutive breaching periods (all of them must breach)


def training_metric(
    config: EnvironmentConfig, name: str, statistic: str, period: Duration
) -> cw.Metric:
    """A training series of this environment (dimension ``Environment`` only)."""
    return cw.Metric(
        namespace=TRAINING_NAMESPACE,
        metric_name=name,
        dimensions_map={"Environment": config.name},
        statistic=statistic,
        period=period,
    )


def grader_metric(config: EnvironmentConfig, grader: str, name: str, period: Duration) -> cw.Metric:
    """A per-batch series of the reward function (``BedrockRft/Grader``, average per period)."""
    return cw.Metric(
        namespace=GRADER_NAMESPACE,
        metric_name=name,
        dimensions_map={"Environment": config.name, "Grader": grader},
        statistic="Average",
        period=period,
    )


def signal_alarms(config: EnvironmentConfig, grader: str) -> dict[str, AlarmSpec]:
    """The training-signal alarms the environment switches on (docs/observability.md).

    ``RewardHacking``: per period, ``DIFF`` (change from the previous period) of the grader's
    reward mean above 0 while UnparsedShare or RepetitionShare rises too and stands at or
    above the floor; the expression is 1 in such a period, else 0, and the alarm goes off
    after ``reward_hacking_periods`` such periods in a row. ``NoLearningSignal``:
    ZeroVarianceShare above the ceiling for ``zero_variance_periods`` 5-minute periods.
    Both treat missing data as not breaching: no batches, nothing to say."""
    settings = config.observability
    specs: dict[str, AlarmSpec] = {}
    if settings.reward_hacking_alarm:
        period = Duration.minutes(settings.reward_hacking_period_minutes)
        floor = settings.reward_hacking_share_floor
        rising = cw.MathExpression(
            expression=(
                f"IF(DIFF(reward) > 0 AND ((DIFF(unparsed) > 0 AND unparsed >= {floor:g}) OR "
                f"(DIFF(repetition) > 0 AND repetition >= {floor:g})), 1, 0)"
            ),
            using_metrics={
                "reward": grader_metric(config, grader, "RewardMean", period),
                "unparsed": grader_metric(config, grader, "UnparsedShare", period),
                "repetition": grader_metric(config, grader, "RepetitionShare", period),
            },
            label="reward and unparsed or repetitive answers rising together",
            period=period,
        )
        specs["RewardHacking"] = AlarmSpec(
            rising,
            f"The reward rose while the share of responses without an answer or of repetitive "
            f"responses rose too (at or above {floor:.0%}) in {settings.reward_hacking_periods} "
            f"periods of {settings.reward_hacking_period_minutes} minutes in a row: the policy "
            "may be gaming the grader. Read some samples: make samples ENV=" + config.name,
            threshold=1,
            comparison=ABOVE_OR_AT,
            periods=settings.reward_hacking_periods,
            missing=NOT_BREACHING,
        )
    if settings.zero_variance_alarm:
        specs["NoLearningSignal"] = AlarmSpec(
            grader_metric(config, grader, "ZeroVarianceShare", FIVE_MINUTES),
            f"More than {settings.zero_variance_ceiling:.0%} of the prompt groups got the same "
            f"reward for every rollout, for {settings.zero_variance_periods * 5} minutes: the "
            "reward carries no learning signal (the task is too easy or too hard for the "
            "current policy).",
            threshold=settings.zero_variance_ceiling,
            comparison=ABOVE,
            periods=settings.zero_variance_periods,
            missing=NOT_BREACHING,
        )
    return specs


def build_alarms(
    scope: Construct,
    *,
    config: EnvironmentConfig,
    topic: sns.ITopic,
    reward_function: lambda_.IFunction,
    collector: lambda_.IFunction,
    reconciler: lambda_.IFunction,
    grader_name: str | None = None,
) -> dict[str, cw.Alarm]:
    """Create the alarms (name -> alarm); each notifies ``topic`` when it goes off. The
    training-signal alarms need the grader's name (the metrics' ``Grader`` dimension)."""
    thresholds = config.observability
    schedule = Duration.minutes(thresholds.collector_schedule_minutes)
    orphans = config.job.orphans
    reconciler_schedule = Duration.minutes(orphans.schedule_minutes)
    timeout_ms = config.reward_function.timeout_seconds * 1000
    prefix = f"bedrock-rft-{config.name}"
    specs = {
        "RewardLambdaErrors": AlarmSpec(
            reward_function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
            "The reward Lambda failed: those rollouts got no score from the grader.",
            threshold=thresholds.reward_lambda_errors,
            comparison=ABOVE_OR_AT,
            missing=NOT_BREACHING,
        ),
        "RewardLambdaThrottles": AlarmSpec(
            reward_function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
            "Bedrock's calls to the reward Lambda were throttled: raise its concurrency.",
            threshold=thresholds.reward_lambda_throttles,
            comparison=ABOVE_OR_AT,
            missing=NOT_BREACHING,
        ),
        "RewardLambdaDurationNearTimeout": AlarmSpec(
            reward_function.metric_duration(period=FIVE_MINUTES, statistic="p99"),
            f"The reward Lambda's p99 duration is above "
            f"{thresholds.reward_lambda_duration_ratio:.0%} of its {timeout_ms // 1000} s "
            "timeout: slow judges or a large batch will soon time out.",
            threshold=round(timeout_ms * thresholds.reward_lambda_duration_ratio),
            comparison=ABOVE,
            missing=NOT_BREACHING,
        ),
        "JobFailed": AlarmSpec(
            training_metric(config, "JobFailed", "Maximum", schedule),
            "The fine-tuning job ended as failed (see the job-state message for the reason).",
            threshold=1,
            comparison=ABOVE_OR_AT,
            missing=NOT_BREACHING,
        ),
        "EntropyCollapse": AlarmSpec(
            # one-minute periods: each holds about one training step
            training_metric(config, "Entropy", "Average", Duration.minutes(1)),
            f"Policy entropy stayed below {thresholds.entropy_floor:g} for "
            f"{thresholds.entropy_points} points: the policy is collapsing onto few answers.",
            threshold=thresholds.entropy_floor,
            comparison=BELOW,
            periods=thresholds.entropy_points,
            # steps are minutes apart: periods without a step are skipped, not counted
            missing=MISSING,
        ),
        "ResponseLengthRunaway": AlarmSpec(
            training_metric(config, "ResponseLengthMean", "Average", FIVE_MINUTES),
            f"Mean response length is above {thresholds.response_length_ceiling:g} tokens: "
            "a sign of reward hacking (longer answers scoring better for the wrong reason).",
            threshold=thresholds.response_length_ceiling,
            comparison=ABOVE,
            missing=MISSING,
        ),
        "TrainingStalled": AlarmSpec(
            training_metric(config, "MinutesSinceLastStep", "Maximum", schedule),
            f"The job is running but no training step arrived for {thresholds.stall_minutes} "
            "minutes.",
            threshold=thresholds.stall_minutes,
            comparison=ABOVE,
            # published only while the job runs: nothing to say otherwise
            missing=NOT_BREACHING,
        ),
        "CollectorFailing": AlarmSpec(
            collector.metric_errors(period=schedule, statistic="Sum"),
            "The training-metrics collector failed three runs in a row: the dashboard is "
            "not being updated (see its logs).",
            threshold=1,
            comparison=ABOVE_OR_AT,
            periods=3,
            missing=NOT_BREACHING,
        ),
        "OrphanedJobs": AlarmSpec(
            training_metric(config, "OrphanedJobs", "Maximum", reconciler_schedule),
            f"A job of this environment has been running for over {orphans.grace_minutes} "
            "minutes without being its recorded current job: it may be billing with no owner. "
            f"The reconciler's action is {config.job.orphan_action} (job.orphans); the "
            "notification on this topic names the job.",
            threshold=0,
            comparison=ABOVE,
            # published on every run; a silent reconciler raises ReconcilerFailing instead
            missing=NOT_BREACHING,
        ),
        "ReconcilerFailing": AlarmSpec(
            reconciler.metric_errors(period=reconciler_schedule, statistic="Sum"),
            "The orphaned-job reconciler failed two runs in a row (or could not stop an "
            "orphaned job): jobs without an owner may be running unnoticed (see its logs).",
            threshold=1,
            comparison=ABOVE_OR_AT,
            periods=2,
            missing=NOT_BREACHING,
        ),
    }
    if grader_name is not None:
        specs.update(signal_alarms(config, grader_name))
    alarms = {}
    action = actions.SnsAction(topic)
    for name, spec in specs.items():
        alarm = cw.Alarm(
            scope,
            f"{name}Alarm",
            alarm_name=f"{prefix}-{name}",
            alarm_description=spec.description,
            metric=spec.metric,
            threshold=spec.threshold,
            comparison_operator=spec.comparison,
            evaluation_periods=spec.periods,
            datapoints_to_alarm=spec.periods,
            treat_missing_data=spec.missing,
        )
        alarm.add_alarm_action(action)
        alarms[name] = alarm
    return alarms
