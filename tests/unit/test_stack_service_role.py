"""The native backend's Bedrock service role: confused-deputy trust and least privilege."""

from __future__ import annotations

from typing import Any

from tests.conftest import resources_of


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


def _text(value: Any) -> str:
    """A resource expression flattened to text, references as <Logical.Attr>."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_text(v) for v in value)
    if "Fn::Join" in value:
        return _text(value["Fn::Join"][1])
    if "Fn::GetAtt" in value:
        return "<" + ".".join(value["Fn::GetAtt"]) + ">"
    if "Ref" in value:
        return "<" + value["Ref"] + ">"
    raise AssertionError(value)


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
    assert _text(statements["ReadDataset"]["Resource"]).endswith(f"/{prefix}*")
    assert "Datasets" in _text(statements["ReadDataset"]["Resource"])
    assert statements["ListDataset"]["Condition"] == {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
    write = statements["WriteOutput"]
    assert write["Action"] == ["s3:GetObject", "s3:PutObject"]
    assert _text(write["Resource"]).endswith("/output/*") and "Artifacts" in _text(
        write["Resource"]
    )
    invoke = statements["InvokeGrader"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert all("RewardFunction" in _text(r) for r in invoke["Resource"])
    via = statements["UseKeyThroughBedrock"]["Condition"]["StringEquals"]["kms:ViaService"]
    assert via == "bedrock.us-east-1.amazonaws.com"
    for statement in statements.values():
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert not any(a == "*" or a.endswith(":*") for a in actions)
        assert statement["Resource"] != "*"
