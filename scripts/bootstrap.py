"""``make bootstrap ENV=<name>``: a CDK bootstrap of the environment's own qualifier, whose
CloudFormation execution role holds a generated least-privilege policy instead of
AdministratorAccess.

The policy is generated from the environment's synthesized template: for every resource type
it contains, the IAM actions CloudFormation's resource handlers need to create, read, update
and delete it (the CloudFormation registry's resource schemas, ``handlers.<op>.permissions``,
as shipped with the pinned cfn-lint), and ``lambda:InvokeFunction`` for custom resources
(CloudFormation invokes their service token). A resource type without a schema fails with
one line naming it: nothing is guessed. A managed policy holds at most 6,144 characters, so
the actions are split over as many policies as needed (``bedrock-rft-cfn-exec-<env>-<n>``).

The shared default qualifier is never re-bootstrapped: other CDK apps of the account may
deploy through it, and narrowing its execution role would break them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.preconditions import PreconditionError, read_environments  # noqa: E402
from stacks.config import ConfigError, EnvironmentConfig, load_environments  # noqa: E402

# IAM's limit for a managed policy document, whitespace not counted.
POLICY_MAX_CHARS = 6144
# Headroom for the statement around the actions.
POLICY_BUDGET = POLICY_MAX_CHARS - 200
IAM_ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9]+\*?")
HANDLER_OPERATIONS = ("create", "read", "update", "delete")  # not "list": CloudFormation's own
CUSTOM_RESOURCE_ACTIONS = ("lambda:InvokeFunction",)
# The template's BootstrapVersion parameter: CloudFormation reads the bootstrap's SSM parameter.
TEMPLATE_ACTIONS = ("ssm:GetParameters",)


class BootstrapError(Exception):
    """A user error: the one line to print."""


def _schemas_dir() -> Path:
    import cfnlint

    return Path(cfnlint.__file__).parent / "data" / "schemas"


@cache
def _provider_index(region: str) -> dict[str, str]:
    path = _schemas_dir() / "providers" / f"{region}.json"
    if not path.is_file():
        path = _schemas_dir() / "providers" / "us-east-1.json"
    index: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return index


def handler_actions(resource_type: str, region: str) -> set[str]:
    """The IAM actions CloudFormation needs to manage one resource type in ``region``."""
    if (
        resource_type.startswith("Custom::")
        or resource_type == "AWS::CloudFormation::CustomResource"
    ):
        return set(CUSTOM_RESOURCE_ACTIONS)
    if resource_type == "AWS::CDK::Metadata":
        return set()  # handled by CloudFormation itself
    schema_id = _provider_index(region).get(resource_type)
    if schema_id is None:
        raise BootstrapError(
            f"resource type {resource_type}: no CloudFormation schema for {region} in cfn-lint's "
            "data; cannot derive its permissions (upgrade cfn-lint, or deploy it otherwise)"
        )
    schema = json.loads(
        (_schemas_dir() / "resources" / f"{schema_id}.json").read_text(encoding="utf-8")
    )
    handlers = schema.get("handlers") or {}
    actions: set[str] = set()
    for operation in HANDLER_OPERATIONS:
        # Some schemas list strings no IAM policy accepts (AWS::Logs::LogGroup names
        # "s3:REST.PUT.OBJECT"): they grant nothing, and IAM would refuse the document.
        actions.update(
            action
            for action in handlers.get(operation, {}).get("permissions", [])
            if IAM_ACTION.fullmatch(action)
        )
    if not actions:
        raise BootstrapError(
            f"resource type {resource_type}: its CloudFormation schema lists no handler "
            "permissions; cannot derive them"
        )
    return actions


def resource_types(templates: Iterable[dict[str, Any]]) -> set[str]:
    """Every resource type the templates contain."""
    return {
        resource["Type"]
        for template in templates
        for resource in template.get("Resources", {}).values()
    }


def execution_actions(templates: Iterable[dict[str, Any]], region: str) -> list[str]:
    """The sorted actions of every resource type of the templates, plus the template's own."""
    actions = set(TEMPLATE_ACTIONS)
    for resource_type in sorted(resource_types(templates)):
        actions |= handler_actions(resource_type, region)
    return sorted(actions)


def execution_policies(actions: Sequence[str]) -> list[dict[str, Any]]:
    """Policy documents of at most IAM's size that together allow ``actions``."""
    chunks: list[list[str]] = [[]]
    size = 0
    for action in actions:
        cost = len(json.dumps(action)) + 1
        if chunks[-1] and size + cost > POLICY_BUDGET:
            chunks.append([])
            size = 0
        chunks[-1].append(action)
        size += cost
    return [
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ResourceHandlers",
                    "Effect": "Allow",
                    "Action": chunk,
                    # Resource types, not instances: the stack names its resources at create.
                    "Resource": "*",
                }
            ],
        }
        for chunk in chunks
    ]


