"""The fine-tuning job as a custom resource: ``cdk deploy`` starts (or keeps) exactly the job
the environment's inputs describe.

The CDK Provider framework runs ``lambda/job/handler.py``: ``on_event`` starts, keeps or stops
the job, ``is_complete`` waits for the service's data checks (what that means per backend:
``rft_job.lifecycle``). CloudFormation waits
at most one hour for a custom resource (``ServiceTimeout``); the Provider gives up after
``TOTAL_TIMEOUT`` and the handler stops waiting before that (``WAIT_TIMEOUT``), cancelling a
job whose data is still being checked so that no job runs without a resource that owns it.
Each handler checks its own time left (``ON_EVENT_TIMEOUT``, ``IS_COMPLETE_TIMEOUT``) before a
long step; ``on_event`` hands what would not fit (file processing, a create) to
``is_complete``. The handler reads its own stack's status (``DescribeStacks``) to tell a
rollback from a deletion. The job itself runs for hours after the deploy returns; the
metrics collector follows it through the SSM record the handler writes
(``/bedrock-rft/<environment>/job``).
"""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, CustomResource, Duration, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.bedrock_arns import foundation_model_arn
from stacks.config import ConfigError, EnvironmentConfig
from stacks.custom_resource import acknowledge_handler, acknowledge_provider
from stacks.lambda_code import bundle_code
from stacks.log_groups import encrypted_log_group
from stacks.mantle import (
    bearer_token_statement,
    mantle_route_environment,
    model_scope_text,
    project_statement,
    projects_arn,
    token_scope_text,
)
from stacks.nag import (
    acknowledge,
    checkov_skip,
    nag_text,
)
from stacks.staging import Staging

SERVICE_TIMEOUT = Duration.hours(1)  # CloudFormation's maximum for a custom resource
TOTAL_TIMEOUT = Duration.minutes(50)  # the Provider's wait, inside the service timeout
QUERY_INTERVAL = Duration.seconds(30)
# The handler gives up (and cancels a still-validating job) a few polls before the Provider
# would fail the resource without telling it.
WAIT_TIMEOUT = Duration.minutes(45)
ON_EVENT_TIMEOUT = Duration.minutes(10)  # download, upload and file processing of the dataset
# One job create and the listing that confirms an ambiguous one (rft_job.openai_backend).
IS_COMPLETE_TIMEOUT = Duration.minutes(2)
RESOURCE_TYPE = "Custom::BedrockRftJob"
# Job names are '<prefix>-<16 hex>-<attempt>' and at most 63 characters (the API's limit).
NAME_PREFIX_MAX = 40
# The OpenAI-compatible calls of lambda/job (files.create/retrieve/delete, jobs.list/
# retrieve/cancel; jobs.create has its own statement, conditioned on the base model).
MANTLE_ACTIONS = (
    "bedrock-mantle:CreateFile",
    "bedrock-mantle:GetFile",
    "bedrock-mantle:ListFiles",  # a retried Create finds its job through its file's name
    "bedrock-mantle:DeleteFile",
    "bedrock-mantle:GetFineTuningJob",
    "bedrock-mantle:ListFineTuningJobs",
    "bedrock-mantle:CancelFineTuningJob",
)
CREATE_JOB_ACTION = "bedrock-mantle:CreateFineTuningJob"


def record_parameter_name(environment: str) -> str:
    """The SSM parameter that names the environment's current job (the handover contract)."""
    return f"/bedrock-rft/{environment}/job"


def name_prefix(environment: str) -> str:
    """The prefix of the environment's job and custom model names."""
    return f"rft-{environment}"


def check_job_settings(config: EnvironmentConfig) -> None:
    """Synth-time checks the config model cannot make alone; one-line :class:`ConfigError`."""
    where = f"environment '{config.name}'"
    prefix = name_prefix(config.name)
    if len(prefix) > NAME_PREFIX_MAX or not prefix.replace("-", "").isalnum():
        raise ConfigError(
            f"{where}: name = {json.dumps(config.name)}: job names 'rft-<name>-<hash>-<n>' "
            f"must stay within 63 characters of letters, digits and '-'"
        )
    if config.backend == "openai":
        if config.job.delete_model_on_destroy:
            raise ConfigError(
                f"{where}: job.delete_model_on_destroy = true: the openai backend has no "
                "documented way to delete a fine-tuned model; allowed only with backend bedrock"
            )
        if config.job.subnet_ids:
            raise ConfigError(
                f"{where}: job.subnet_ids: a VPC applies to backend bedrock only (the "
                "OpenAI-compatible API runs jobs in Bedrock's own network)"
            )
    config.typed_hyperparameters  # noqa: B018 (raises on names or ranges the API refuses)
    undocumented = config.undocumented_problem()
    if undocumented:
        raise ConfigError(f"{where}: {undocumented}")


