"""Compliance as a gate: the nag packs find nothing unacknowledged, and they do bite."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from stacks.nag import acknowledge, checkov_skip, rule_packs


def test_packs_report_no_violation_on_any_environment(synthesized: dict[str, Any]) -> None:
    app = synthesized["app"]
    packs = rule_packs()
    assert {pack.name for pack in packs} == {"AwsSolutions", "Serverless"}
    for pack in packs:
        report = pack.validate_scope(app)
        problems = [
            (v.rule_name, [r.construct_path for r in v.violating_resources])
            for v in report.violations
        ]
        assert report.success, problems


def test_packs_catch_an_unacknowledged_finding(tmp_path: Any) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Canary")
    s3.Bucket(stack, "Plain")
    [solutions, _] = rule_packs()
    report = solutions.validate_scope(app)
    assert not report.success
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= {v.rule_name for v in report.violations}


def test_acknowledgment_needs_a_real_reason(tmp_path: Any) -> None:
    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "S")
    with pytest.raises(ValueError, match="needs a specific reason"):
        acknowledge(stack, "AwsSolutions-S1", "ok")


def test_checkov_skips_carry_their_reason(templates: dict[str, Any]) -> None:
    for env, template in templates.items():
        for logical_id, resource in template.to_json()["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert skip["id"].startswith("CKV_"), (env, logical_id)
                assert len(skip["comment"]) > 30, (env, logical_id, skip)


def test_checkov_skip_accumulates(tmp_path: Any) -> None:
    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "S")
    bucket = s3.Bucket(stack, "B")
    checkov_skip(bucket, "CKV_AWS_18", "first reason, long enough to be specific")
    checkov_skip(bucket, "CKV_AWS_21", "second reason, long enough to be specific")
    template = json.dumps(cdk.assertions.Template.from_stack(stack).to_json())
    assert "CKV_AWS_18" in template and "CKV_AWS_21" in template
