"""make bootstrap: the generated CloudFormation execution policy covers every resource type the
templates contain, fits IAM's limits, is kept up to date in IAM (moto), and the bootstrap
runs with the environment's own qualifier."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Template
from moto import mock_aws

from scripts.bootstrap import (
    POLICY_MAX_CHARS,
    BootstrapError,
    bootstrap_command,
    execution_actions,
    execution_policies,
    handler_actions,
    put_policies,
    resource_types,
    run,
)
from tests.conftest import FIXTURE_CDK_JSON, cdk_context


def fixture_templates(synthesized: dict[str, Any]) -> dict[str, dict[str, Any]]:
    stacks = synthesized["stacks"]
    return {name: dict(Template.from_stack(stack).to_json()) for name, stack in stacks.items()}


def test_the_policy_covers_every_resource_type_of_every_template(
    synthesized: dict[str, Any],
) -> None:
    for name, template in fixture_templates(synthesized).items():
        region = synthesized["stacks"][name].config.region
        documents = execution_policies(execution_actions([template], region))
        allowed = {
            action
            for document in documents
            for statement in document["Statement"]
            for action in statement["Action"]
        }
        types = resource_types([template])
        assert any(t.startswith("Custom::") for t in types)  # the job, dataset copy, ...
        for resource_type in types:
            needed = handler_actions(resource_type, region)
            assert needed or resource_type == "AWS::CDK::Metadata", resource_type
            assert needed <= allowed, (name, resource_type, sorted(needed - allowed))
        # least privilege: actions, never a service wildcard or administrator access
        assert all(re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+\*?", a) for a in allowed), name
        assert not any(a.endswith(":*") or a == "*" for a in allowed)
        assert "lambda:InvokeFunction" in allowed  # CloudFormation calls the custom resources
        for document in documents:
            assert len(re.sub(r"\s", "", json.dumps(document))) <= POLICY_MAX_CHARS


def test_a_type_without_a_schema_is_one_line() -> None:
    template = {"Resources": {"X": {"Type": "AWS::Nothing::Here"}}}
    with pytest.raises(BootstrapError, match=r"^resource type AWS::Nothing::Here: no "):
        execution_actions([template], "us-west-2")


def test_split_policies_keep_every_action_once() -> None:
    actions = [f"svc:Action{i:04d}" for i in range(1200)]
    documents = execution_policies(actions)
    assert len(documents) > 1
    split = [a for d in documents for a in d["Statement"][0]["Action"]]
    assert split == actions


@mock_aws
def test_policies_are_created_then_versioned_within_iams_limit() -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    documents = execution_policies(["s3:GetObject", "kms:Decrypt"])
    [arn] = put_policies(iam, "123456789012", "aws", "dev", documents)
    assert arn == "arn:aws:iam::123456789012:policy/bedrock-rft-cfn-exec-dev-1"
    for n in range(6):  # more updates than IAM keeps versions
        put_policies(iam, "123456789012", "aws", "dev", execution_policies([f"s3:Put{n}"]))
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert len(versions) <= 5
    default = iam.get_policy_version(
        PolicyArn=arn,
        VersionId=iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"],
    )["PolicyVersion"]["Document"]
    document = json.loads(default) if isinstance(default, str) else default
    assert document["Statement"][0]["Action"] == ["s3:Put5"]


def test_the_command_bootstraps_the_qualifier_in_its_own_toolkit_stack() -> None:
    assert bootstrap_command("cdk", "123456789012", "us-west-2", "rftdev", ["a1", "a2"]) == [
        "cdk",
        "bootstrap",
        "aws://123456789012/us-west-2",
        "--qualifier",
        "rftdev",
        "--toolkit-stack-name",
        "CDKToolkit-rftdev",
        "--cloudformation-execution-policies",
        "a1,a2",
    ]


def write_cdk_json(tmp_path: Path, qualifier: str | None) -> Path:
    data = json.loads(FIXTURE_CDK_JSON.read_text(encoding="utf-8"))
    if qualifier is not None:
        data["context"]["environments"]["dev"]["bootstrap_qualifier"] = qualifier
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_an_environment_without_a_qualifier_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BootstrapError, match=r"^environment 'dev' has no bootstrap_qualifier"):
        run(
            "dev",
            cdk_out=tmp_path,
            cdk="cdk",
            session=None,
            execute=lambda command: 0,
            cdk_json=write_cdk_json(tmp_path, None),
        )


@mock_aws
def test_run_stores_applies_and_bootstraps(
    synthesized: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    template = fixture_templates(synthesized)["dev"]
    (tmp_path / "BedrockRft-dev.template.json").write_text(json.dumps(template))
    commands: list[list[str]] = []

    def execute(command: list[str]) -> int:
        commands.append(command)
        return 0

    status = run(
        "dev",
        cdk_out=tmp_path,
        cdk="cdk",
        session=boto3.Session(region_name="us-west-2"),
        execute=execute,
        cdk_json=write_cdk_json(tmp_path, "rftdev"),
    )
    assert status == 0
    [command] = commands
    arns = command[-1].split(",")
    assert command[:7] == [
        "cdk",
        "bootstrap",
        "aws://123456789012/us-west-2",  # moto's account
        "--qualifier",
        "rftdev",
        "--toolkit-stack-name",
        "CDKToolkit-rftdev",
    ]
    stored = sorted((tmp_path / "bootstrap").glob("*.json"))
    assert [p.stem for p in stored] == [a.rsplit("/", 1)[1] for a in arns]
    iam = boto3.client("iam")
    for arn in arns:
        assert iam.get_policy(PolicyArn=arn)["Policy"]["PolicyName"].startswith(
            "bedrock-rft-cfn-exec-dev-"
        )
    assert cdk_context()["environments"]["dev"].get("bootstrap_qualifier") is None
