"""The training-metrics collector Lambda and the least privilege it runs with."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.log_groups import encrypted_log_group, function_role
from stacks.mantle import (
    bearer_token_statement,
    mantle_route_environment,
    project_statement,
    projects_arn,
    token_scope_text,
)
from stacks.nag import (
    NO_VPC_REASON,
    acknowledge,
    acknowledge_runtime,
    checkov_skip,
    nag_text,
)

TRAINING_NAMESPACE = "BedrockRft/Training"


def collector_function(
    scope: Construct,
    construct_id: str,
    *,
    config: EnvironmentConfig,
    code: lambda_.Code,
    key: kms.IKey,
    topic: sns.ITopic,
    job_parameter: str,
    cursor: ssm.IStringParameter,
    artifacts_bucket: s3.IBucket,
    output_prefix: str,
) -> lambda_.Function:
    """The collector with a role scoped to its parameters, namespace, topic and backend."""
    stack = Stack.of(scope)
    holder = Construct(scope, construct_id)
    log_group = encrypted_log_group(holder, "Logs", config=config, key=key)
    role = function_role(
        holder,
        "Role",
        description=f"Training-metrics collector of environment {config.name}",
        log_group=log_group,
    )
    job_parameter_arn = stack.format_arn(
        service="ssm", resource="parameter", resource_name=job_parameter.lstrip("/")
    )
    statements = [
        iam.PolicyStatement(
            sid="FollowTheJobRecordAndCursor",
            actions=["ssm:GetParameter", "ssm:PutParameter"],
            resources=[job_parameter_arn, cursor.parameter_arn],
        ),
        iam.PolicyStatement(
            sid="PublishTrainingMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],  # PutMetricData has no resource-level permissions
            conditions={"StringEquals": {"cloudwatch:namespace": TRAINING_NAMESPACE}},
        ),
    ]
    statements += _backend_statements(stack, config, key, artifacts_bucket, output_prefix)
    for statement in statements:
        role.add_to_policy(statement)
    topic.grant_publish(role)

    function = lambda_.Function(
        holder,
        "Function",
        role=role,
        description=f"Bedrock RFT training-metrics collector ({config.name})",
        runtime=lambda_.Runtime.PYTHON_3_13,
        architecture=lambda_.Architecture.ARM_64,
        handler="handler.handler",
        code=code,
        # paging a long job's events on the first run takes seconds; a minute is ample
        timeout=Duration.minutes(2),
        memory_size=512,
        retry_attempts=0,  # a failed run is simply repeated by the next scheduled one
        log_group=log_group,
        tracing=lambda_.Tracing.ACTIVE,
        environment_encryption=key,
        environment={
            "RFT_ENVIRONMENT": config.name,
            "RFT_BACKEND": config.backend,
            "JOB_PARAMETER": job_parameter,
            "CURSOR_PARAMETER": cursor.parameter_name,
            "TOPIC_ARN": topic.topic_arn,
            "METRICS_NAMESPACE": TRAINING_NAMESPACE,
            "POWERTOOLS_SERVICE_NAME": "metrics",
            "LOG_LEVEL": "INFO",
            **mantle_route_environment(config),
        },
    )
    _acknowledge(function, role, config, artifacts_bucket, output_prefix.lstrip("/"))
    return function


def _backend_statements(
    stack: Stack,
    config: EnvironmentConfig,
    key: kms.IKey,
    artifacts_bucket: s3.IBucket,
    output_prefix: str,
) -> list[iam.PolicyStatement]:
    """Read access to the job of the environment's backend, nothing else."""
    if config.backend == "bedrock":
        prefix = output_prefix.lstrip("/")
        return [
            iam.PolicyStatement(
                sid="ReadCustomizationJobs",
                actions=["bedrock:GetModelCustomizationJob"],
                resources=[
                    stack.format_arn(
                        service="bedrock", resource="model-customization-job", resource_name="*"
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="ListJobOutput",
                actions=["s3:ListBucket"],
                resources=[artifacts_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            ),
            iam.PolicyStatement(
                sid="ReadJobOutput",
                actions=["s3:GetObject"],
                resources=[artifacts_bucket.arn_for_objects(f"{prefix}*")],
            ),
            iam.PolicyStatement(
                sid="DecryptJobOutput",
                actions=["kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            ),
        ]
    # OpenAI-compatible API: the function mints a short-term Bedrock API key from its own
    # credentials; calls made with it are authorized against this role. GetFineTuningJob
    # guards reading a job and listing its events and checkpoints (user guide, CloudTrail
    # events of bedrock-mantle: GET /v1/fine_tuning/jobs/{id}, /events, /checkpoints).
    return [
        project_statement(stack, config, "ReadFineTuningJobs", ["bedrock-mantle:GetFineTuningJob"]),
        bearer_token_statement(config, "UseShortTermApiKey"),
    ]


def _acknowledge(
    function: lambda_.Function,
    role: iam.Role,
    config: EnvironmentConfig,
    bucket: s3.IBucket,
    prefix: str,
) -> None:
    """The compliance findings on the collector, each with why it is safe here."""
    stack = Stack.of(function)
    acknowledge_runtime(function)
    policy = role.node.find_child("DefaultPolicy")
    acknowledge(
        policy,
        "AwsSolutions-IAM5[Resource::*]",
        "Wildcard resource only where the action has no resource-level permissions: "
        "PutMetricData (limited to the BedrockRft/Training namespace by condition), X-Ray "
        "trace upload"
        + (
            ""
            if config.backend == "bedrock"
            else ", and bedrock-mantle:CallWithBearerToken (" + token_scope_text(config) + ")"
        )
        + ".",
    )
    acknowledge(
        policy,
        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
        "Publishing to the encrypted notification topic needs data keys of the topic's own "
        "key (granted on that one key by grant_publish).",
    )
    if config.backend == "bedrock":
        jobs = stack.format_arn(
            service="bedrock", resource="model-customization-job", resource_name="*"
        )
        for finding, reason in (
            (
                f"Resource::{nag_text(stack, jobs)}",
                "Reads the status of customization jobs in this account and region; job ids "
                "are generated by Bedrock per job, so they cannot be named in advance.",
            ),
            (
                f"Resource::{nag_text(stack, bucket.arn_for_objects(f'{prefix}*'))}",
                "Reads the metrics files Bedrock writes under the job output prefix; each "
                "job writes to a folder named after its generated id.",
            ),
        ):
            acknowledge(policy, f"AwsSolutions-IAM5[{finding}]", reason)
    else:
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, projects_arn(stack))}]",
            "Reads fine-tuning jobs (GetFineTuningJob only): bedrock-mantle authorizes them on "
            "the project they run in, an account project of this region whose id the stack "
            "cannot know.",
        )
    acknowledge(
        function,
        "Serverless-LambdaDLQ",
        "Invoked by a schedule every few minutes; a failed run leaves the cursor where it "
        "was and the next run publishes everything since, so there is nothing to dead-letter.",
    )
    acknowledge(
        function,
        "Serverless-LambdaAsyncFailureDestination",
        "Scheduled runs are idempotent (cursor) and retried by the next tick; persistent "
        "failures raise the collector-errors alarm on the notification topic instead.",
    )
    acknowledge(
        function,
        "Serverless-LambdaDefaultReservedConcurrency",
        "One short run per schedule tick (plus rare manual backfills); reserving capacity "
        "would take it from the account's pool and fail deploys in small accounts.",
    )
    checkov_skip(
        function,
        "CKV_AWS_115",
        "One short run per schedule tick; reserving concurrency would take capacity from "
        "the account and fail deploys in accounts with a small concurrency limit.",
    )
    checkov_skip(
        function,
        "CKV_AWS_116",
        "Scheduled and idempotent: a failed run is repeated by the next tick from the "
        "cursor; the collector-errors alarm reports persistent failures.",
    )
    checkov_skip(function, "CKV_AWS_117", NO_VPC_REASON)
