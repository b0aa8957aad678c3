"""The reward Lambda's judge grant: present only for graders that call a model, and scoped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_app
from stacks.nag import rule_packs
from stacks.reward import judge_models
from tests.conftest import cdk_context


def test_judge_models_are_found_at_any_depth() -> None:
    definition = {
        "type": "multi",
        "graders": {
            "exact": {"type": "string_check", "operation": "eq"},
            "judge": {"type": "score_model", "model": "openai.gpt-oss-120b"},
            "nested": [{"type": "label_model", "model": "qwen.qwen3-32b"}],
            "similar": {"type": "text_similarity", "evaluation_metric": "cosine", "model": "e"},
            "rouge": {"type": "text_similarity", "evaluation_metric": "rouge_l"},
        },
    }
    assert judge_models(definition) == {"openai.gpt-oss-120b", "qwen.qwen3-32b", "e"}
    assert judge_models({"type": "math_answer"}) == set()


def _statements(template: Template) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = json.dumps(policy["Properties"]["Roles"])
        if "RewardRole" in roles:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                found[statement.get("Sid", "")] = statement
    return found


def test_rule_grader_gets_no_judge_grant(templates: dict[str, Any]) -> None:
    statements = _statements(templates["dev"])
    assert "JudgeInference" not in statements
    assert "JudgeShortTermApiKey" not in statements


@pytest.mark.parametrize("grader", ["tests/fixtures/graders/rubric_judge.json"])
def test_judge_grader_gets_a_scoped_grant(tmp_path: Path, grader: str) -> None:
    context = cdk_context()
    context["environments"] = {"staging": {**context["environments"]["staging"], "grader": grader}}
    app = cdk.App(outdir=str(tmp_path), context=context)
    [stack] = build_app(app)
    statements = _statements(Template.from_stack(stack))
    inference = statements["JudgeInference"]
    assert inference["Action"] == "bedrock-mantle:CreateInference"
    arn = json.dumps(inference["Resource"])
    assert "bedrock-mantle" in arn and ":project/*" in arn and "us-west-2" in arn
    assert set(statements["JudgeShortTermApiKey"]["Action"]) == {
        "bedrock:CallWithBearerToken",
        "bedrock-mantle:CallWithBearerToken",
    }
    assert stack.reward.judge_models == {"openai.gpt-oss-120b"}
    for pack in rule_packs():
        report = pack.validate_scope(app)
        assert report.success, [v.rule_name for v in report.violations]
