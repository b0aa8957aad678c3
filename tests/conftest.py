"""Shared fixtures: the synthesized stacks of the fixture environments, and the local
OpenAI-compatible server.

``cdk.json``, ``datasets/`` and ``graders/`` belong to the user: the construct and rule tests
synthesize ``tests/fixtures/cdk.json`` instead (environments dev, staging, prod and nova-dev,
with the datasets and graders under ``tests/fixtures/``), so editing the user's files never
changes what they pin. The user's own cdk.json is tested only generically
(tests/unit/test_user_config.py): it loads, synthesizes and passes its gates.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lambda_loader import ROOT
from tests.openai_server import OpenAIServer

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
# The tests' own synths (every cdk.App built in-process or in a Python subprocess) do not copy
# the Lambda bundles (some 580 MB) into their throwaway outdir: the templates are byte for byte
# the same (assets are named by content digests), and nothing deploys from a test's outdir.
# CDK_CONTEXT_JSON is the CDK's own way to give an app context from outside; an App's own
# context adds to it, and the CDK CLI (make synth, make review) replaces it with its own.
os.environ.setdefault("CDK_CONTEXT_JSON", json.dumps({"aws:cdk:disable-asset-staging": True}))


FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE_CDK_JSON = FIXTURES / "cdk.json"
FIXTURE_GRADERS = FIXTURES / "graders"
FIXTURE_DATASETS = FIXTURES / "datasets"


def cdk_context() -> dict[str, Any]:
    """The fixture context (environments and feature flags) the tests synthesize, in the shape
    `cdk synth` passes cdk.json's: a fresh copy, free to change."""
    context: dict[str, Any] = json.loads(FIXTURE_CDK_JSON.read_text(encoding="utf-8"))["context"]
    return context


def user_cdk_context() -> dict[str, Any]:
    """The context of the user's own cdk.json, for the tests that check it generically."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return context


def write_fixture_cdk_json(folder: Path) -> Path:
    """``folder/cdk.json`` holding the fixture context, its dataset and grader paths absolute:
    for tools that read cdk.json from a project root of their own (preflight, report)."""
    context = cdk_context()
    for raw in context["environments"].values():
        for key in ("dataset", "grader"):
            raw[key] = str(ROOT / raw[key])
    path = folder / "cdk.json"
    path.write_text(json.dumps({"context": context}, indent=2), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every fixture environment's stack, built once per test session (as app.py builds them)."""
    import aws_cdk as cdk

    from app import build_app

    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context=cdk_context())
    stacks = build_app(app)
    yield {"app": app, "stacks": {stack.config.name: stack for stack in stacks}}


@pytest.fixture(scope="session")
def templates(synthesized: dict[str, Any]) -> dict[str, Any]:
    """``aws_cdk.assertions.Template`` per fixture environment name."""
    from aws_cdk.assertions import Template

    return {name: Template.from_stack(stack) for name, stack in synthesized["stacks"].items()}


def resources_of(template: Any, resource_type: str) -> dict[str, dict[str, Any]]:
    """All resources of one type in a template, by logical id."""
    found: dict[str, dict[str, Any]] = template.find_resources(resource_type)
    return found


def role_statements(template: Any, role_prefix: str) -> list[dict[str, Any]]:
    """Every statement of every policy attached to the role whose logical id starts so."""
    [role_id] = [k for k in resources_of(template, "AWS::IAM::Role") if k.startswith(role_prefix)]
    statements = []
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def template_text(value: Any) -> str:
    """A template expression flattened to text, references as ``<Logical.Attr>`` /
    ``<Logical>`` (``Fn::Join`` parts joined without their separator)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(template_text(v) for v in value)
    if "Fn::Join" in value:
        return template_text(value["Fn::Join"][1])
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    return json.dumps(value)


def fake_credentials(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    """Fake AWS credentials and ``region`` for the clients a test builds (moto, Stubber)."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def project_root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    """The local OpenAI-compatible server, with the SDK's environment variables pointing at it
    (``OPENAI_BASE_URL``, and ``OPENAI_API_KEY`` set to the key it accepts)."""
    with OpenAIServer() as server:
        for name, value in server.sdk_environment().items():
            monkeypatch.setenv(name, value)
        yield server
