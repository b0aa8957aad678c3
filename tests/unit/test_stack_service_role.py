"""The native backend's Bedrock service role: confused-deputy trust and least privilege."""

from __future__ import annotations

from typing import Any

from tests.conftest import resources_of, template_text


def service_role(template: Any) -> tuple[str, dict[str, Any]]:
    [(logical_id, role)] = [
        (k, v)
        for k, v in resources_of(template, "AWS::IAM::Role").items()
        if k.startswith("BedrockServiceRole")
    ]
    return logical_id, role


def test_only_the_native_environment_has_the_role(templates: dict[str, Any]) -> None:
    for env in ("dev", "staging", "prod"):
        assert not any(
            k.startswith("BedrockServiceRole")
            for k in resources_of(templates[env], "AWS::IAM::Role")
        )
    assert service_role(templates["nova-dev"])


def test_trust_carries_both_confused_deputy_conditions(templates: dict[str, Any]) -> None:
    _, role = service_role(templates["nova-dev"])
    [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    conditions = statement["Condition"]
    assert conditions["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = conditions["ArnEquals"]["aws:SourceArn"]
    joined = "".join(
        part if isinstance(part, str) else "<ref>" for part in source_arn["Fn::Join"][1]
    )
    assert joined.endswith(":model-customization-job/*")
    assert ":bedrock:us-east-1:" in joined


def _statements(template: Any, role_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                found[statement["Sid"]] = statement
    return found


def test_permissions_are_scoped_to_prefixes_function_and_key(
    templates: dict[str, Any], synthesized: dict[str, Any]
) -> None:
    template = templates["nova-dev"]
    role_id, _ = service_role(template)
    statements = _statements(template, role_id)
    prefix = synthesized["stacks"]["nova-dev"].staging.dataset_prefix
    assert set(statements) == {
        "ReadDataset",
        "ListDataset",
        "WriteOutput",
        "ListOutput",
        "InvokeGrader",
        "UseKeyThroughS3",
        "UseKeyThroughBedrock",
    }
    assert statements["ReadDataset"]["Action"] == "s3:GetObject"
    assert template_text(statements["ReadDataset"]["Resource"]).endswith(f"/{prefix}*")
    assert "Datasets" in template_text(statements["ReadDataset"]["Resource"])
    assert statements["ListDataset"]["Condition"] == {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
    write = statements["WriteOutput"]
    assert write["Action"] == ["s3:GetObject", "s3:PutObject"]
    written = template_text(write["Resource"])
    assert written.endswith("/output/*") and "Artifacts" in written
    invoke = statements["InvokeGrader"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert all("RewardFunction" in template_text(r) for r in invoke["Resource"])
    via = statements["UseKeyThroughBedrock"]["Condition"]["StringEquals"]["kms:ViaService"]
    assert via == "bedrock.us-east-1.amazonaws.com"
    for statement in statements.values():
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert not any(a == "*" or a.endswith(":*") for a in actions)
        assert statement["Resource"] != "*"
