"""The reward (grader) Lambda as deployed: runtime, sizing, logs, grader definition."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURE_GRADERS, resources_of

ENVIRONMENTS = ["dev", "staging", "prod", "nova-dev"]


def reward_function(template: Any) -> dict[str, Any]:
    functions = {
        k: v
        for k, v in resources_of(template, "AWS::Lambda::Function").items()
        if k.startswith("RewardFunction")
    }
    [function] = functions.values()
    return function


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_runtime_and_sizing(templates: dict[str, Any], env: str) -> None:
    props = reward_function(templates[env])["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "handler.handler"
    assert props["Timeout"] >= 60
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert "KmsKeyArn" in props, "environment variables are encrypted with the stack's key"
    variables = props["Environment"]["Variables"]
    assert variables["GRADER_CONFIG"] == "graders/gsm8k.json"
    assert variables["RFT_ENVIRONMENT"] == env
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "BedrockRft/Grader"


def test_sizing_comes_from_config(templates: dict[str, Any]) -> None:
    dev = reward_function(templates["dev"])["Properties"]
    prod = reward_function(templates["prod"])["Properties"]
    assert (dev["Timeout"], dev["MemorySize"]) == (300, 512)
    assert (prod["Timeout"], prod["MemorySize"]) == (300, 1024)
    assert prod["ReservedConcurrentExecutions"] == 100
    assert "ReservedConcurrentExecutions" not in dev


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_log_group_is_encrypted_with_retention(templates: dict[str, Any], env: str) -> None:
    function = reward_function(templates[env])["Properties"]
    group_id = function["LoggingConfig"]["LogGroup"]["Ref"]
    group = resources_of(templates[env], "AWS::Logs::LogGroup")[group_id]["Properties"]
    assert group["RetentionInDays"] == {"dev": 14, "prod": 365}[env]
    assert "KmsKeyId" in group


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_role_writes_only_its_own_logs(templates: dict[str, Any], env: str) -> None:
    template = templates[env]
    function = reward_function(template)["Properties"]
    role_id = function["Role"]["Fn::GetAtt"][0]
    role = resources_of(template, "AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources_of(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    statements = [s for doc in policies for s in doc]
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all(a != "*" and not a.endswith(":*") for a in actions)
        if statement["Resource"] == "*":
            assert all(a.startswith("xray:") for a in actions), statement


def test_version_is_published_for_jobs(templates: dict[str, Any]) -> None:
    assert resources_of(templates["dev"], "AWS::Lambda::Version")


def test_the_asset_carries_the_environments_grader(
    synthesized: dict[str, Any], project_root: Path
) -> None:
    stack = synthesized["stacks"]["dev"]
    code = stack.reward.function.node.default_child.code  # CfnFunction.CodeProperty
    assert code is not None
    asset_dirs = sorted((project_root / ".build" / "assets").glob("reward-*"))
    # other tests' environments add assets with graders of their own
    shipped = [d / "graders" / "gsm8k.json" for d in asset_dirs]
    shipped = [path for path in shipped if path.is_file()]
    assert shipped, "the reward asset holds graders/gsm8k.json"
    expected = json.loads((FIXTURE_GRADERS / "gsm8k.json").read_text())
    assert any(json.loads(path.read_text()) == expected for path in shipped)
    assert stack.reward.grader_name == (expected.get("name") or "gsm8k")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_lambda_version_outlives_the_deploy_that_replaces_it(
    templates: dict[str, Any], env: str
) -> None:
    """A memory-only change publishes a new reward version and keeps the running job, which
    (like retained jobs and the evaluation) goes on invoking the old version: no deploy may
    delete it, in any environment, whatever the environment's removal_policy."""
    template = templates[env]
    versions = template.find_resources("AWS::Lambda::Version")
    assert versions, "the job invokes a published reward version"
    for logical_id, version in versions.items():
        assert version.get("DeletionPolicy") == "Retain", logical_id
        assert version.get("UpdateReplacePolicy") == "Retain", logical_id
    # ...and the version the job and the evaluation are given is one of these.
    [reward] = [k for k, v in versions.items() if k.startswith("RewardFunction")]
    assert reward in json.dumps(template.to_json()["Outputs"])