class FineTuningJob(Construct):
    """The environment's RFT job as a custom resource (Provider framework, ``is_complete``).

    ``resource.ref`` is the job id (OpenAI-compatible job id, or the native job ARN).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        staging: Staging,
        grader: lambda_.IVersion,
        grader_digest: str,
        service_role: iam.IRole | None = None,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        check_job_settings(config)
        if config.backend == "bedrock" and service_role is None:
            raise ConfigError(
                f"environment '{config.name}': backend bedrock needs the Bedrock service role"
            )
        stack = Stack.of(self)
        self.config = config
        self.parameter_name = record_parameter_name(config.name)
        parameter_arn = stack.format_arn(
            service="ssm", resource="parameter", resource_name=self.parameter_name.lstrip("/")
        )

        self.log_group = encrypted_log_group(self, "Logs", config=config, key=staging.key)
        self.role = iam.Role(
            self,
            "HandlerRole",
            description=f"Starts and stops the RFT job of environment {config.name}",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        # Policies the handler needs when CloudFormation deletes the job: the resource depends
        # on them, so a stack deletion removes them only after the job was stopped.
        self.policies: list[iam.Policy] = []
        self._grant_common(parameter_arn)
        if config.backend == "openai":
            self._grant_openai(staging, grader)
        else:
            assert service_role is not None
            self._grant_bedrock(config, staging, service_role)

        code = code or bundle_code("job")
        environment = {
            "POWERTOOLS_SERVICE_NAME": "job",
            "LOG_LEVEL": "INFO",
            "JOB_WAIT_TIMEOUT_SECONDS": str(WAIT_TIMEOUT.to_seconds()),
            **mantle_route_environment(config),
        }
        self.on_event_function = self._function(
            "OnEvent",
            handler="handler.on_event",
            timeout=ON_EVENT_TIMEOUT,
            code=code,
            environment=environment,
            staging=staging,
        )
        self.is_complete_function = self._function(
            "IsComplete",
            handler="handler.is_complete",
            timeout=IS_COMPLETE_TIMEOUT,
            code=code,
            environment=environment,
            staging=staging,
        )
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level "
            "permissions; the handler's other wildcard grants live in separate policies.",
        )

        self.provider = self._provider(config, staging)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type=RESOURCE_TYPE,
            service_timeout=SERVICE_TIMEOUT,
            properties=self._properties(config, staging, grader, grader_digest, service_role),
        )
        # The job reads the staged dataset: upload first (and the role's grants with it).
        self.resource.node.add_dependency(staging.deployment)
        self.resource.node.add_dependency(self.role, *self.policies)
        self._outputs(config)

    # -- properties -----------------------------------------------------------------------

    def _properties(
        self,
        config: EnvironmentConfig,
        staging: Staging,
        grader: lambda_.IVersion,
        grader_digest: str,
        service_role: iam.IRole | None,
    ) -> dict[str, object]:
        """The custom resource's properties (names shared with ``rft_job.spec``)."""
        hyperparameters = config.typed_hyperparameters.model_dump(exclude_none=True)
        properties: dict[str, object] = {
            "Environment": config.name,
            "Backend": config.backend,
            "Region": config.region,
            "BaseModel": config.base_model,
            "NamePrefix": name_prefix(config.name),
            "TrainingDataUri": staging.train_s3_uri,
            "DatasetDigest": staging.dataset_digest,
            "GraderFunctionArn": grader.function_arn,
            "GraderDigest": grader_digest,
            # JSON in a string: CloudFormation would turn numbers into strings.
            "Hyperparameters": json.dumps(hyperparameters, sort_keys=True),
            "WaitForValidation": str(config.job.wait_for_validation).lower(),
            "SendUndocumentedFields": str(config.job.send_undocumented_fields).lower(),
            "OnDelete": config.job.on_delete,
            "DeleteModelOnDestroy": str(config.job.delete_model_on_destroy).lower(),
            "ParameterName": self.parameter_name,
            "JobTags": {"rft:environment": config.name, **config.tags},
        }
        # The OpenAI-compatible API documents no validation_file: the split is sent (and part
        # of the identity) only where the request carries it.
        if staging.validation_s3_uri is not None and (
            config.backend == "bedrock" or config.job.send_undocumented_fields
        ):
            properties["ValidationDataUri"] = staging.validation_s3_uri
        if config.backend == "bedrock":
            assert service_role is not None
            properties["OutputDataUri"] = staging.output_s3_uri
            properties["RoleArn"] = service_role.role_arn
            properties["KmsKeyArn"] = staging.key.key_arn
            if config.job.subnet_ids:
                properties["VpcConfig"] = {
                    "SubnetIds": list(config.job.subnet_ids),
                    "SecurityGroupIds": list(config.job.security_group_ids),
                }
        return properties

    # -- the handler's permissions ------------------------------------------------------------

    def _grant_common(self, parameter_arn: str) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobRecord",
                actions=["ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter"],
                resources=[parameter_arn],
            )
        )
        # A Delete or Update tells a rollback from a deletion by its own stack's status
        # (on_delete: retain keeps a job only when the stack is deleted on purpose).
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadOwnStackStatus",
                actions=["cloudformation:DescribeStacks"],
                resources=[Stack.of(self).stack_id],
            )
        )

    def _grant_openai(self, staging: Staging, grader: lambda_.IVersion) -> None:
        stack = Stack.of(self)
        dataset_objects = staging.datasets_bucket.arn_for_objects(f"{staging.dataset_prefix}*")
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadDataset",
                actions=["s3:GetObject"],
                resources=[dataset_objects],
            )
        )
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, dataset_objects)}]",
            "Reads only the objects of this dataset's content-addressed prefix (train and "
            "validation files) to upload them to the fine-tuning API.",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptDatasetThroughS3",
                actions=["kms:Decrypt"],
                resources=[staging.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            )
        )
        # The OpenAI-compatible API checks that the caller may invoke the grader it names.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeGrader",
                actions=["lambda:InvokeFunction"],
                resources=[grader.function_arn],
            )
        )
        config = self.config
        mantle = iam.Policy(
            self,
            "MantlePolicy",
            statements=[
                project_statement(stack, config, "FilesAndFineTuningJobs", MANTLE_ACTIONS),
                project_statement(
                    stack,
                    config,
                    "CreateFineTuningJobOfBaseModel",
                    [CREATE_JOB_ACTION],
                    models=[config.base_model],
                ),
                bearer_token_statement(config, "UseShortTermApiKey"),
            ],
        )
        mantle.attach_to_role(self.role)
        self.policies.append(mantle)
        acknowledge(
            mantle,
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, projects_arn(stack))}]",
            "Files and fine-tuning jobs have no resource type of their own: bedrock-mantle "
            "authorizes them on the project, and the handler's are in the account's projects "
            "of this region, whose ids it cannot know; creating a job is "
            + model_scope_text(config, [config.base_model])
            + ".",
        )
        acknowledge(
            mantle,
            "AwsSolutions-IAM5[Resource::*]",
            "bedrock-mantle:CallWithBearerToken has no resource type; the statement allows only "
            "that action, " + token_scope_text(config) + ".",
        )

    def _grant_bedrock(
        self, config: EnvironmentConfig, staging: Staging, service_role: iam.IRole
    ) -> None:
        stack = Stack.of(self)
        jobs = stack.format_arn(
            service="bedrock", resource="model-customization-job", resource_name="*"
        )
        models = stack.format_arn(service="bedrock", resource="custom-model", resource_name="*")
        base_model = foundation_model_arn(stack, config.base_model)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="CreateJob",
                actions=["bedrock:CreateModelCustomizationJob", "bedrock:TagResource"],
                resources=[base_model, jobs, models],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="FollowAndStopJob",
                actions=[
                    "bedrock:GetModelCustomizationJob",
                    "bedrock:StopModelCustomizationJob",
                ],
                resources=[jobs],
            )
        )
        policy = self.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, jobs)}]",
            "Job ARNs end in an id the service assigns at creation; the handler creates, "
            "reads and stops this environment's jobs and cannot know the id beforehand.",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, models)}]",
            "CreateModelCustomizationJob authorizes the custom model it will create, whose "
            "ARN the service assigns; limited to this account and region.",
        )
        # Before adopting a completed job, the handler checks that its model still exists.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="CheckTrainedModel",
                actions=["bedrock:GetCustomModel"],
                resources=[models],
            )
        )
        if config.job.delete_model_on_destroy:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="DeleteTrainedModel",
                    actions=["bedrock:DeleteCustomModel"],
                    resources=[models],
                )
            )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PassServiceRole",
                actions=["iam:PassRole"],
                resources=[service_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
            )
        )
        # Naming a customer managed key for the custom model requires the caller to use it too.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="UseModelKeyThroughBedrock",
                actions=[
                    "kms:Decrypt",
                    "kms:GenerateDataKey",
                    "kms:DescribeKey",
                    "kms:CreateGrant",
                ],
                resources=[staging.key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"bedrock.{stack.region}.amazonaws.com"}
                },
            )
        )
        listing = iam.Policy(
            self,
            "ListJobsPolicy",
            statements=[
                iam.PolicyStatement(
                    sid="FindJobsOfThisIdentity",
                    actions=["bedrock:ListModelCustomizationJobs"],
                    resources=["*"],
                )
            ],
        )
        listing.attach_to_role(self.role)
        self.policies.append(listing)
        acknowledge(
            listing,
            "AwsSolutions-IAM5[Resource::*]",
            "ListModelCustomizationJobs has no resource-level permissions; the handler lists "
            "jobs by name to find one a retried Create already started.",
        )

    # -- functions and provider -------------------------------------------------------------

    def _function(
        self,
        construct_id: str,
        *,
        handler: str,
        timeout: Duration,
        code: lambda_.Code,
        environment: dict[str, str],
        staging: Staging,
    ) -> lambda_.Function:
        function = lambda_.Function(
            self,
            construct_id,
            role=self.role,
            description=f"RFT job custom resource ({self.config.name}): {handler}",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=code,
            timeout=timeout,
            memory_size=512,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment_encryption=staging.key,
            environment=environment,
        )
        acknowledge_handler(function)
        return function

    def _provider(self, config: EnvironmentConfig, staging: Staging) -> cr.Provider:
        framework_logs = encrypted_log_group(self, "ProviderLogs", config=config, key=staging.key)
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.on_event_function,
            is_complete_handler=self.is_complete_function,
            query_interval=QUERY_INTERVAL,
            total_timeout=TOTAL_TIMEOUT,
            log_group=framework_logs,
            provider_function_env_encryption=staging.key,
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=framework_logs, level=sfn.LogLevel.ALL
            ),
        )
        self._acknowledge_provider(provider)
        return provider

    def _acknowledge_provider(self, provider: cr.Provider) -> None:
        """The findings on aws-cdk-lib's generated Provider framework resources."""
        acknowledge_provider(self, provider, [self.on_event_function, self.is_complete_function])
        # The waiter is a class of its own (not an sfn.StateMachine): found by its id.
        waiter = provider.node.find_child("waiter-state-machine")
        for rule_id in ("AwsSolutions-SF2", "Serverless-StepFunctionStateMachineXray"):
            acknowledge(
                waiter,
                rule_id,
                "aws-cdk-lib's waiter state machine only polls is_complete; the job "
                "handler functions are traced with X-Ray, the poller adds nothing.",
            )
        waiter_policy = waiter.node.find_child("Role").node.find_child("DefaultPolicy")
        log_delivery = (
            "The waiter state machine's log delivery to CloudWatch Logs: the log "
            "delivery actions have no resource-level permissions."
        )
        acknowledge(waiter_policy, "AwsSolutions-IAM5[Resource::*]", log_delivery)
        checkov_skip(waiter_policy, "CKV_AWS_111", log_delivery)

    @property
    def job_id(self) -> str:
        """The job's id (the custom resource's physical id), resolved at deploy."""
        return self.resource.ref

    # -- outputs ------------------------------------------------------------------------------

    def _outputs(self, config: EnvironmentConfig) -> None:
        job_id = self.resource.ref
        CfnOutput(self, "JobId", value=job_id, description="The fine-tuning job this deploy runs")
        CfnOutput(self, "JobBackend", value=config.backend)
        CfnOutput(
            self,
            "JobRecordParameter",
            value=self.parameter_name,
            description="SSM parameter with the job id, status and (once done) the model",
        )
        if config.backend == "openai":
            hint = Fn.join(
                "",
                [
                    'curl -H "Authorization: Bearer $OPENAI_API_KEY" '
                    f"https://bedrock-mantle.{config.region}.api.aws"
                    f"{config.mantle.route or '/v1'}/fine_tuning/jobs/",
                    job_id,
                ],
            )
            console = (
                f"https://{config.region}.console.aws.amazon.com/bedrock/home?"
                f"region={config.region}#/custom-models"
            )
        else:
            hint = Fn.join(
                "",
                [
                    f"aws bedrock get-model-customization-job --region {config.region} "
                    "--job-identifier ",
                    job_id,
                ],
            )
            console = (
                f"https://{config.region}.console.aws.amazon.com/bedrock/home?"
                f"region={config.region}#/custom-models"
            )
        CfnOutput(self, "JobStatusCommand", value=hint, description="How to read the job")
        CfnOutput(self, "JobConsole", value=console, description="Custom models in the console")
        # The names the README documents (scripts read them), not Job<name><hash>.
        for child in self.node.children:
            if isinstance(child, CfnOutput):
                child.override_logical_id(child.node.id)
