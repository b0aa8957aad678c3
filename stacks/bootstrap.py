"""Which CDK bootstrap an environment deploys through: its ``bootstrap_qualifier``, else the
app-wide qualifier (the CDK's context key, else the CDK's default)."""

from __future__ import annotations

from aws_cdk import DefaultStackSynthesizer
from constructs import Construct

from stacks.config import EnvironmentConfig

# The context key the CDK reads a custom bootstrap qualifier from (`cdk bootstrap --qualifier`).
QUALIFIER_CONTEXT = "@aws-cdk/core:bootstrapQualifier"


def app_qualifier(scope: Construct) -> str:
    """The qualifier of environments without one of their own."""
    return str(
        scope.node.try_get_context(QUALIFIER_CONTEXT) or DefaultStackSynthesizer.DEFAULT_QUALIFIER
    )


def qualifier_of(scope: Construct, config: EnvironmentConfig) -> str:
    """The qualifier of the bootstrap ``config``'s stack deploys through."""
    return config.bootstrap_qualifier or app_qualifier(scope)
