"""One deployable unit per environment: staging, reward function, roles, the job custom
resource (and, later, observability), each a construct of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, DefaultStackSynthesizer, Environment, Stack, Tags
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.evaluation import Evaluation, evaluation_enabled
from stacks.job import FineTuningJob
from stacks.lambda_code import PROJECT_ROOT
from stacks.nag import acknowledge_inline_policies
from stacks.observability import Observability
from stacks.reward import RewardFunction, RolloutDestination
from stacks.service_role import BedrockServiceRole
from stacks.serving import DeploymentCleanup
from stacks.staging import Staging


class RftStack(Stack):
    """The reinforcement fine-tuning pipeline of one environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        project_root: Path = PROJECT_ROOT,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=Environment(account=config.account, region=config.region),
            # Only with a qualifier of its own: without one the app-wide default applies and
            # the templates of existing deployments stay as they were.
            synthesizer=None
            if config.bootstrap_qualifier is None
            else DefaultStackSynthesizer(qualifier=config.bootstrap_qualifier),
            description=(
                f"Bedrock reinforcement fine-tuning pipeline, environment {config.name} "
                f"({config.backend} backend, {config.base_model})"
            ),
            **kwargs,
        )
        self.config = config
        if config.permissions_boundary_arn:
            iam.PermissionsBoundary.of(self).apply(
                iam.ManagedPolicy.from_managed_policy_arn(
                    self, "PermissionsBoundary", config.permissions_boundary_arn
                )
            )
        for key, value in {"rft:environment": config.name, **config.tags}.items():
            Tags.of(self).add(key, value)

        self.staging = Staging(self, "Staging", config=config, project_root=project_root)
        self.reward = RewardFunction(
            self,
            "Reward",
            config=config,
            key=self.staging.key,
            project_root=project_root,
            rollouts=RolloutDestination(
                self.staging.artifacts_bucket, self.staging.rollouts_prefix
            ),
        )
        self.service_role: BedrockServiceRole | None = None
        if config.backend == "bedrock":
            self.service_role = BedrockServiceRole(
                self,
                "BedrockServiceRole",
                datasets_bucket=self.staging.datasets_bucket,
                dataset_prefix=self.staging.dataset_prefix,
                artifacts_bucket=self.staging.artifacts_bucket,
                output_prefix=self.staging.output_prefix,
                reward_function=self.reward.function,
                key=self.staging.key,
            )

        # The job custom resource, only where the environment starts a job (job.start).
        self.job: FineTuningJob | None = None
        if config.job.start:
            self.job = FineTuningJob(
                self,
                "Job",
                config=config,
                staging=self.staging,
                grader=self.reward.version,
                grader_digest=self.reward.digest,
                service_role=self.service_role.role if self.service_role else None,
            )

        # Native backend: destroying the stack deletes the tuned models' on-demand deployments.
        self.deployment_cleanup: DeploymentCleanup | None = None
        if config.backend == "bedrock" and self.job is not None:
            self.deployment_cleanup = DeploymentCleanup(
                self, "DeploymentCleanup", environment=config, key=self.staging.key
            )

        self.observability = Observability(
            self,
            "Observability",
            config=config,
            key=self.staging.key,
            artifacts_bucket=self.staging.artifacts_bucket,
            output_prefix=self.staging.output_prefix,
            reward_function=self.reward.function,
            job_id=self.job.job_id if self.job else None,
            grader_name=self.reward.grader_name,
        )

        # After a job succeeds: its evaluation and the promotion gate (where the job starts).
        self.evaluation: Evaluation | None = None
        if self.job is not None and evaluation_enabled(
            config, has_validation=self.staging.validation_key is not None
        ):
            self.evaluation = Evaluation(
                self,
                "Evaluation",
                config=config,
                staging=self.staging,
                reward_version=self.reward.version,
                topic=self.observability.topic,
            )
            # Deleted before the clean-up runs, so that no deployment appears after it.
            if self.evaluation.serve is not None and self.deployment_cleanup is not None:
                self.evaluation.serve.node.add_dependency(self.deployment_cleanup.resource)
            self.observability.connect_evaluation(
                start_function=self.evaluation.start,
                state_machine=self.evaluation.state_machine,
                alarms=[self.evaluation.failed_alarm, self.evaluation.start_failed_alarm],
            )

        # Last, so that every role's policy exists (grants create them as they go).
        acknowledge_inline_policies(self)

        CfnOutput(self, "DatasetsBucket", value=self.staging.datasets_bucket.bucket_name)
        CfnOutput(
            self,
            "TrainingDataUri",
            value=self.staging.train_s3_uri,
            description="The exact training data (content-addressed prefix)",
        )
        CfnOutput(self, "ArtifactsBucket", value=self.staging.artifacts_bucket.bucket_name)
        CfnOutput(
            self,
            "RolloutSamplesUri",
            value=self.staging.rollouts_s3_uri,
            description="Where the reward function keeps rollout samples (make samples)",
        )
        CfnOutput(
            self,
            "RewardFunctionVersionArn",
            value=self.reward.version.function_arn,
            description="The grader Lambda version jobs invoke",
        )
        if self.service_role is not None:
            CfnOutput(self, "BedrockServiceRoleArn", value=self.service_role.role.role_arn)
        CfnOutput(
            self,
            "DashboardUrl",
            value=f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region="
            f"{self.region}#dashboards:name={self.observability.dashboard_name}",
        )
        CfnOutput(self, "NotificationTopicArn", value=self.observability.topic.topic_arn)
        CfnOutput(
            self,
            "MetricsCollectorName",
            value=self.observability.collector.function_name,
            description='Backfill a job: invoke with {"job_id": "<id>"}',
        )
