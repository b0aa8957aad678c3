"""The role Bedrock assumes to run a native (``CreateModelCustomizationJob``) RFT job.

Trust is limited to Bedrock acting for this account's model-customization jobs (both
confused-deputy conditions); the role reads only the dataset prefix, writes only the output
prefix, invokes only the reward function, and uses the key only through S3 and Bedrock.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.nag import acknowledge, nag_text


class BedrockServiceRole(Construct):
    """Service role for native Bedrock customization jobs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        datasets_bucket: s3.IBucket,
        dataset_prefix: str,
        artifacts_bucket: s3.IBucket,
        output_prefix: str,
        reward_function: lambda_.IFunction,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        job_arns = (
            f"arn:{stack.partition}:bedrock:{stack.region}:{stack.account}"
            ":model-customization-job/*"
        )
        self.role = iam.Role(
            self,
            "Role",
            description="Assumed by Bedrock to run this environment's RFT customization jobs",
            assumed_by=iam.ServicePrincipal(
                "bedrock.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {"aws:SourceArn": job_arns},
                },
            ),
        )
        read_dataset = datasets_bucket.arn_for_objects(f"{dataset_prefix}*")
        write_output = artifacts_bucket.arn_for_objects(f"{output_prefix}*")
        grader_versions = f"{reward_function.function_arn}:*"
        statements = [
            iam.PolicyStatement(
                sid="ReadDataset",
                actions=["s3:GetObject"],
                resources=[read_dataset],
            ),
            iam.PolicyStatement(
                sid="ListDataset",
                actions=["s3:ListBucket"],
                resources=[datasets_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{dataset_prefix}*"]}},
            ),
            iam.PolicyStatement(
                sid="WriteOutput",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[write_output],
            ),
            iam.PolicyStatement(
                sid="ListOutput",
                actions=["s3:ListBucket"],
                resources=[artifacts_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{output_prefix}*"]}},
            ),
            iam.PolicyStatement(
                sid="InvokeGrader",
                actions=["lambda:InvokeFunction"],
                # the job may name the function or one of its published versions
                resources=[reward_function.function_arn, grader_versions],
            ),
            iam.PolicyStatement(
                sid="UseKeyThroughS3",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="UseKeyThroughBedrock",
                actions=[
                    "kms:Decrypt",
                    "kms:GenerateDataKey",
                    "kms:DescribeKey",
                    "kms:CreateGrant",
                ],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"bedrock.{stack.region}.amazonaws.com"}
                },
            ),
        ]
        policy = iam.Policy(self, "Policy", statements=statements)
        policy.attach_to_role(self.role)
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, read_dataset)}]",
            "Read access is limited to the objects of this dataset's content-addressed prefix.",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, write_output)}]",
            "Bedrock writes job output objects whose names it chooses, under the output prefix.",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, grader_versions)}]",
            "The job may invoke a published version of the reward function, whose number is "
            "only known after deploy; the grant stays on this one function.",
        )
