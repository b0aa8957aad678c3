"""Observability of one environment: collector, notifications, dashboard and alarms.

* An SNS topic (its own KMS key) for everything a person should hear about, with the
  environment's ``alarm_email`` subscribed when set.
* An EventBridge rule on ``aws.bedrock`` "Model Customization Job State Change" for the jobs
  that write under this environment's output prefix, delivered as a readable message.
* The training-metrics collector (``lambda/metrics``) on a schedule, with its cursor parameter.
* The orphaned-job reconciler (``observability_reconciler``) on its own schedule.
* The dashboard (``observability_dashboard``) and the alarms (``observability_alarms``).

Training metrics carry only the ``Environment`` dimension, so a new job shows on the same
dashboard and alarms without a redeploy.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.evaluation_dashboard import evaluation_row
from stacks.lambda_code import bundle_code
from stacks.nag import acknowledge
from stacks.observability_alarms import build_alarms
from stacks.observability_collector import collector_function
from stacks.observability_dashboard import build_dashboard, dashboard_name
from stacks.observability_reconciler import Reconciler

JOB_STATE_DETAIL_TYPE = "Model Customization Job State Change"

# Plain text, one fact per line: e-mail and chat clients show it as is. A variable whose path
# is absent from the event (failureMessage of a job that did not fail) is rendered empty.
JOB_STATE_MESSAGE = (
    "Bedrock RFT job <job> in environment {environment} is now <status>.\n"
    "Failure message: <failure>\n"
    "Job ARN: <arn>\n"
    "Output model: <model>\n"
    "Event time: <time>\n"
    "Backend: bedrock (native)"
)
JOB_STATE_PATHS = {
    "job": "$.detail.jobName",
    "status": "$.detail.jobStatus",
    "failure": "$.detail.failureMessage",
    "arn": "$.detail.jobArn",
    "model": "$.detail.outputModelName",
    "time": "$.time",
}


def job_parameter_name(environment: str) -> str:
    """The SSM parameter the job custom resource records the current job in (contract)."""
    return f"/bedrock-rft/{environment}/job"


def cursor_parameter_name(environment: str) -> str:
    """The SSM parameter the collector keeps its per-job cursor in."""
    return f"/bedrock-rft/{environment}/metrics-cursor"


class Observability(Construct):
    """Collector, topic, job-state rule, dashboard and alarms of one environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        artifacts_bucket: s3.IBucket,
        output_prefix: str,
        reward_function: lambda_.IFunction,
        job_id: str | None = None,
        code: lambda_.Code | None = None,
        grader_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        code = code or bundle_code("metrics")  # the collector's and the reconciler's
        self.topic_key, self.topic = self._topic(config)
        self.cursor = ssm.StringParameter(
            self,
            "MetricsCursor",
            parameter_name=cursor_parameter_name(config.name),
            # The collector owns the value from the first run on; CloudFormation writes it
            # only on creation (keep this initial value unchanged, or an update resets it).
            string_value='{"jobs":{}}',
            description=f"Training-metrics collector cursor of environment {config.name}",
            tier=ssm.ParameterTier.STANDARD,
        )
        self.collector = collector_function(
            self,
            "Collector",
            config=config,
            code=code,
            key=key,
            topic=self.topic,
            job_parameter=job_parameter_name(config.name),
            cursor=self.cursor,
            artifacts_bucket=artifacts_bucket,
            output_prefix=output_prefix,
        )
        self.schedule = events.Rule(
            self,
            "CollectorSchedule",
            description=f"Collect RFT training metrics of environment {config.name}",
            schedule=events.Schedule.rate(
                Duration.minutes(config.observability.collector_schedule_minutes)
            ),
            # A missed tick needs no retry: the next run publishes everything since the cursor.
            targets=[targets.LambdaFunction(self.collector, retry_attempts=0)],
        )
        acknowledge(
            self.schedule,
            "Serverless-EventBusDLQ",
            "A schedule tick carries no data: a lost one is made up by the next run, which "
            "publishes everything since the cursor.",
        )
        self.reconciler = Reconciler(
            self,
            "Reconciler",
            config=config,
            code=code,
            key=key,
            topic=self.topic,
            job_parameter=job_parameter_name(config.name),
        )
        self.job_state_rule = self._job_state_rule(config, artifacts_bucket, output_prefix)
        self.alarms = build_alarms(
            self,
            config=config,
            topic=self.topic,
            reward_function=reward_function,
            collector=self.collector,
            reconciler=self.reconciler.function,
            grader_name=grader_name,
        )
        self.dashboard_name = dashboard_name(config)
        self.dashboard = build_dashboard(
            self,
            config=config,
            reward_function=reward_function,
            collector=self.collector,
            alarms=list(self.alarms.values()),
            job_id=job_id,
        )

    def connect_evaluation(
        self,
        *,
        start_function: lambda_.IFunction,
        state_machine: sfn.StateMachine,
        alarms: list[cw.Alarm],
    ) -> None:
        """Let the collector request evaluations (it sees OpenAI-compatible jobs succeed, and
        backs up the native jobs' best-effort events) and add the evaluation's dashboard row."""
        self.collector.add_environment("EVALUATION_START_FUNCTION", start_function.function_name)
        assert self.collector.role is not None
        self.collector.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RequestEvaluation",
                actions=["lambda:InvokeFunction"],
                resources=[start_function.function_arn],
            )
        )
        self.dashboard.add_widgets(*evaluation_row(self.config, state_machine, alarms))

    def _topic(self, config: EnvironmentConfig) -> tuple[kms.Key, sns.Topic]:
        """The notification topic, encrypted with a key of its own.

        Alarms and EventBridge can publish to an encrypted topic only with a customer managed
        key whose policy lets them use it (the AWS managed SNS key does not). A key of its
        own keeps those service grants off the key that encrypts the training data.
        """
        stack = Stack.of(self)
        key = kms.Key(
            self,
            "TopicKey",
            description=f"Bedrock RFT notifications of environment {config.name}",
            alias=f"alias/bedrock-rft/{config.name}/notifications",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=(
                RemovalPolicy.DESTROY
                if config.removal_policy == "destroy"
                else RemovalPolicy.RETAIN
            ),
        )
        # (EventBridge gets the same grant from the rule's SNS target.)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
            )
        )
        topic = sns.Topic(
            self,
            "Topic",
            display_name=f"Bedrock RFT {config.name}",
            master_key=key,
            enforce_ssl=True,
        )
        # enforce_ssl gives the topic a resource policy, which replaces SNS's default one:
        # CloudWatch alarms of this account need an explicit allow to publish.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:"
                        f"{stack.account}:alarm:*"
                    },
                },
            )
        )
        if config.alarm_email:
            subscription = subscriptions.EmailSubscription(config.alarm_email)
            topic.add_subscription(subscription)
            acknowledge(
                topic.node.find_child(config.alarm_email),
                "Serverless-SNSRedrivePolicy",
                "E-mail delivery is retried by SNS itself; a dead-letter queue would hold "
                "notifications nobody reads, and every alarm stays visible in the console.",
            )
        return key, topic

    def _job_state_rule(
        self, config: EnvironmentConfig, artifacts_bucket: s3.IBucket, output_prefix: str
    ) -> events.Rule:
        """Native job state changes of this environment's jobs -> a readable message.

        Scoped by output location: only jobs writing under this environment's output prefix
        match, so other stacks' jobs in the same account do not notify this topic. Jobs of the
        OpenAI-compatible API are announced by the collector instead.
        """
        output = f"s3://{artifacts_bucket.bucket_name}/{output_prefix}"
        rule = events.Rule(
            self,
            "JobStateRule",
            description=f"Bedrock customization job state changes of environment {config.name}",
            event_pattern=events.EventPattern(
                source=["aws.bedrock"],
                detail_type=[JOB_STATE_DETAIL_TYPE],
                detail={"outputDataConfig": {"s3Uri": [{"prefix": output}]}},
            ),
            targets=[targets.SnsTopic(self.topic)],
        )
        acknowledge(
            rule,
            "Serverless-EventBusDLQ",
            "Bedrock delivers these events best-effort anyway; a job's end is also caught by "
            "the collector, whose JobFailed metric raises the job-failed alarm on this topic.",
        )
        cfn_rule = rule.node.default_child
        assert isinstance(cfn_rule, events.CfnRule)
        # CDK's text input is a JSON string (delivered with quotes); a plain-text template is
        # delivered as written.
        cfn_rule.add_property_override(
            "Targets.0.InputTransformer",
            {
                "InputPathsMap": JOB_STATE_PATHS,
                "InputTemplate": JOB_STATE_MESSAGE.format(environment=config.name),
            },
        )
        return rule
