"""The CDK app: one stack per environment, `-c env=NAME` selects one, bad config exits cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from app import build_app
from stacks.nag import rule_packs
from tests.conftest import cdk_context


def test_one_stack_per_environment(synthesized: dict[str, Any]) -> None:
    stacks = synthesized["stacks"]
    assert {s.stack_name for s in stacks.values()} == {
        "BedrockRft-dev",
        "BedrockRft-staging",
        "BedrockRft-prod",
        "BedrockRft-nova-dev",
    }
    assert stacks["nova-dev"].region == "us-east-1"
    assert stacks["dev"].region == "us-west-2"


def test_env_context_selects_one(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path), context={**cdk_context(), "env": "staging"})
    [stack] = build_app(app)
    assert stack.stack_name == "BedrockRft-staging"


def test_tags_reach_resources(templates: dict[str, Any]) -> None:
    buckets = templates["prod"].find_resources("AWS::S3::Bucket")
    for bucket in buckets.values():
        tags = {t["Key"]: t["Value"] for t in bucket["Properties"].get("Tags", [])}
        assert tags.get("rft:environment") == "prod"
        assert tags.get("project") == "bedrock-rft"


def test_bad_config_exits_with_one_line_per_problem(tmp_path: Path, project_root: Path) -> None:
    context = cdk_context()
    context["environments"]["dev"]["hyperparameters"] = {"n_epochs": 0}
    context["environments"]["dev"]["log_retention_days"] = 10
    context["environments"]["staging"]["grader"] = "tests/fixtures/bad_graders/bad_type.json"
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=project_root,
        env={
            "PATH": "/usr/bin:/bin",
            "CDK_CONTEXT_JSON": json.dumps(context),
            "CDK_OUTDIR": str(tmp_path),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    expected = [
        "error: environment 'dev': log_retention_days = 10: must be one of 1, 3, 5, 7, 14, 30,",
        "error: environment 'dev': hyperparameters.n_epochs = 0: out of range; allowed: 1 to 50",
        "error: environment 'staging': grader tests/fixtures/bad_graders/bad_type.json: "
        "$.type: 'magic_grader' is not allowed; allowed: string_check,",
    ]
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), line


def test_permissions_boundary_reaches_every_role(tmp_path: Path) -> None:
    from aws_cdk.assertions import Template

    boundary = "arn:aws:iam::123456789012:policy/rft-boundary"
    context = cdk_context()
    context["environments"] = {
        "nova-dev": {
            **context["environments"]["nova-dev"],
            "account": "123456789012",
            "permissions_boundary_arn": boundary,
        }
    }
    app = cdk.App(outdir=str(tmp_path), context=context)
    [stack] = build_app(app)
    # acknowledgments that name the account still match when the account is explicit
    for pack in rule_packs():
        assert pack.validate_scope(app).success, pack.name
    roles = Template.from_stack(stack).find_resources("AWS::IAM::Role")
    assert len(roles) >= 3
    for logical_id, role in roles.items():
        assert role["Properties"].get("PermissionsBoundary") == boundary, logical_id
