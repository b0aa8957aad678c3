"""One environment's deploy role: assumable only by this repository's deploy job for that
GitHub environment (OIDC), allowed only to assume the CDK bootstrap roles of its account and
region (the CDK CLI does the rest through those roles)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.config import CiConfig, EnvironmentConfig
from stacks.job import SERVICE_TIMEOUT

GITHUB_ISSUER = "token.actions.githubusercontent.com"
# The audience configure-aws-credentials requests by default (its `audience` input).
GITHUB_AUDIENCE = "sts.amazonaws.com"
# The reusable workflow that deploys one environment, and the only ref it deploys from
# (``ci.require_deploy_workflow``).
DEPLOY_WORKFLOW = ".github/workflows/deploy-environment.yml"
DEPLOY_REF = "refs/heads/main"
# How long one deploy can take, from the job custom resource's bound: CloudFormation waits up
# to its ServiceTimeout to create it and, when that fails, as long again for the rollback's
# delete; the other resources take minutes. The CDK CLI polls CloudFormation with credentials
# chained from this session (each chained session lasts at most 1 h and is refreshed from
# it), so the session must outlast the deploy. At least 2 h; IAM allows at most 12 h.
OTHER_RESOURCES = Duration.minutes(30)
MIN_SESSION = Duration.hours(2)


def deploy_session() -> Duration:
    """The deploy roles' maximum session (and the workflow's ``role-duration-seconds``)."""
    longest = 2 * SERVICE_TIMEOUT.to_seconds() + OTHER_RESOURCES.to_seconds()
    return Duration.seconds(max(longest, MIN_SESSION.to_seconds()))


# The roles `cdk bootstrap` creates and `cdk deploy` assumes: deploying the change set,
# publishing file and image assets, and context lookups.
BOOTSTRAP_ROLE_KINDS = ("deploy", "file-publishing", "image-publishing", "lookup")


def github_subjects(ci: CiConfig, github_environment: str) -> list[str]:
    """Every OIDC ``sub`` claim GitHub may issue to this repository's jobs in one GitHub
    environment, each matched exactly (no wildcard another owner, repository or environment
    could satisfy): the name-only form (unless ``legacy_subject`` is false) and, with the ids,
    the immutable forms. GitHub's changelog of 2026-04-23 shows ``owner-<id>/repo-<id>``, its
    OIDC reference and configure-aws-credentials' README show ``owner@<id>/repo@<id>``: both
    are trusted, as the sources disagree."""
    owner, name = ci.github_repository.split("/")
    repositories = [ci.github_repository] if ci.legacy_subject else []
    if ci.github_owner_id is not None and ci.github_repository_id is not None:
        for sep in ("-", "@"):
            repositories.append(
                f"{owner}{sep}{ci.github_owner_id}/{name}{sep}{ci.github_repository_id}"
            )
    # With the repository's subject customized to include_claim_keys [repo, context,
    # job_workflow_ref], GitHub appends the reusable workflow's ref: only main's deploy
    # workflow then matches. IAM conditions on ``sub`` and ``aud`` only (GitHub: "AWS doesn't
    # support custom claims for OIDC"), so the ref must travel inside ``sub``. GitHub does not
    # say whether job_workflow_ref carries the ids under the immutable format [open]: it is
    # matched by name, and the ids are already pinned by the ``repo`` segment.
    suffix = (
        f":job_workflow_ref:{ci.github_repository}/{DEPLOY_WORKFLOW}@{DEPLOY_REF}"
        if ci.require_deploy_workflow
        else ""
    )
    return [
        f"repo:{repository}:environment:{github_environment}{suffix}" for repository in repositories
    ]


def bootstrap_role_arns(stack: Stack, qualifier: str, region: str) -> list[str]:
    """The ARNs of the CDK bootstrap roles of ``stack``'s account in ``region``."""
    account = stack.account  # the AWS::AccountId reference where the stack is account-less
    return [
        f"arn:{stack.partition}:iam::{account}:role/cdk-{qualifier}-{kind}-role-{account}-{region}"
        for kind in BOOTSTRAP_ROLE_KINDS
    ]


class DeployRole(Construct):
    """The role the deploy job of one environment assumes (``role`` and its ``policy``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        ci: CiConfig,
        provider_arn: str,
        qualifier: str,
    ) -> None:
        super().__init__(scope, construct_id)
        subjects = github_subjects(ci, config.github_environment_name)
        self.role = iam.Role(
            self,
            "Role",
            # A known name, so the GitHub environment can be configured before the first deploy.
            role_name=f"bedrock-rft-deploy-{config.name}",
            description=(
                f"Deploys BedrockRft-{config.name} from GitHub environment "
                f"{config.github_environment_name} of {ci.github_repository}"
            ),
            assumed_by=iam.WebIdentityPrincipal(
                provider_arn,
                conditions={
                    "StringEquals": {
                        f"{GITHUB_ISSUER}:aud": GITHUB_AUDIENCE,
                        # a list: any one of the repository's forms, each compared whole
                        f"{GITHUB_ISSUER}:sub": subjects if len(subjects) > 1 else subjects[0],
                    }
                },
            ),
            max_session_duration=deploy_session(),
        )
        # A managed policy, not an inline one (the NIST and HIPAA packs flag inline policies).
        self.policy = iam.ManagedPolicy(
            self,
            "AssumeBootstrapRoles",
            description=f"Assume the CDK bootstrap roles of {config.region} only",
            statements=[
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"],
                    resources=bootstrap_role_arns(Stack.of(self), qualifier, config.region),
                )
            ],
            roles=[self.role],
        )
        if config.permissions_boundary_arn is not None:
            iam.PermissionsBoundary.of(self.role).apply(
                iam.ManagedPolicy.from_managed_policy_arn(
                    self, "Boundary", config.permissions_boundary_arn
                )
            )
