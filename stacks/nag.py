"""Compliance gates: cdk-nag 3.x rule packs and checkov skips, each scoped and reasoned.

Packs are policy-validation plugins (``Validations.of(app).add_plugins``): a finding that is
not acknowledged fails synth. Every acknowledgment sits on the construct it excuses, with a
reason that says why it is safe there. checkov reads skips from the resource's template
metadata (``Metadata.checkov.skip``), so they too travel with the resource they excuse.
"""

from __future__ import annotations

from collections.abc import Iterable

import jsii
from aws_cdk import (
    Acknowledgment,
    CfnResource,
    IPolicyValidationContext,
    IPolicyValidationPlugin,
    PolicyValidationPluginReport,
    Stack,
    Validations,
)
from aws_cdk import aws_iam as iam
from cdk_nag import (
    AwsSolutionsChecks,
    HIPAASecurityChecks,
    NagPack,
    NIST80053R4Checks,
    NIST80053R5Checks,
    PCIDSS321Checks,
    ServerlessChecks,
)
from constructs import IConstruct

from stacks.config import COMPLIANCE_PACKS

# The packs an environment may require (``compliance_packs``), by their name in cdk.json.
COMPLIANCE_PACK_CLASSES: dict[str, type[NagPack]] = {
    "HIPAASecurity": HIPAASecurityChecks,
    "NIST80053R4": NIST80053R4Checks,
    "NIST80053R5": NIST80053R5Checks,
    "PCIDSS321": PCIDSS321Checks,
}
assert tuple(sorted(COMPLIANCE_PACK_CLASSES)) == COMPLIANCE_PACKS


def rule_packs(scope: IConstruct | None = None) -> list[NagPack]:
    """The packs the project gates on everywhere (AwsSolutions and Serverless)."""
    return [AwsSolutionsChecks(scope), ServerlessChecks(scope)]


def compliance_packs(names: Iterable[str], scope: IConstruct | None = None) -> list[NagPack]:
    """The packs named in an environment's ``compliance_packs``."""
    return [COMPLIANCE_PACK_CLASSES[name](scope) for name in names]


def apply_rule_packs(app: IConstruct) -> None:
    """Register the packs on the whole app: synth fails on any unacknowledged finding."""
    Validations.of(app).add_plugins(*rule_packs(app))


@jsii.implements(IPolicyValidationPlugin)
class StackGate:
    """One pack as a validation plugin that checks one stack's construct tree.

    cdk-nag's packs walk the whole app, and plugins can be registered on an app or stage
    only: this wrapper is how a pack gates one environment's stack and no other.
    """

    def __init__(self, pack: NagPack, stack: Stack) -> None:
        self._pack = pack
        self._stack = stack

    @property
    def name(self) -> str:
        """The pack's own name (a finding's path names the stack), as the app-wide packs."""
        return self._pack.read_pack_name

    @property
    def rule_ids(self) -> list[str] | None:
        """Not listed (the pack decides its rules)."""
        return None

    @property
    def version(self) -> str | None:
        """Not reported."""
        return None

    def validate(self, context: IPolicyValidationContext) -> PolicyValidationPluginReport:
        """The pack's findings on the stack's resources only."""
        return self._pack.validate_scope(self._stack)


def apply_compliance_packs(stack: Stack, names: Iterable[str]) -> None:
    """Gate ``stack`` (only) on the packs ``names``: synth fails on an unacknowledged finding
    of those packs in that stack's resources."""
    gates = [StackGate(pack, stack) for pack in compliance_packs(names)]
    if gates:
        Validations.of(stack.node.root).add_plugins(*gates)


