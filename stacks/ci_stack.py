"""The delivery stack ``BedrockRft-ci``: GitHub's OIDC provider and one deploy role per
environment, deployed once per account with administrator credentials (README, Deploying).

Opt-in: the app builds it only when cdk.json's context has a ``ci`` block. Environments
without an ``account`` share ``BedrockRft-ci`` (deployed to whichever account the credentials
name); environments with one get ``BedrockRft-ci-<account>``, pinned to that account.
"""

from __future__ import annotations

import re

from aws_cdk import Annotations, App, CfnOutput, Environment, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.bootstrap import app_qualifier
from stacks.config import CiConfig, EnvironmentConfig
from stacks.deploy_role import GITHUB_AUDIENCE, GITHUB_ISSUER, DeployRole


class CiStack(Stack):
    """The OIDC provider (or the account's existing one) and the environments' deploy roles."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ci: CiConfig,
        environments: list[EnvironmentConfig],
        qualifier: str,
        env: Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description="Bedrock RFT: GitHub OIDC deploy roles, one per environment",
        )
        account = None if env is None else env.account
        # The existing provider named in cdk.json, where it is this stack's account's.
        if ci.oidc_provider_arn is not None and account in (
            None,
            _arn_account(ci.oidc_provider_arn),
        ):
            provider_arn = ci.oidc_provider_arn
        else:
            provider = iam.OidcProviderNative(
                self,
                "GitHubOidc",
                url=f"https://{GITHUB_ISSUER}",
                client_ids=[GITHUB_AUDIENCE],
            )
            provider_arn = provider.oidc_provider_arn
        self.environments = environments
        self.deploy_roles: dict[str, DeployRole] = {}
        # Environments whose deploy roles reach the same bootstrap roles, and so each other's
        # stacks (one account and region, one qualifier): said at synth, not refused, since
        # existing deployments share the default qualifier (docs/delivery.md).
        self.shared_bootstraps = shared_bootstraps(environments, qualifier)
        for names in self.shared_bootstraps:
            Annotations.of(self).add_warning_v2(
                "bedrock-rft:shared-bootstrap",
                f"environments {', '.join(names)} deploy through the same CDK bootstrap roles: "
                "each one's deploy role can deploy over the others; give each a "
                "bootstrap_qualifier (docs/delivery.md)",
            )
        for config in environments:
            role = DeployRole(
                self,
                f"Deploy-{config.name}",
                config=config,
                ci=ci,
                provider_arn=provider_arn,
                qualifier=config.bootstrap_qualifier or qualifier,
            )
            self.deploy_roles[config.name] = role
            CfnOutput(
                self,
                f"DeployRoleArn-{config.name}",
                value=role.role.role_arn,
                description=(
                    f"Set as variable AWS_DEPLOY_ROLE_ARN of GitHub environment "
                    f"'{config.github_environment_name}'"
                ),
            )


def shared_bootstraps(environments: list[EnvironmentConfig], qualifier: str) -> list[list[str]]:
    """The names of environments that share one account, region and bootstrap qualifier."""
    groups: dict[tuple[str | None, str, str], list[str]] = {}
    for config in environments:
        key = (config.account, config.region, config.bootstrap_qualifier or qualifier)
        groups.setdefault(key, []).append(config.name)
    return [names for _, names in sorted(groups.items(), key=str) if len(names) > 1]


def _arn_account(arn: str) -> str | None:
    match = re.match(r"^arn:[^:]+:iam::(\d{12}):", arn)
    return match.group(1) if match else None


def ci_stack_name(account: str | None) -> str:
    """``BedrockRft-ci`` for the environments without an account, else per account."""
    return "BedrockRft-ci" if account is None else f"BedrockRft-ci-{account}"


def add_ci_stacks(app: App, ci: CiConfig, environments: list[EnvironmentConfig]) -> list[CiStack]:
    """One CI stack per account the environments name (account-less ones share one)."""
    qualifier = app_qualifier(app)
    groups: dict[str | None, list[EnvironmentConfig]] = {}
    for config in environments:
        groups.setdefault(config.account, []).append(config)
    return [
        CiStack(
            app,
            ci_stack_name(account),
            ci=ci,
            environments=members,
            qualifier=qualifier,
            env=None if account is None else Environment(account=account),
        )
        for account, members in sorted(groups.items(), key=lambda item: item[0] or "")
    ]