def policy_name(env: str, index: int) -> str:
    """The managed policy that holds part ``index`` (from 1) of an environment's policy."""
    return f"bedrock-rft-cfn-exec-{env}-{index}"


def put_policies(
    iam: Any, account: str, partition: str, env: str, documents: list[dict[str, Any]]
) -> list[str]:
    """Create the managed policies or add a default version to each; return their ARNs."""
    arns = []
    for index, document in enumerate(documents, start=1):
        name = policy_name(env, index)
        arn = f"arn:{partition}:iam::{account}:policy/{name}"
        text = json.dumps(document, separators=(",", ":"))
        try:
            iam.create_policy(
                PolicyName=name,
                PolicyDocument=text,
                Description=f"CloudFormation execution policy of BedrockRft-{env} (make bootstrap)",
            )
        except iam.exceptions.EntityAlreadyExistsException:
            versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
            old = sorted(
                (v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"]
            )
            if len(versions) >= 5:  # IAM keeps at most five versions: drop the oldest
                iam.delete_policy_version(PolicyArn=arn, VersionId=old[0]["VersionId"])
            iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)
        arns.append(arn)
    return arns


def bootstrap_command(
    cdk: str, account: str, region: str, qualifier: str, policy_arns: Sequence[str]
) -> list[str]:
    """The ``cdk bootstrap`` of one qualifier, in a toolkit stack of its own."""
    return [
        cdk,
        "bootstrap",
        f"aws://{account}/{region}",
        "--qualifier",
        qualifier,
        "--toolkit-stack-name",
        f"CDKToolkit-{qualifier}",
        "--cloudformation-execution-policies",
        ",".join(policy_arns),
    ]


def environment(name: str, cdk_json: Path = ROOT / "cdk.json") -> EnvironmentConfig:
    """The named environment of cdk.json, validated as synth validates it."""
    try:
        environments = read_environments(cdk_json)
    except PreconditionError as err:
        raise BootstrapError(str(err)) from None
    if name not in environments:
        raise BootstrapError(f"ENV={name}: no such environment; defined: {', '.join(environments)}")
    try:
        return load_environments({"environments": environments}, ROOT, only=name)[0]
    except ConfigError as err:
        raise BootstrapError("; ".join(err.lines)) from None


def run(
    env_name: str,
    *,
    cdk_out: Path,
    cdk: str,
    session: Any,
    execute: Callable[[list[str]], int],
    cdk_json: Path = ROOT / "cdk.json",
) -> int:
    """Generate, store and apply the policy, then bootstrap; the exit status of the bootstrap."""
    config = environment(env_name, cdk_json)
    if config.bootstrap_qualifier is None:
        raise BootstrapError(
            f"environment '{env_name}' has no bootstrap_qualifier: set one in cdk.json "
            f'(for example "bootstrap_qualifier": "rft{env_name.replace("-", "")[:7]}"); the '
            "default qualifier's bootstrap is shared with every CDK app of the account and "
            "make bootstrap does not narrow it"
        )
    template_path = cdk_out / f"{config.stack_name}.template.json"
    if not template_path.is_file():
        raise BootstrapError(
            f"{template_path.name}: not synthesized (run make synth ENV={env_name})"
        )
    template = json.loads(template_path.read_text(encoding="utf-8"))
    documents = execution_policies(execution_actions([template], config.region))
    out = cdk_out / "bootstrap"
    out.mkdir(parents=True, exist_ok=True)
    for index, document in enumerate(documents, start=1):
        (out / f"{policy_name(env_name, index)}.json").write_text(
            json.dumps(document, indent=2) + "\n", encoding="utf-8"
        )
    identity = session.client("sts").get_caller_identity()
    account = config.account or identity["Account"]
    if identity["Account"] != account:
        raise BootstrapError(
            f"environment '{env_name}' is in account {account}; the credentials are for "
            f"{identity['Account']}"
        )
    partition = identity["Arn"].split(":")[1]
    arns = put_policies(session.client("iam"), account, partition, env_name, documents)
    print(f"bootstrap: execution policy of {env_name}: {', '.join(arns)}", file=sys.stderr)
    return execute(bootstrap_command(cdk, account, config.region, config.bootstrap_qualifier, arns))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of ``make bootstrap``."""
    parser = argparse.ArgumentParser(prog="make bootstrap", description=__doc__)
    parser.add_argument("--env", required=True)
    parser.add_argument("--cdk-out", default=str(ROOT / "cdk.out"))
    parser.add_argument("--cdk", default=str(ROOT / "node_modules" / ".bin" / "cdk"))
    args = parser.parse_args(argv)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return run(
            args.env,
            cdk_out=Path(args.cdk_out),
            cdk=args.cdk,
            session=boto3.Session(),
            execute=lambda command: subprocess.run(command, check=False, cwd=ROOT).returncode,
        )
    except BootstrapError as err:
        print(f"make bootstrap: {err}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as err:
        print(f"make bootstrap: AWS refused: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