# Every acknowledgment made while building the app: (construct path, finding id, reason), for
# `make acknowledgments`, the reviewers' list of what the gate lets through and why.
ACKNOWLEDGED: list[tuple[str, str, str]] = []


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one finding (exact id, granular where the rule has one) on ``scope``."""
    if len(reason) < 20:
        raise ValueError(f"acknowledgment of {rule_id} needs a specific reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
    ACKNOWLEDGED.append((scope.node.path, rule_id, reason))


def nag_text(stack: Stack, value: str) -> str:
    """How cdk-nag spells a (token-bearing) ARN in a finding id: ``Ref`` as ``<Id>``,
    ``Fn::GetAtt`` as ``<Id.Attr>``, joined parts as written."""
    resolved = stack.resolve(value)
    if isinstance(resolved, str):
        return resolved
    if isinstance(resolved, dict) and "Fn::Join" in resolved:
        separator, parts = resolved["Fn::Join"]
        return str(separator).join(_nag_part(part) for part in parts)
    return _nag_part(resolved)


def _nag_part(part: object) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and "Ref" in part:
        return f"<{part['Ref']}>"
    if isinstance(part, dict) and "Fn::GetAtt" in part:
        return f"<{'.'.join(part['Fn::GetAtt'])}>"
    raise ValueError(f"cannot spell {part!r} as cdk-nag does")


# The runtime the Lambda bundles are built for (stacks/bundling.py: cp313 arm64 wheels).
PINNED_RUNTIME_REASON = (
    "Pinned to Python 3.13: the function's dependencies are bundled as CPython 3.13 arm64 "
    "wheels and tested on that runtime; moving runtime is a deliberate, tested change."
)


FRAMEWORK_RUNTIME_REASON = (
    "A handler generated by aws-cdk-lib, which chooses its runtime (this app cannot set it); "
    "it moves forward with aws-cdk-lib upgrades and runs only during deploys."
)


def acknowledge_runtime(function: IConstruct, reason: str = PINNED_RUNTIME_REASON) -> None:
    """Acknowledge the 'not the newest runtime' findings: the project's own functions are
    pinned to 3.13 (the default reason); aws-cdk-lib's generated handlers pass
    :data:`FRAMEWORK_RUNTIME_REASON`."""
    for rule_id in ("AwsSolutions-L1", "Serverless-LambdaLatestVersion"):
        acknowledge(function, rule_id, reason)


# The extra packs (pack name as cdk-nag prefixes its finding ids) that carry a rule, read from
# cdk-nag 3.0.2's packs: an exemption is acknowledged in exactly the packs that would report it.
PACK_RULES: dict[str, tuple[str, ...]] = {
    "IAMNoInlinePolicy": ("HIPAA.Security", "NIST.800.53.R4", "NIST.800.53.R5", "PCI.DSS.321"),
    "LambdaConcurrency": ("HIPAA.Security", "NIST.800.53.R5"),
    "LambdaDLQ": ("HIPAA.Security", "NIST.800.53.R5"),
    "LambdaInsideVPC": ("HIPAA.Security", "NIST.800.53.R4", "NIST.800.53.R5", "PCI.DSS.321"),
    "S3BucketReplicationEnabled": (
        "HIPAA.Security",
        "NIST.800.53.R4",
        "NIST.800.53.R5",
        "PCI.DSS.321",
    ),
    "S3DefaultEncryptionKMS": ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321"),
}

# checkov checks whose nag equivalent is a rule of the extra packs: one exemption, one reason,
# both tools (reserved concurrency, dead-letter queue, VPC of a Lambda function).
CHECKOV_PACK_RULES = {
    "CKV_AWS_115": "LambdaConcurrency",
    "CKV_AWS_116": "LambdaDLQ",
    "CKV_AWS_117": "LambdaInsideVPC",
}


def acknowledge_in_packs(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge ``rule`` (e.g. ``LambdaDLQ``) on ``scope`` in every extra pack that has it."""
    for pack in PACK_RULES[rule]:
        acknowledge(scope, f"{pack}-{rule}", reason)


INLINE_POLICY_REASON = (
    "The policy of one role of this stack (aws-cdk-lib writes a role's grants to it): it cannot "
    "be attached to another principal and is deleted with its role; a managed policy would add "
    "a reusable object and no restriction. Any wildcard in it has its own AwsSolutions-IAM5 "
    "acknowledgment."
)


def acknowledge_inline_policies(stack: Stack) -> None:
    """Acknowledge the extra packs' no-inline-policy rule on every policy of ``stack`` that is
    attached to exactly one role (and to no user or group); any other stays a finding."""
    for construct in stack.node.find_all():
        if isinstance(construct, iam.CfnPolicy):
            # lazy lists until resolved (grants may still add to them until the stack is built)
            roles, users, groups = (
                stack.resolve(value) or []
                for value in (construct.roles, construct.users, construct.groups)
            )
            if len(roles) == 1 and not users and not groups:
                acknowledge_in_packs(construct, "IAMNoInlinePolicy", INLINE_POLICY_REASON)


def checkov_skip(scope: IConstruct, check_id: str, reason: str) -> None:
    """Skip checkov check ``check_id`` on ``scope``'s CloudFormation resource, with a reason;
    where an extra nag pack has the same rule (:data:`CHECKOV_PACK_RULES`), acknowledge it
    there too, with the same reason."""
    if check_id in CHECKOV_PACK_RULES:
        acknowledge_in_packs(scope, CHECKOV_PACK_RULES[check_id], reason)
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to annotate")
    metadata = resource.get_metadata("checkov") or {}
    skips = [*metadata.get("skip", []), {"id": check_id, "comment": reason}]
    resource.add_metadata("checkov", {**metadata, "skip": skips})


NO_VPC_REASON = (
    "Calls only public AWS service endpoints and reaches no private network resource; a VPC "
    "would add NAT cost and a failure mode (custom resources that never answer) and no isolation."
)


def skip_framework_function_checks(function: IConstruct, what: str) -> None:
    """checkov skips for a Lambda that aws-cdk-lib generates and runs only at deploy time."""
    for check_id, reason in (
        (
            "CKV_AWS_115",
            f"{what}: runs only during deploys, a handful of invocations; "
            "reserving concurrency would take capacity from the account for nothing.",
        ),
        (
            "CKV_AWS_116",
            f"{what}: invoked synchronously by CloudFormation; a failure fails the "
            "deploy, there is no asynchronous event to dead-letter.",
        ),
        ("CKV_AWS_117", f"{what}: {NO_VPC_REASON}"),
        ("CKV_AWS_173", f"{what}: generated by aws-cdk-lib; its environment holds no secrets."),
    ):
        checkov_skip(function, check_id, reason)


def acknowledge_auto_delete_provider(stack: Stack) -> None:
    """Skips for aws-cdk-lib's bucket auto-delete handler (present where buckets auto-delete)."""
    provider = stack.node.try_find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
    if provider is not None:
        skip_framework_function_checks(
            provider.node.find_child("Handler"), "aws-cdk-lib's S3 auto-delete handler"
        )
