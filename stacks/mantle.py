"""IAM and settings for Bedrock's OpenAI-compatible API (service prefix ``bedrock-mantle``).

From the Service Authorization Reference ("Actions, resources, and condition keys for Amazon
Bedrock powered by AWS Mantle"): file, fine-tuning-job and inference actions require the
resource type ``project`` (``arn:${Partition}:bedrock-mantle:${Region}:${Account}:project/
${ResourceId}``); there is no resource type for a file or a job, so grants name this account's
projects in the environment's region. ``bedrock-mantle:Model`` conditions ``CreateInference``
and ``CreateFineTuningJob`` on the model; ``CallWithBearerToken`` has no resource type and is
conditioned on ``bedrock-mantle:BearerTokenType``. Using a Bedrock API key on this endpoint is
gated by ``bedrock-mantle:CallWithBearerToken`` alone (``bedrock:CallWithBearerToken`` gates
the ``bedrock-runtime`` endpoint; user guide, API keys permissions).

The values of both condition keys are not documented [open]: the model id as requests send it,
and ``SHORT_TERM`` (the documented value of ``bedrock:bearerTokenType`` for keys minted by
aws-bedrock-token-generator). ``mantle.condition_on_model`` / ``condition_on_token_type``
drop a condition that a first deploy proves wrong (see :class:`stacks.config.MantleConfig`).
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from stacks.config import EnvironmentConfig

MODEL_KEY = "bedrock-mantle:Model"
TOKEN_TYPE_KEY = "bedrock-mantle:BearerTokenType"  # noqa: S105 (a condition key)
SHORT_TERM = "SHORT_TERM"
BEARER_TOKEN_ACTION = "bedrock-mantle:CallWithBearerToken"  # noqa: S105 (an action)
# The user guide's minimal policy for inference on this endpoint ("Making inference
# requests") lists these with CreateInference: the service resolves the request's project.
# The guide writes "ListTagsForResources"; the Service Authorization Reference (which IAM
# and cfn-lint follow) names the action ListTagsForResource, which is what is granted.
INFERENCE_PROJECT_ACTIONS = (
    "bedrock-mantle:GetProject",
    "bedrock-mantle:ListProjects",
    "bedrock-mantle:ListTagsForResource",
)


def projects_arn(stack: Stack) -> str:
    """This account's ``bedrock-mantle`` projects in the stack's region."""
    return stack.format_arn(service="bedrock-mantle", resource="project", resource_name="*")


def project_statement(
    stack: Stack,
    config: EnvironmentConfig,
    sid: str,
    actions: Iterable[str],
    *,
    models: Iterable[str] | None = None,
) -> iam.PolicyStatement:
    """``actions`` on this account's projects; conditioned on ``models`` when given.

    Only actions that carry ``bedrock-mantle:Model`` may be given ``models``: for the others
    the key is absent from the request, and ``StringEquals`` on an absent key denies.
    """
    conditions = None
    if models is not None and config.mantle.condition_on_model:
        conditions = {"StringEquals": {MODEL_KEY: sorted(set(models))}}
    return iam.PolicyStatement(
        sid=sid, actions=list(actions), resources=[projects_arn(stack)], conditions=conditions
    )


def bearer_token_statement(config: EnvironmentConfig, sid: str) -> iam.PolicyStatement:
    """Using the short-term Bedrock API key the function mints from its own credentials."""
    conditions = None
    if config.mantle.condition_on_token_type:
        conditions = {"StringEquals": {TOKEN_TYPE_KEY: SHORT_TERM}}
    return iam.PolicyStatement(
        sid=sid,
        actions=[BEARER_TOKEN_ACTION],
        resources=["*"],  # CallWithBearerToken has no resource type
        conditions=conditions,
    )


def model_scope_text(config: EnvironmentConfig, models: Iterable[str]) -> str:
    """How a grant's models are limited, for acknowledgment reasons."""
    names = ", ".join(sorted(set(models)))
    if config.mantle.condition_on_model:
        return f"limited by the bedrock-mantle:Model condition to {names}"
    return f"not limited to {names}: this environment sets mantle.condition_on_model false"


def token_scope_text(config: EnvironmentConfig) -> str:
    """How the bearer-token grant is limited, for acknowledgment reasons."""
    if config.mantle.condition_on_token_type:
        return "limited to short-term keys by the bedrock-mantle:BearerTokenType condition"
    return "any token type: this environment sets mantle.condition_on_token_type false"


def mantle_route_environment(config: EnvironmentConfig) -> dict[str, str]:
    """The functions' ``BEDROCK_MANTLE_ROUTE`` when the environment overrides the route table."""
    return {"BEDROCK_MANTLE_ROUTE": config.mantle.route} if config.mantle.route else {}
