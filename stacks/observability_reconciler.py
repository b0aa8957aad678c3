"""The orphaned-job reconciler: a scheduled Lambda that reports, and by the environment's
``job.orphans`` setting stops, running jobs of this environment that the job record does not
name (``lambda/metrics/training_metrics/orphans.py``).

A function of its own rather than a step of the collector: the collector only reads, and
giving it the right to stop jobs would widen every one of its runs; the reconciler runs less
often (``job.orphans.schedule_minutes``), fails on its own alarm, and ships in the collector's
bundle (entry point ``reconcile.handler``), so it adds no package to build.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.job import name_prefix
from stacks.log_groups import encrypted_log_group, function_role
from stacks.mantle import (
    bearer_token_statement,
    mantle_route_environment,
    project_statement,
    projects_arn,
    token_scope_text,
)
from stacks.nag import NO_VPC_REASON, acknowledge, acknowledge_runtime, checkov_skip, nag_text
from stacks.observability_collector import TRAINING_NAMESPACE

# The OpenAI-compatible calls the reconciler makes: files.list and fine_tuning.jobs.list to
# find the environment's jobs, jobs.cancel to stop one, jobs.retrieve when a cancel conflicts.
MANTLE_ACTIONS = (
    "bedrock-mantle:ListFiles",
    "bedrock-mantle:ListFineTuningJobs",
    "bedrock-mantle:GetFineTuningJob",
    "bedrock-mantle:CancelFineTuningJob",
)


def orphans_parameter_name(environment: str) -> str:
    """The SSM parameter the reconciler keeps which orphans it reported, and when."""
    return f"/bedrock-rft/{environment}/orphans"


class Reconciler(Construct):
    """Function, role, state parameter and schedule of the orphaned-job reconciler."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        code: lambda_.Code,
        key: kms.IKey,
        topic: sns.ITopic,
        job_parameter: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.state = ssm.StringParameter(
            self,
            "State",
            parameter_name=orphans_parameter_name(config.name),
            # The reconciler owns the value from its first run on; CloudFormation writes it
            # only on creation (keep this initial value unchanged, or an update resets it).
            string_value='{"jobs":{}}',
            description=f"Orphaned RFT jobs reported in environment {config.name}",
            tier=ssm.ParameterTier.STANDARD,
        )
        log_group = encrypted_log_group(self, "Logs", config=config, key=key)
        self.role = function_role(
            self,
            "Role",
            description=f"Orphaned-job reconciler of environment {config.name}",
            log_group=log_group,
        )
        job_parameter_arn = stack.format_arn(
            service="ssm", resource="parameter", resource_name=job_parameter.lstrip("/")
        )
        statements = [
            iam.PolicyStatement(
                sid="ReadJobRecord",
                actions=["ssm:GetParameter"],
                resources=[job_parameter_arn],
            ),
            iam.PolicyStatement(
                sid="KeepOrphanState",
                actions=["ssm:GetParameter", "ssm:PutParameter"],
                resources=[self.state.parameter_arn],
            ),
            iam.PolicyStatement(
                sid="PublishOrphanedJobs",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource-level permissions
                conditions={"StringEquals": {"cloudwatch:namespace": TRAINING_NAMESPACE}},
            ),
            # Nothing is stopped while this stack deploys (its own status only).
            iam.PolicyStatement(
                sid="ReadOwnStackStatus",
                actions=["cloudformation:DescribeStacks"],
                resources=[stack.stack_id],
            ),
        ]
        statements += self._backend_statements(stack, config)
        for statement in statements:
            self.role.add_to_policy(statement)
        topic.grant_publish(self.role)

        self.function = lambda_.Function(
            self,
            "Function",
            role=self.role,
            description=f"Bedrock RFT orphaned-job reconciler ({config.name})",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler="reconcile.handler",
            code=code,
            # two listings and a few stops, with bounded retries and pages (own_jobs.py)
            timeout=Duration.minutes(2),
            memory_size=256,
            retry_attempts=0,  # the next scheduled run repeats a failed one
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment_encryption=key,
            environment={
                "RFT_ENVIRONMENT": config.name,
                "RFT_BACKEND": config.backend,
                "JOB_NAME_PREFIX": name_prefix(config.name),
                "JOB_PARAMETER": job_parameter,
                "ORPHANS_PARAMETER": orphans_parameter_name(config.name),
                "ORPHAN_ACTION": config.job.orphan_action,
                "ORPHAN_GRACE_MINUTES": str(config.job.orphans.grace_minutes),
                "STACK_NAME": stack.stack_name,
                "TOPIC_ARN": topic.topic_arn,
                "METRICS_NAMESPACE": TRAINING_NAMESPACE,
                "POWERTOOLS_SERVICE_NAME": "reconciler",
                "LOG_LEVEL": "INFO",
                **mantle_route_environment(config),
            },
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"Find orphaned RFT jobs of environment {config.name}",
            schedule=events.Schedule.rate(Duration.minutes(config.job.orphans.schedule_minutes)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )
        self._acknowledge(config)

    def _backend_statements(
        self, stack: Stack, config: EnvironmentConfig
    ) -> list[iam.PolicyStatement]:
        """List and stop the jobs of the environment's backend, nothing else."""
        if config.backend == "bedrock":
            return [
                iam.PolicyStatement(
                    sid="FindJobsByName",
                    actions=["bedrock:ListModelCustomizationJobs"],
                    resources=["*"],  # no resource-level permissions
                ),
                iam.PolicyStatement(
                    sid="StopOrphanedJobs",
                    actions=["bedrock:StopModelCustomizationJob"],
                    resources=[_jobs_arn(stack)],
                ),
            ]
        # OpenAI-compatible API: a short-term Bedrock API key minted from the function's own
        # credentials; its calls are authorized against this role, on the account's projects.
        return [
            project_statement(stack, config, "FindAndCancelFineTuningJobs", MANTLE_ACTIONS),
            bearer_token_statement(config, "UseShortTermApiKey"),
        ]

    def _acknowledge(self, config: EnvironmentConfig) -> None:
        """The compliance findings on the reconciler, each with why it is safe here."""
        stack = Stack.of(self)
        acknowledge_runtime(self.function)
        policy = self.role.node.find_child("DefaultPolicy")
        wildcard = (
            "Wildcard resource only where the action has no resource-level permissions: "
            "PutMetricData (limited to the BedrockRft/Training namespace by condition), X-Ray "
            "trace upload, and "
        )
        if config.backend == "bedrock":
            wildcard += "ListModelCustomizationJobs (the function keeps only job names of this "
            wildcard += "environment's prefix)."
        else:
            wildcard += "bedrock-mantle:CallWithBearerToken (" + token_scope_text(config) + ")."
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", wildcard)
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "Publishing to the encrypted notification topic needs data keys of the topic's "
            "own key (granted on that one key by grant_publish).",
        )
        if config.backend == "bedrock":
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{nag_text(stack, _jobs_arn(stack))}]",
                "Stops customization jobs of this account and region only (no read, create or "
                "delete); job ARNs end in an id the service assigns, so they cannot be named "
                "in advance; the function stops only jobs named with this environment's prefix "
                "that its job record does not name.",
            )
        else:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{nag_text(stack, projects_arn(stack))}]",
                "Lists files and fine-tuning jobs and cancels jobs: bedrock-mantle authorizes "
                "them on the project they belong to, an account project of this region whose "
                "id the stack cannot know; the function cancels only jobs whose training file "
                "is named for this environment and that its job record does not name.",
            )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "Invoked by a schedule; a failed run carries no data and is repeated by the next "
            "one, and the reconciler-failing alarm reports persistent failures.",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaAsyncFailureDestination",
            "Scheduled runs are repeated by the next tick; persistent failures raise the "
            "reconciler-failing alarm on the notification topic instead.",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaDefaultReservedConcurrency",
            "One short run per schedule tick; reserving capacity would take it from the "
            "account's pool and fail deploys in small accounts.",
        )
        acknowledge(
            self.schedule,
            "Serverless-EventBusDLQ",
            "A schedule tick carries no data: a lost one is made up by the next run.",
        )
        checkov_skip(
            self.function,
            "CKV_AWS_115",
            "One short run per schedule tick; reserving concurrency would take capacity from "
            "the account and fail deploys in accounts with a small concurrency limit.",
        )
        checkov_skip(
            self.function,
            "CKV_AWS_116",
            "Scheduled: a failed run is repeated by the next tick; the reconciler-failing "
            "alarm reports persistent failures.",
        )
        checkov_skip(self.function, "CKV_AWS_117", NO_VPC_REASON)


def _jobs_arn(stack: Stack) -> str:
    return stack.format_arn(
        service="bedrock", resource="model-customization-job", resource_name="*"
    )
