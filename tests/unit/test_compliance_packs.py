"""Compliance packs per environment: validated names, a gate on the requiring environment's
stack only, and the fixture's prod (NIST 800-53 rev 5, HIPAA Security) without findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam

from app import build_app
from stacks.config import COMPLIANCE_PACKS, ConfigError, load_environments
from stacks.nag import COMPLIANCE_PACK_CLASSES, PACK_RULES, compliance_packs
from tests.conftest import cdk_context
from tests.lambda_loader import ROOT


def test_every_fixture_stack_passes_nist_and_hipaa(synthesized: dict[str, Any]) -> None:
    # prod requires them; the acknowledgments are true in the other environments too
    assert synthesized["stacks"]["prod"].config.compliance_packs == (
        "NIST80053R5",
        "HIPAASecurity",
    )
    for pack in compliance_packs(["NIST80053R5", "HIPAASecurity"]):
        for name, stack in synthesized["stacks"].items():
            report = pack.validate_scope(stack)
            found = [(v.rule_name, len(v.violating_resources)) for v in report.violations]
            assert report.success, (pack.read_pack_name, name, found)


def test_pack_names_are_cdk_nags_classes() -> None:
    assert tuple(sorted(COMPLIANCE_PACK_CLASSES)) == COMPLIANCE_PACKS
    names = {pack.read_pack_name for pack in compliance_packs(COMPLIANCE_PACKS)}
    # every pack an acknowledgment is written for exists under that name
    assert {pack for packs in PACK_RULES.values() for pack in packs} <= names


def test_unknown_pack_is_one_line_listing_the_allowed() -> None:
    context = cdk_context()
    context["environments"]["dev"]["compliance_packs"] = ["NIST80053R5", "SOC2"]
    with pytest.raises(ConfigError) as caught:
        load_environments(context, ROOT, only="dev")
    assert caught.value.lines == [
        'environment \'dev\': compliance_packs = ["NIST80053R5", "SOC2"]: unknown pack SOC2; '
        "allowed: HIPAASecurity, NIST80053R4, NIST80053R5, PCIDSS321 "
        "(AwsSolutions and Serverless gate every environment already)"
    ]


def canary(stack: cdk.Stack) -> None:
    """A role with an inline policy added after the stack was built: unacknowledged for the
    NIST/HIPAA no-inline-policy rule, and no finding of AwsSolutions or Serverless."""
    role = iam.Role(stack, "Canary", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=["arn:aws:s3:::canary/key"])
    )


def two_environment_app(tmp_path: Path, canary_in: str) -> cdk.App:
    context = cdk_context()
    del context["ci"]
    context["environments"] = {name: context["environments"][name] for name in ("dev", "prod")}
    context["environments"]["prod"]["compliance_packs"] = ["HIPAASecurity"]
    app = cdk.App(outdir=str(tmp_path), context=context)
    stacks = {stack.config.name: stack for stack in build_app(app)}
    canary(stacks[canary_in])
    return app


def test_a_required_pack_fails_synth_on_an_unacknowledged_finding(tmp_path: Path) -> None:
    app = two_environment_app(tmp_path, canary_in="prod")
    with pytest.raises(RuntimeError, match="ValidationFailed") as caught:
        app.synth()
    findings = [line for line in str(caught.value).splitlines() if "aws-cdk-lib" in line]
    assert [line.split()[0] for line in findings] == [
        "BedrockRft-prod/Canary/DefaultPolicy/Resource"
    ]
    assert "HIPAA.Security" in str(caught.value)


def test_an_environment_that_does_not_require_a_pack_is_not_gated_by_it(
    tmp_path: Path,
) -> None:
    app = two_environment_app(tmp_path, canary_in="dev")
    assembly = app.synth()  # the same finding, in dev: only prod runs HIPAA Security
    assert assembly.get_stack_by_name("BedrockRft-dev").template["Resources"]


def test_make_acknowledgments_lists_them_per_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts.acknowledgments import main
    from tests.conftest import write_fixture_cdk_json

    write_fixture_cdk_json(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["prod"]) == 0
    out = capsys.readouterr().out
    for pack in ("NIST.800.53.R5", "HIPAA.Security"):
        section = out.split(f"## cdk-nag acknowledgments: {pack} (", 1)[1].split("\n## ", 1)[0]
        assert "Gates: BedrockRft-prod." in section
        assert f"`{pack}-LambdaDLQ`" in section and f"`{pack}-IAMNoInlinePolicy`" in section
    assert "## cdk-nag acknowledgments: AwsSolutions (" in out
    assert "Gates: every stack." in out
