"""ARNs of Bedrock's foundation models, as the stacks' IAM statements name them."""

from __future__ import annotations

from aws_cdk import Stack


def foundation_model_arn(stack: Stack, model_id: str) -> str:
    """The foundation model ``model_id`` in the stack's Region (no account: AWS owns it)."""
    return stack.format_arn(
        service="bedrock", account="", resource="foundation-model", resource_name=model_id
    )


def profile_foundation_arn(stack: Stack, profile_id: str) -> str:
    """The foundation model behind a cross-Region inference profile, in any Region."""
    foundation = profile_id.split(".", 1)[1]
    return f"arn:{stack.partition}:bedrock:*::foundation-model/{foundation}"
