"""Destroying the stack does not orphan the tuned model's on-demand deployments.

On the native backend the evaluation creates a custom model deployment of each tuned model
(``lambda/evaluation/rft_eval/serving.py``), tagged ``bedrock-rft:environment=<env>``. This
construct is a custom resource (CDK Provider framework, ``handler.cleanup``) that does nothing
on Create and Update and, when CloudFormation deletes it (the stack is destroyed), deletes
every deployment carrying this environment's tag, unless ``evaluation.deployment_on_delete``
is ``retain``. Its IAM can delete only deployments with that tag.

Order at deletion: anything that creates deployments (the evaluation's serve function) should
depend on :attr:`DeploymentCleanup.resource`, so that CloudFormation deletes it first and no
deployment can appear after the clean-up ran.
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.custom_resource import acknowledge_handler, acknowledge_provider
from stacks.lambda_code import bundle_code
from stacks.log_groups import encrypted_log_group, function_role
from stacks.nag import acknowledge, nag_text

RESOURCE_TYPE = "Custom::BedrockRftDeploymentCleanup"
TAG_ENVIRONMENT = "bedrock-rft:environment"  # as rft_eval.serving tags every deployment
HANDLER = "handler.cleanup"
# Deleting retries a deployment that is still being created (ConflictException) while the
# invocation lasts; the Provider framework's relay waits at most 15 minutes for it.
TIMEOUT = Duration.minutes(14)


class DeploymentCleanup(Construct):
    """Deletes the environment's custom model deployments (by tag) when the stack is deleted.

    ``function``: the evaluation's clean-up function (``handler.cleanup`` of the
    ``lambda/evaluation`` bundle) if the caller built one; without it the construct builds
    its own. Either way the construct grants that function's role exactly the clean-up's
    permissions. ``retain``: keep the deployments (default: the environment's
    ``evaluation.deployment_on_delete``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: EnvironmentConfig,
        key: kms.IKey,
        function: lambda_.Function | None = None,
        retain: bool | None = None,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        config = environment
        if retain is None:
            retain = config.evaluation.deployment_on_delete == "retain"
        self.function = function or self._function(config, key, code or bundle_code("evaluation"))
        self.policy = self._grant(config, self.function)

        framework_logs = encrypted_log_group(self, "ProviderLogs", config=config, key=key)
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.function,
            log_group=framework_logs,
            provider_function_env_encryption=key,
        )
        acknowledge_provider(self, self.provider, [self.function])
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={
                "Environment": config.name,
                "Region": config.region,
                "OnDelete": "retain" if retain else "delete",
            },
        )
        # The handler and its permissions (the role with every policy) must outlive the
        # resource: CloudFormation deletes them after it.
        assert self.function.role is not None  # checked by _grant
        self.resource.node.add_dependency(self.function, self.function.role, self.policy)

    def _function(
        self, config: EnvironmentConfig, key: kms.IKey, code: lambda_.Code
    ) -> lambda_.Function:
        log_group = encrypted_log_group(self, "Logs", config=config, key=key)
        role = function_role(
            self,
            "HandlerRole",
            description=(
                f"Deletes the custom model deployments of environment {config.name} "
                "when its stack is deleted"
            ),
            log_group=log_group,
        )
        function = lambda_.Function(
            self,
            "Handler",
            role=role,
            description=f"Deletes the custom model deployments of {config.name} on stack delete",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=code,
            timeout=TIMEOUT,
            memory_size=256,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment_encryption=key,
            environment={"POWERTOOLS_SERVICE_NAME": "evaluation", "LOG_LEVEL": "INFO"},
        )
        acknowledge_handler(function)
        acknowledge(
            role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level "
            "permissions; the clean-up's Bedrock grants live in a separate policy.",
        )
        return function

    def _grant(self, config: EnvironmentConfig, function: lambda_.Function) -> iam.Policy:
        stack = Stack.of(self)
        deployments = stack.format_arn(
            service="bedrock", resource="custom-model-deployment", resource_name="*"
        )
        policy = iam.Policy(
            self,
            "CleanupPolicy",
            statements=[
                iam.PolicyStatement(
                    sid="ListDeployments",
                    actions=["bedrock:ListCustomModelDeployments"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="ReadDeploymentTags",
                    actions=["bedrock:ListTagsForResource"],
                    resources=[deployments],
                ),
                # Only deployments tagged with this environment. The Service Authorization
                # Reference lists the custom-model-deployment resource type; should Bedrock
                # not evaluate aws:ResourceTag on this action, the delete is refused
                # (AccessDenied fails the stack deletion, naming the deployment) rather
                # than widened.
                iam.PolicyStatement(
                    sid="DeleteThisEnvironmentsDeployments",
                    actions=["bedrock:DeleteCustomModelDeployment"],
                    resources=[deployments],
                    conditions={
                        "StringEquals": {f"aws:ResourceTag/{TAG_ENVIRONMENT}": config.name}
                    },
                ),
            ],
        )
        if function.role is None:
            raise ValueError(f"{function.node.path}: the clean-up function needs a role")
        policy.attach_to_role(function.role)
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ListCustomModelDeployments has no resource-level permissions; the clean-up "
            "lists the account's deployments to find this environment's by their tag.",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, deployments)}]",
            "Deployment ARNs end in an id the service assigns; reading tags is limited to "
            "deployments of this account and region, and deleting to those tagged "
            f"{TAG_ENVIRONMENT}={config.name}.",
        )
        return policy
