"""The checks make runs on cdk.json before the CDK CLI, and the preflight of what it deploys."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from stacks.config import load_environments
from tests.conftest import FIXTURE_CDK_JSON, cdk_context
from tests.lambda_loader import ROOT


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"rft_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _script("check_cdk_json")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{\n  "context": {\n    "a": 1\n    "b": 2\n  }\n}\n', "line 4 column 5: Expecting ','"),
        ('{\n  "context": {},\n}\n', "cdk.json line 3 column 1: "),
        ("[]", 'cdk.json: must be a JSON object with a "context" object'),
    ],
)
def test_a_broken_cdk_json_names_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "cdk.json"
    path.write_text(text, encoding="utf-8")
    found = check.problem(path)
    assert found is not None and expected in found
    assert "\n" not in found


def test_the_check_exits_1_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cdk.json"
    path.write_text('{"context": {"environments": {,}}}', encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_cdk_json.py"), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert run.stderr == (
        "error: cdk.json line 1 column 31: Expecting property name enclosed in double quotes\n"
    )


def test_a_good_cdk_json_passes() -> None:
    assert check.problem(FIXTURE_CDK_JSON) is None
    assert check.problem(ROOT / "cdk.json") is None


def test_make_synth_checks_cdk_json_before_the_cli() -> None:
    plan = subprocess.run(
        ["make", "--no-print-directory", "-n", "synth"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    syntax = plan.index("scripts/check_cdk_json.py\n")
    environments = plan.index("scripts/check_cdk_json.py --environments")
    assert syntax < environments < plan.index("bundle_lambdas.py")
    assert plan.index("bundle_lambdas.py") < plan.index("cdk synth")


def test_every_configuration_problem_before_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    context = cdk_context()
    context["environments"]["dev"]["log_retention_days"] = 10
    context["environments"]["prod"]["grader"] = "tests/fixtures/bad_graders/bad_regex.json"
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"context": context}), encoding="utf-8")
    assert check.main([str(path), "--environments"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":", 2)[1] for line in lines] == [
        " environment 'dev'",
        " environment 'prod'",
    ]
    assert lines[1].endswith(
        "bad_regex.json: $.graders.format.pattern: invalid regular expression: missing ), "
        "unterminated subpattern at position 0"
    )
    assert check.main([str(path), "--environments", "--env", "staging"]) == 0


def test_preflight_examples_checks_each_pair_once() -> None:
    examples = _script("preflight_examples")
    context = cdk_context()
    staging = context["environments"]["staging"]
    staging["grader"] = "tests/fixtures/graders/invoice_extraction.json"
    checks = examples.checks(load_environments(context, ROOT))
    dataset, gsm8k = "tests/fixtures/datasets/gsm8k", "tests/fixtures/graders/gsm8k.json"
    assert checks == {
        (dataset, gsm8k, None): ["dev", "prod"],
        (dataset, staging["grader"], None): ["staging"],
        (dataset, gsm8k, 4096): ["nova-dev"],
    }
    assert json.loads(FIXTURE_CDK_JSON.read_text())["context"]["environments"]
