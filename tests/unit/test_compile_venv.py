"""``scripts/compile_venv.py``: which aws-cdk-lib modules get bytecode at install."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tests.lambda_loader import ROOT


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compile_venv", ROOT / "scripts/compile_venv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_cdk_modules_the_code_imports_in_every_form(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import aws_cdk as cdk\nimport aws_cdk.aws_s3 as s3\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "a.py").write_text(
        '"""Example: import aws_cdk.aws_ec2 as ec2 (a docstring, not an import)."""\n'
        "from aws_cdk import Duration, Stack, aws_iam as iam, aws_lambda\n"
        "from aws_cdk.aws_sns import Topic\n"
        "def later() -> None:\n"
        "    from aws_cdk.aws_stepfunctions import StateMachine\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.py").write_text("from aws_cdk.assertions import Template\n")
    (tmp_path / "tests" / "broken.py").write_text("def (:\n")
    (tmp_path / "docs").mkdir()  # not code the project runs
    (tmp_path / "docs" / "x.py").write_text("import aws_cdk.aws_ecs\n")
    assert _script().cdk_modules(tmp_path) == [
        "aws_cdk.assertions",
        "aws_cdk.aws_iam",
        "aws_cdk.aws_lambda",
        "aws_cdk.aws_s3",
        "aws_cdk.aws_sns",
        "aws_cdk.aws_stepfunctions",
    ]


def test_the_projects_own_cdk_imports_are_found() -> None:
    found = _script().cdk_modules()
    assert {"aws_cdk.aws_lambda", "aws_cdk.aws_iam", "aws_cdk.assertions"} <= set(found)
    assert all(name.startswith("aws_cdk.") for name in found)


def test_only_the_cdk_service_modules_are_left_out_of_the_bulk_compile() -> None:
    pattern = _script().CDK_SERVICE_MODULES
    site = "/v/lib/python3.11/site-packages"
    assert pattern.search(f"{site}/aws_cdk/aws_lambda/__init__.py")
    assert pattern.search(f"{site}/aws_cdk/interfaces/aws_iam/__init__.py")
    assert pattern.search(f"{site}/aws_cdk/_jsii/__init__.py")
    assert not pattern.search(f"{site}/aws_cdk/__init__.py")
    assert not pattern.search(f"{site}/cdk_nag/__init__.py")
    assert not pattern.search(f"{site}/aws_cdk_lib-2.275.0.dist-info/RECORD")
