"""Log groups as every construct here wants them (KMS-encrypted, with the configured retention),
and the Lambda role that writes to its own log group only."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import LOG_RETENTION_DAYS, EnvironmentConfig

# jsii names the enum members (ONE_DAY ...); they follow CloudWatch's allowed periods in order.
_RETENTION = dict(
    zip(LOG_RETENTION_DAYS, [m for m in logs.RetentionDays if m.name != "INFINITE"], strict=True)
)


def retention(days: int) -> logs.RetentionDays:
    """The CDK enum member for a retention of ``days`` (one of CloudWatch's periods)."""
    return _RETENTION[days]


def encrypted_log_group(
    scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey
) -> logs.LogGroup:
    """A log group encrypted with the environment's key, kept per the removal policy."""
    return logs.LogGroup(
        scope,
        construct_id,
        retention=retention(config.log_retention_days),
        encryption_key=key,
        removal_policy=(
            RemovalPolicy.DESTROY if config.removal_policy == "destroy" else RemovalPolicy.RETAIN
        ),
    )


def function_role(
    scope: Construct, construct_id: str, *, description: str, log_group: logs.ILogGroup
) -> iam.Role:
    """A Lambda function's own role that may write to ``log_group`` only (instead of
    AWSLambdaBasicExecutionRole, which writes anywhere); the caller adds the rest."""
    role = iam.Role(
        scope,
        construct_id,
        description=description,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    return role
