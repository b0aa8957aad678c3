"""What a person notices: file modes, byte counts, stale pictures, columns, plurals, manifests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from preflight.__main__ import main as preflight
from preflight.convert import main as convert
from preflight.findings import plural
from scripts.preconditions import PreconditionError, check
from scripts.synthesized import ManifestError, summary, templates
from tests.lambda_loader import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "preflight"


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process's umask after a test changed it."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_convert_writes_the_mode_the_umask_gives(tmp_path: Path, mask: int, mode: int) -> None:
    source = tmp_path / "qa.csv"
    source.write_text("question,answer\nWhat is 2+2?,4\n", encoding="utf-8")
    os.umask(mask)
    assert convert(["--input", str(source), "--output", str(tmp_path / "out.jsonl")]) == 0
    assert (tmp_path / "out.jsonl").stat().st_mode & 0o777 == mode


def test_preflight_counts_the_files_real_bytes(tmp_path: Path) -> None:
    dataset = tmp_path / "crlf.jsonl"
    dataset.write_bytes((FIXTURES / "good.jsonl").read_bytes().replace(b"\n", b"\r\n"))
    out = tmp_path / "p.json"
    preflight(["--dataset", str(dataset), "--json", "--json-out", str(out), "--no-progress"])
    assert json.loads(out.read_text())["datasets"][0]["bytes"] == dataset.stat().st_size


def test_a_run_without_rewards_removes_the_previous_png(tmp_path: Path) -> None:
    plot, report = tmp_path / "preflight.png", tmp_path / "preflight.json"
    plot.write_bytes(b"an older run's picture")
    grader = ROOT / "tests" / "fixtures" / "reward" / "malformed_samples.json"
    args = ["--dataset", str(FIXTURES / "good.jsonl"), "--grader", str(grader), "--no-progress"]
    assert preflight([*args, "--json-out", str(report), "--plot", str(plot)]) == 1
    assert not plot.exists()
    assert json.loads(report.read_text())["passed"] is False


def test_a_csv_without_the_extension_is_recognised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tmp_path / "qa.txt"
    dataset.write_text("prompt,solution\nWhat is 2+2?,4\n", encoding="utf-8")
    assert preflight(["--dataset", str(dataset)]) == 2
    assert capsys.readouterr().err == (
        f"preflight: --dataset {dataset}: CSV, not RFT JSONL; convert it first: make convert "
        f"INPUT={dataset} OUTPUT={tmp_path / 'qa.jsonl'} FORMAT=csv QUESTION=<column> "
        "ANSWER=<column> (columns: prompt, solution)\n"
    )


def test_plurals() -> None:
    assert [plural(n, "error") for n in (0, 1, 2, 1000)] == [
        "0 errors",
        "1 error",
        "2 errors",
        "1,000 errors",
    ]


def test_make_help_columns_line_up() -> None:
    out = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    starts = {re.match(r"  make \S+\s+", line).end() for line in out.splitlines()}  # type: ignore[union-attr]
    assert len(starts) == 1 and len(out.splitlines()) > 10


def _cdk_json(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cdk.json"
    path.write_text(text, encoding="utf-8")
    return path


def test_preconditions_name_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = _cdk_json(tmp_path, '{"context": {"environments": {"a": {"region": "eu-west-1"}}}}')
    with pytest.raises(
        PreconditionError, match=r"^set ENV=<environment> \(defined in cdk.json: a\)$"
    ):
        check("", True, False, good)
    with pytest.raises(
        PreconditionError, match=r"^ENV=b: no such environment in cdk.json; defined: a$"
    ):
        check("b", False, False, good)
    check("", False, False, good)  # no ENV needed, none given: nothing to check
    bad = _cdk_json(tmp_path, '{\n  "context": {,\n}')
    with pytest.raises(PreconditionError, match=r"^cdk\.json line 2 column 15: not valid JSON"):
        check("a", True, False, bad)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    good = _cdk_json(tmp_path, '{"context": {"environments": {"a": {"region": "eu-west-1"}}}}')
    with pytest.raises(
        PreconditionError,
        match=(
            r"^no AWS credentials found for environment 'a' \(account from the credentials, "
            r"region eu-west-1\): run aws configure / set AWS_PROFILE$"
        ),
    ):
        check("a", True, True, good)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    check("a", True, True, good)


def test_the_manifest_lists_only_the_last_synths_stacks(tmp_path: Path) -> None:
    """cfn-lint and checkov scan these: a stale template beside them is not among them."""
    (tmp_path / "A-dev.template.json").write_text("{}")
    (tmp_path / "A-prod.template.json").write_text("{}")  # left by an earlier synth
    manifest = {
        "artifacts": {
            "A-dev.assets": {"type": "cdk:asset-manifest"},
            "A-dev": {
                "type": "aws:cloudformation:stack",
                "properties": {"templateFile": "A-dev.template.json"},
            },
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    found = templates(tmp_path)
    assert found == {"A-dev": tmp_path / "A-dev.template.json"}
    assert summary(found) == f"synthesized A-dev: {tmp_path / 'A-dev.template.json'}"
    with pytest.raises(ManifestError, match="not found: run make synth first"):
        templates(tmp_path / "nowhere")
    done = subprocess.run(
        [sys.executable, "scripts/synthesized.py", "--templates", "--outdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == f"{tmp_path / 'A-dev.template.json'}\n"
