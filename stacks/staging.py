"""Staging: the environment's KMS key, its S3 buckets, and the uploaded dataset.

The dataset folder lands under a content-addressed prefix (``datasets/<name>/<digest>/``), so a
changed dataset gets a new prefix and a job can name exactly the data it was trained on. With
``removal_policy: retain`` old prefixes stay until a user deletes them (``prune`` is off and
the deployment retains on delete). With ``removal_policy: destroy`` they do not: aws-cdk-lib's
BucketDeployment handler, not retaining on delete, removes the previous prefix (``aws s3 rm
--recursive``) when an update moves it to a new one; a rollback uploads it again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aws_cdk import AssetHashType, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from stacks.bootstrap import qualifier_of
from stacks.config import EnvironmentConfig
from stacks.log_groups import encrypted_log_group
from stacks.nag import (
    FRAMEWORK_RUNTIME_REASON,
    acknowledge,
    acknowledge_auto_delete_provider,
    acknowledge_in_packs,
    acknowledge_runtime,
    checkov_skip,
    nag_text,
    skip_framework_function_checks,
)

DATASET_FILES = ("train.jsonl", "validation.jsonl")
OUTPUT_PREFIX = "output/"
# Rollout samples the reward function keeps (grading/rollouts.py), one folder per environment.
ROLLOUTS_PREFIX = "rollouts/"


def dataset_digest(folder: Path) -> str:
    """A short content address of the dataset files in ``folder`` (names and bytes)."""
    digest = hashlib.sha256()
    for name in DATASET_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


class Staging(Construct):
    """KMS key, log / datasets / artifacts buckets, and the dataset upload."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, project_root: Path
    ) -> None:
        super().__init__(scope, construct_id)
        destroy = config.removal_policy == "destroy"
        removal = RemovalPolicy.DESTROY if destroy else RemovalPolicy.RETAIN
        stack = Stack.of(self)

        self.key = kms.Key(
            self,
            "Key",
            description=f"Bedrock RFT data of environment {config.name}",
            alias=f"alias/bedrock-rft/{config.name}",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=removal,
        )
        # CloudWatch Logs encrypts this environment's log groups with the key; the condition
        # keeps the grant to log groups of this account and region.
        log_groups = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
            )
        )

        # S3 server access logs cannot be delivered to an SSE-KMS bucket: this one bucket uses
        # SSE-S3 (it holds request logs, never training data).
        self.log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            versioned=True,
            removal_policy=removal,
            auto_delete_objects=destroy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(max(config.log_retention_days, 1)),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        for rule_id in ("AwsSolutions-S1", "CKV_AWS_18"):
            reason = "This is the access-log destination itself; logging it to itself would loop."
            if rule_id.startswith("CKV"):
                checkov_skip(self.log_bucket, rule_id, reason)
            else:
                acknowledge(self.log_bucket, rule_id, reason)

        acknowledge_in_packs(
            self.log_bucket,
            "S3DefaultEncryptionKMS",
            "S3 server access logs can be delivered only to a bucket with SSE-S3 default "
            "encryption, not SSE-KMS; this bucket holds request logs, never training data.",
        )
        acknowledge_in_packs(
            self.log_bucket,
            "S3BucketReplicationEnabled",
            "Request logs of this stack's two buckets, versioned and expired after the "
            "environment's log retention; a replica in a second region would outlive that "
            "retention and add a copy to govern, for logs that are not a system of record.",
        )

        self.datasets_bucket = self._data_bucket("Datasets", "datasets/", config, removal)
        acknowledge_in_packs(
            self.datasets_bucket,
            "S3BucketReplicationEnabled",
            "Holds copies of datasets kept in the repository, uploaded again by every deploy; "
            "versioned, KMS-encrypted; replicating training data into a second region would "
            "only move it where data-residency rules may not allow it.",
        )
        self.artifacts_bucket = self._data_bucket("Artifacts", "artifacts/", config, removal)
        # Prompts and responses are the user's data: the samples expire (docs/observability.md);
        # a day later their old versions go too (the bucket is versioned).
        self.artifacts_bucket.add_lifecycle_rule(
            id="expire-rollout-samples",
            prefix=ROLLOUTS_PREFIX,
            expiration=Duration.days(config.observability.rollout_retention_days),
            noncurrent_version_expiration=Duration.days(1),
        )
        self.rollouts_prefix = f"{ROLLOUTS_PREFIX}{config.name}"
        acknowledge_in_packs(
            self.artifacts_bucket,
            "S3BucketReplicationEnabled",
            "Job output and evaluation summaries, versioned and KMS-encrypted, reproducible "
            "by running the job or evaluation again; the trained model itself lives in "
            "Bedrock. Cross-region replication would copy derived training data out of region.",
        )

        dataset_dir = project_root / config.dataset
        self.dataset_digest = dataset_digest(dataset_dir)
        self.dataset_prefix = f"datasets/{dataset_dir.name}/{self.dataset_digest}/"
        self.train_key = f"{self.dataset_prefix}train.jsonl"
        self.validation_key: str | None = (
            f"{self.dataset_prefix}validation.jsonl"
            if (dataset_dir / "validation.jsonl").is_file()
            else None
        )
        self.output_prefix = OUTPUT_PREFIX

        upload_logs = encrypted_log_group(self, "DatasetUploadLogs", config=config, key=self.key)
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Dataset",
            sources=[
                # The content address as the asset hash: aws-cdk-lib's fingerprint cache
                # (inode, mtime, size) can hand back a stale hash for a rewritten file.
                s3deploy.Source.asset(
                    str(dataset_dir),
                    exclude=["*", "!train.jsonl", "!validation.jsonl"],
                    asset_hash=f"dataset {self.dataset_digest}",
                    asset_hash_type=AssetHashType.CUSTOM,
                )
            ],
            destination_bucket=self.datasets_bucket,
            destination_key_prefix=self.dataset_prefix,
            # prune only concerns files inside the current prefix; the previous prefix is
            # removed on update with destroy (retain_on_delete false; module docstring).
            prune=False,
            retain_on_delete=not destroy,
            server_side_encryption=s3deploy.ServerSideEncryption.AWS_KMS,
            server_side_encryption_aws_kms_key_id=self.key.key_id,
            memory_limit=512,
            log_group=upload_logs,
        )
        self._acknowledge_deployment_handler(config)
        acknowledge_auto_delete_provider(stack)

    def _acknowledge_deployment_handler(self, config: EnvironmentConfig) -> None:
        """Acknowledge the findings on aws-cdk-lib's own BucketDeployment handler.

        The handler is a stack-level singleton generated by aws-cdk-lib, run only by
        CloudFormation during deploys; its role is scoped to the bootstrap asset bucket and
        this datasets bucket.
        """
        stack = Stack.of(self)
        handler = next(
            child
            for child in stack.node.children
            if child.node.id.startswith("Custom::CDKBucketDeployment")
        )
        policy = handler.node.find_child("ServiceRole").node.find_child("DefaultPolicy")
        account = config.account or "<AWS::AccountId>"
        copy_reason = (
            "aws-cdk-lib's BucketDeployment grants its handler these read/write action groups "
            "to copy the dataset from the CDK asset bucket into the datasets bucket."
        )
        for action in (
            "s3:GetBucket*",
            "s3:GetObject*",
            "s3:List*",
            "s3:Abort*",
            "s3:DeleteObject*",
            "kms:GenerateDataKey*",
            "kms:ReEncrypt*",
        ):
            acknowledge(policy, f"AwsSolutions-IAM5[Action::{action}]", copy_reason)
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::arn:aws:s3:::cdk-{qualifier_of(stack, config)}-assets-"
            f"{account}-"
            f"{stack.region}/*]",
            "Reads the dataset's asset zip from the CDK bootstrap asset bucket of this "
            "account and region, whose object names are content hashes.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::"
            f"{nag_text(stack, self.datasets_bucket.arn_for_objects('*'))}]",
            "Writes the dataset files under the datasets bucket; the key prefix is chosen per "
            "deploy (content-addressed), and the bucket holds nothing else of value to it.",
        )
        acknowledge(
            handler.node.find_child("ServiceRole"),
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "aws-cdk-lib's BucketDeployment handler role; the managed policy only allows "
            "writing its own CloudWatch logs.",
        )
        acknowledge_runtime(handler, FRAMEWORK_RUNTIME_REASON)
        skip_framework_function_checks(handler, "aws-cdk-lib's BucketDeployment handler")
        for rule_id, reason in (
            (
                "Serverless-LambdaDLQ",
                "Invoked synchronously by CloudFormation as a custom resource; failures surface "
                "as a failed deploy, not as lost asynchronous events.",
            ),
            (
                "Serverless-LambdaTracing",
                "aws-cdk-lib's deploy-time copy handler; deploy failures are reported by "
                "CloudFormation with the handler's log, tracing adds nothing.",
            ),
        ):
            acknowledge(handler, rule_id, reason)

    @property
    def train_s3_uri(self) -> str:
        """``s3://`` URI of the training file."""
        return f"s3://{self.datasets_bucket.bucket_name}/{self.train_key}"

    @property
    def validation_s3_uri(self) -> str | None:
        """``s3://`` URI of the validation file, if the dataset has one."""
        if self.validation_key is None:
            return None
        return f"s3://{self.datasets_bucket.bucket_name}/{self.validation_key}"

    @property
    def rollouts_s3_uri(self) -> str:
        """``s3://bucket/prefix`` of this environment's rollout samples (no trailing slash)."""
        return f"s3://{self.artifacts_bucket.bucket_name}/{self.rollouts_prefix}"

    @property
    def output_s3_uri(self) -> str:
        """``s3://`` URI under which jobs write their output."""
        return f"s3://{self.artifacts_bucket.bucket_name}/{self.output_prefix}"

    def _data_bucket(
        self, construct_id: str, log_prefix: str, config: EnvironmentConfig, removal: RemovalPolicy
    ) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix=log_prefix,
            removal_policy=removal,
            auto_delete_objects=removal == RemovalPolicy.DESTROY,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(
                        config.noncurrent_version_expiration_days
                    ),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )
