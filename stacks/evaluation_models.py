"""Which ids the evaluation calls the models by, and the IAM resources those calls need.

The base model: jobs are trained from ``base_model``; inference may need another id. The
OpenAI-compatible endpoint takes the same id (``openai.gpt-oss-20b``). Nova 2 Lite is trained
as ``amazon.nova-2-lite-v1:0:256k`` (the context-window variant) and is served on demand only
through cross-Region inference profiles (``us.amazon.nova-2-lite-v1:0``, ``global.`` ...;
Amazon Nova user guide, "Core inference"): the derived id drops the context-window suffix and
adds the geography of the environment's region. ``evaluation.base_inference_model`` overrides
the derivation when a model is served otherwise.

The tuned model: OpenAI-compatible jobs name it in ``fine_tuned_model``, whose format Bedrock
does not document [open; settled by the first succeeded job]. The grant assumes OpenAI's
``ft:<base model>:...``; a tuned model refused with AccessDenied on
``bedrock-mantle:CreateInference`` means the assumption is wrong, and
``mantle.condition_on_model: false`` drops the model condition (as for every mantle grant).
Native jobs are served through an on-demand deployment: ``custom-model-deployment/*``.
"""

from __future__ import annotations

import re

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from stacks.bedrock_arns import foundation_model_arn, profile_foundation_arn
from stacks.config import EnvironmentConfig
from stacks.mantle import MODEL_KEY

# "amazon.nova-2-lite-v1:0:256k" -> "amazon.nova-2-lite-v1:0": the trained variant's suffix.
_CONTEXT_SUFFIX = re.compile(r":\d+k$")
# Cross-Region inference profile prefixes by the region's geography (Bedrock user guide,
# "Supported cross-Region inference profiles").
_GEOGRAPHIES = (("us-gov-", "us-gov"), ("us-", "us"), ("eu-", "eu"), ("ap-", "apac"))
PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.")


def base_inference_model(config: EnvironmentConfig) -> str:
    """The id the evaluation calls the base model by."""
    if config.evaluation.base_inference_model:
        return config.evaluation.base_inference_model
    if config.backend == "openai":
        return config.base_model
    model = _CONTEXT_SUFFIX.sub("", config.base_model)
    for region_prefix, geography in _GEOGRAPHIES:
        if config.region.startswith(region_prefix):
            return f"{geography}.{model}"
    return model


def tuned_model_pattern(config: EnvironmentConfig) -> str:
    """The ``bedrock-mantle:Model`` pattern the tuned models of this environment match."""
    return f"ft:{config.base_model}:*"


def mantle_inference_statement(stack: Stack, config: EnvironmentConfig) -> iam.PolicyStatement:
    """``CreateInference`` for the base model and the environment's fine-tuned models."""
    conditions = None
    if config.mantle.condition_on_model:
        conditions = {
            "StringLike": {MODEL_KEY: [base_inference_model(config), tuned_model_pattern(config)]}
        }
    return iam.PolicyStatement(
        sid="InferenceOfBaseAndTunedModels",
        actions=["bedrock-mantle:CreateInference"],
        resources=[
            stack.format_arn(service="bedrock-mantle", resource="project", resource_name="*")
        ],
        conditions=conditions,
    )


def bedrock_inference_statements(
    stack: Stack, config: EnvironmentConfig
) -> list[iam.PolicyStatement]:
    """``InvokeModel`` (Converse) on the base model and this account's custom deployments.

    A cross-Region inference profile needs the profile and the foundation model in every
    Region it may route to; the latter only through that profile (``bedrock:InferenceProfileArn``).
    """
    model = base_inference_model(config)
    deployments = stack.format_arn(
        service="bedrock", resource="custom-model-deployment", resource_name="*"
    )
    statements = [
        iam.PolicyStatement(
            sid="InvokeTunedDeployments",
            actions=["bedrock:InvokeModel"],
            resources=[deployments],
        )
    ]
    if model.startswith(PROFILE_PREFIXES):
        profile = stack.format_arn(
            service="bedrock", resource="inference-profile", resource_name=model
        )
        statements += [
            # GetInferenceProfile: AWS's inference prerequisites list it for inference through
            # a profile (its cross-Region examples grant InvokeModel alone: both are granted).
            iam.PolicyStatement(
                sid="InvokeBaseModelProfile",
                actions=["bedrock:InvokeModel", "bedrock:GetInferenceProfile"],
                resources=[profile],
            ),
            iam.PolicyStatement(
                sid="InvokeBaseModelThroughProfile",
                actions=["bedrock:InvokeModel"],
                resources=[profile_foundation_arn(stack, model)],
                conditions={"StringEquals": {"bedrock:InferenceProfileArn": profile}},
            ),
        ]
    else:
        statements.append(
            iam.PolicyStatement(
                sid="InvokeBaseModel",
                actions=["bedrock:InvokeModel"],
                resources=[foundation_model_arn(stack, model)],
            )
        )
    return statements
