"""The deployment clean-up custom resource as synthesized: where it exists, what it may
delete (only deployments tagged with its environment), that its permissions outlive it, and
that the handler accepts what the stack sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from stacks.config import EnvironmentConfig
from stacks.nag import rule_packs
from stacks.serving import RESOURCE_TYPE, DeploymentCleanup
from tests.conftest import cdk_context, resources_of, role_statements, template_text
from tests.lambda_loader import LambdaContext, load_handler


def cleanup_resource(template: Any) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = resources_of(template, RESOURCE_TYPE).items()
    return logical_id, resource


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else list(value)


def config(env: str = "nova-dev", **evaluation: Any) -> EnvironmentConfig:
    raw = dict(cdk_context()["environments"][env])
    if evaluation:
        raw["evaluation"] = {**raw.get("evaluation", {}), **evaluation}
    return EnvironmentConfig.model_validate({"name": env, **raw})


def standalone(tmp_path: Path, **kwargs: Any) -> tuple[cdk.Stack, DeploymentCleanup]:
    """The construct alone in a stack of its own (for variants of the fixture environment)."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Cleanup", env=cdk.Environment(region="us-east-1"))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    cleanup = DeploymentCleanup(stack, "DeploymentCleanup", key=key, **kwargs)
    return stack, cleanup


def test_only_native_environments_that_start_a_job_clean_up_deployments(
    templates: dict[str, Any],
) -> None:
    for env in ("dev", "staging", "prod"):  # openai backend (dev starts no job)
        assert resources_of(templates[env], RESOURCE_TYPE) == {}
    _, resource = cleanup_resource(templates["nova-dev"])
    assert resource["Properties"]["Environment"] == "nova-dev"
    assert resource["Properties"]["Region"] == "us-east-1"
    assert resource["Properties"]["OnDelete"] == "delete"  # the default


def test_the_resource_keeps_its_logical_id(templates: dict[str, Any]) -> None:
    """A new logical id would make CloudFormation delete the old resource on the next deploy,
    and with it every deployment of the environment."""
    logical_id, _ = cleanup_resource(templates["nova-dev"])
    assert logical_id.startswith("DeploymentCleanup")
    assert logical_id == "DeploymentCleanupF42BFB59"


def test_the_handler_may_delete_only_this_environments_deployments(
    templates: dict[str, Any],
) -> None:
    statements = role_statements(templates["nova-dev"], "DeploymentCleanupHandlerRole")
    by_sid = {s["Sid"]: s for s in statements if "Sid" in s}
    every_action = {a for s in statements for a in actions(s)}
    assert not any(a.endswith("*") for a in every_action)
    assert {a for a in every_action if a.startswith("bedrock:")} == {
        "bedrock:ListCustomModelDeployments",
        "bedrock:ListTagsForResource",
        "bedrock:DeleteCustomModelDeployment",
    }
    delete = by_sid["DeleteThisEnvironmentsDeployments"]
    assert actions(delete) == ["bedrock:DeleteCustomModelDeployment"]
    assert template_text(delete["Resource"]).endswith(
        ":bedrock:us-east-1:<AWS::AccountId>:custom-model-deployment/*"
    )
    assert delete["Condition"] == {
        "StringEquals": {"aws:ResourceTag/bedrock-rft:environment": "nova-dev"}
    }
    assert template_text(by_sid["ReadDeploymentTags"]["Resource"]).endswith(
        ":custom-model-deployment/*"
    )
    for statement in statements:
        if statement["Resource"] == "*":
            assert set(actions(statement)) <= {
                "bedrock:ListCustomModelDeployments",
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
            }, statement


def test_the_handler_keeps_its_permissions_until_the_resource_is_deleted(
    templates: dict[str, Any],
) -> None:
    template = templates["nova-dev"]
    _, resource = cleanup_resource(template)
    depends = set(resource.get("DependsOn", []))
    [role_id] = [
        k
        for k in resources_of(template, "AWS::IAM::Role")
        if k.startswith("DeploymentCleanupHandlerRole")
    ]
    policies = {
        k
        for k, v in resources_of(template, "AWS::IAM::Policy").items()
        if {"Ref": role_id} in v["Properties"]["Roles"]
    }
    assert len(policies) == 2  # the clean-up's Bedrock grants, logs and X-Ray
    assert policies | {role_id} <= depends


def test_the_handler_runs_the_evaluation_bundle(templates: dict[str, Any]) -> None:
    functions = [
        f["Properties"]
        for f in resources_of(templates["nova-dev"], "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "handler.cleanup"
    ]
    [props] = functions
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert "KmsKeyArn" in props and "VpcConfig" not in props
    assert props["Timeout"] <= 15 * 60


def test_retain_is_sent_to_the_handler(tmp_path: Path) -> None:
    stack, _ = standalone(tmp_path, environment=config(deployment_on_delete="retain"))
    _, resource = cleanup_resource(Template.from_stack(stack))
    assert resource["Properties"]["OnDelete"] == "retain"
    stack, _ = standalone(tmp_path / "2", environment=config(), retain=True)
    _, resource = cleanup_resource(Template.from_stack(stack))
    assert resource["Properties"]["OnDelete"] == "retain"


def test_a_function_built_elsewhere_gets_the_grants_and_passes_the_packs(
    tmp_path: Path,
) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Cleanup", env=cdk.Environment(region="us-east-1"))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    function = lambda_.Function(
        stack,
        "Given",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="handler.cleanup",
        code=lambda_.Code.from_inline("def cleanup(event, context): pass"),
    )
    cleanup = DeploymentCleanup(
        stack, "DeploymentCleanup", environment=config(), key=key, function=function
    )
    assert cleanup.function is function
    template = Template.from_stack(stack)
    handlers = [
        f["Properties"]["Handler"]
        for f in resources_of(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"].startswith("handler.")
    ]
    assert handlers == ["handler.cleanup"]  # no second clean-up function
    statements = role_statements(template, "GivenServiceRole")
    assert "bedrock:DeleteCustomModelDeployment" in {a for s in statements for a in actions(s)}


def test_the_construct_alone_passes_the_packs(tmp_path: Path) -> None:
    stack, _ = standalone(tmp_path, environment=config())
    for pack in rule_packs():
        report = pack.validate_scope(stack)
        findings = [
            (v.rule_name, [r.construct_path for r in v.violating_resources])
            for v in report.violations
            if not v.rule_name.startswith("AwsSolutions-KMS")  # the test's own key
        ]
        assert not findings


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_the_handler_accepts_what_the_stack_sends(
    templates: dict[str, Any], request_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The synthesized properties, as CloudFormation sends them, on Create and Update: one
    fixed physical id and no call to Bedrock (no client is even built)."""
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    _, resource = cleanup_resource(templates["nova-dev"])
    properties = {k: v for k, v in resource["Properties"].items() if not isinstance(v, dict)} | {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider"
    }
    handler = load_handler("evaluation")
    result = handler.cleanup(
        {"RequestType": request_type, "ResourceProperties": properties}, LambdaContext()
    )
    assert result == {
        "PhysicalResourceId": "bedrock-rft-nova-dev-deployments",
        "Data": {"Deleted": "0"},
    }
