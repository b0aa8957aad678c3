"""``make eval`` against the local OpenAI-compatible server, and the report's bytes.

The real make target runs (the virtualenv is not rebuilt) with the fixture cdk.json
(``CDK_JSON=``: cdk.json is the user's) and the server as ``OPENAI_BASE_URL``; its figures
are compared with what the server was told to do.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.eval_support import ensure_paths, students_server, validation_rows
from tests.lambda_loader import ROOT
from tests.openai_server import OpenAIServer
from tests.openai_server.students import user_text

ensure_paths()

from rft_eval.outputs import build_summary, render  # noqa: E402
from rft_eval.records import Record  # noqa: E402
from rft_eval.settings import Settings  # noqa: E402

FIXTURE_CDK_JSON = "tests/fixtures/cdk.json"


def make_eval(
    server: OpenAIServer, out: Path, *variables: str, model: str = "MODEL=tuned"
) -> subprocess.CompletedProcess[str]:
    """``make eval ENV=dev MODEL=tuned BASE=base <variables>`` against ``server`` (the fixture
    cdk.json, outputs under ``out``); ``model`` replaces ``MODEL=tuned`` (e.g. ``JOB=...``)."""
    env = {**os.environ, **server.sdk_environment()}
    command = [
        "make",
        "--no-print-directory",
        "-o",
        ".venv/.installed",
        "eval",
        "ENV=dev",
        model,
        "BASE=base",
        f"CDK_JSON={FIXTURE_CDK_JSON}",
        f"REPORT_DIR={out}",
        *variables,
        f"PY={sys.executable}",
    ]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_make_eval_prints_the_summary_path_last_with_the_servers_figures(
    tmp_path: Path,
) -> None:
    every = validation_rows()
    limit = 40
    shares = {"base": 0.56, "tuned": 0.85}
    with students_server(shares, every) as (server, students):
        run = make_eval(server, tmp_path, f"LIMIT={limit}")
        again = make_eval(server, tmp_path, f"LIMIT={limit}")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    path = Path(run.stdout.splitlines()[-1])
    assert path.name == "summary.json" and path.parent.parent == tmp_path
    assert path.parent.name.startswith("eval-tuned-")
    summary = json.loads(path.read_text(encoding="utf-8"))
    assert summary["n_prompts"] == limit and summary["failed_calls"] == 0
    # Within sampling error of the shares the server was given (40 of its 100 prompts) ...
    for model, share in shares.items():
        error = 3 * math.sqrt(share * (1 - share) / limit)
        assert abs(summary[model]["mean_reward"] - share) <= error
    # ... and exactly what it answered on those 40.
    texts = [user_text(row["messages"]) for row in every[:limit]]
    for model in shares:
        expected = round(students.accuracy(model, texts), 6)
        assert summary[model]["mean_reward"] == summary[model]["pass_rate"] == expected
    low, high = summary["difference"]["ci95"]
    assert low <= shares["tuned"] - shares["base"] <= high
    assert summary["promoted"] is True and "would promote (rule ci_above_zero: " in run.stdout
    keys = {"n_prompts", "difference", "wins", "ties", "losses", "failed_calls", "promoted"}
    assert keys <= set(summary)
    assert summary["wins"] + summary["ties"] + summary["losses"] == limit
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "records.jsonl",
        "report.md",
        "report.png",
        "summary.json",
    ]
    # Same inputs, same folder, same bytes.
    assert again.stdout.splitlines()[-1] == str(path)
    assert again.stdout == run.stdout


def test_make_eval_succeeds_when_the_gate_would_not_promote(tmp_path: Path) -> None:
    rows = validation_rows(12)
    with students_server({"base": 0.5, "tuned": 0.5}, rows) as (server, _students):
        run = make_eval(server, tmp_path, "LIMIT=12", "SAMPLES=2")
    assert run.returncode == 0, run.stderr
    summary = json.loads(Path(run.stdout.splitlines()[-1]).read_text(encoding="utf-8"))
    assert summary["promoted"] is False and "would not promote (rule min_prompts: " in run.stdout
    assert summary["decision"]["reason"] == "12 prompts compared, fewer than the 30 required"
    assert summary["base"]["graded"] == 24 and summary["settings"]["samples_per_prompt"] == 2


def _records(count: int) -> list[Record]:
    found = []
    for index in range(count):
        pid = f"q{index:03d}"
        found.append(Record(pid, "base", "base", 0, "x", float(index % 3 == 0), {}, None))
        found.append(Record(pid, "tuned", "tuned", 0, "y", float(index % 4 != 0), {}, None))
    found.append(Record("q999", "base", "base", 0, None, None, {}, "APIConnectionError: down"))
    found.append(Record("q999", "tuned", "tuned", 0, "z", 1.0, {}, None))
    return found


def _summary(records: list[Record]) -> dict[str, Any]:
    return build_summary(
        records,
        Settings(bootstrap_resamples=500),
        job_id="ftjob-report",
        environment="dev",
        backend="openai",
        sources={},
    )


_DRAW = """
import sys
sys.path[:0] = sys.argv[1:3]
from tests.unit.test_eval_cli import _records, _summary
from rft_eval.outputs import render
records = _records(30)
sys.stdout.buffer.write(render(_summary(records), records)["report.png"])
"""


def test_the_report_is_the_same_bytes_for_the_same_summary() -> None:
    records = _records(30)
    summary = _summary(records)
    first, second = render(summary, records), render(summary, records)
    assert first == second
    png = first["report.png"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"Software" not in png  # no matplotlib version stamp
    # Another interpreter, another hash seed: the same PNG.
    paths = [str(ROOT), str(ROOT / "lambda" / "evaluation")]
    env = {**os.environ, "PYTHONHASHSEED": "123", "MPLBACKEND": "Agg"}
    other = subprocess.run(
        [sys.executable, "-c", _DRAW, *paths], capture_output=True, env=env, check=True
    )
    assert other.stdout == png


def test_the_markdown_report_says_what_was_compared_and_what_was_excluded() -> None:
    records = _records(30)
    text = render(_summary(records), records)["report.md"].decode()
    assert text.startswith("# Evaluation of ftjob-report")
    assert "on 30 validation prompts" in text
    assert "**Excluded from both models:** 1 prompt(s)" in text and "`q999`" in text
    assert "![reward distributions and per-prompt differences](report.png)" in text


def test_the_readme_picture_is_what_scripts_eval_example_draws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scripts.eval_example import OUT, main

    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # restored after the run
    assert main(tmp_path / "example.png") == 0
    assert (tmp_path / "example.png").read_bytes() == OUT.read_bytes(), (
        "docs/eval-report-example.png is stale: run python scripts/eval_example.py"
    )


def test_make_eval_of_a_job_calls_its_fine_tuned_model(tmp_path: Path) -> None:
    rows = validation_rows(6)
    with students_server({"base": 0.5, "tuned": 1.0}, rows) as (server, _students):
        server.fine_tuning.add_job("ftjob-done", status="succeeded")
        server.fine_tuning.set_status("ftjob-done", "succeeded", fine_tuned_model="tuned")
        server.fine_tuning.add_job("ftjob-running")
        done, running, unknown = (
            make_eval(server, tmp_path, "LIMIT=6", model=f"JOB={job}")
            for job in ("ftjob-done", "ftjob-running", "ftjob-unknown")
        )
    assert done.returncode == 0, done.stderr
    summary = json.loads(Path(done.stdout.splitlines()[-1]).read_text(encoding="utf-8"))
    assert summary["job_id"] == "ftjob-done" and summary["tuned"]["model_id"] == "tuned"
    assert summary["tuned"]["mean_reward"] == 1.0
    assert Path(done.stdout.splitlines()[-1]).parent.name.startswith("eval-ftjob-done-")
    assert running.returncode == unknown.returncode == 2
    assert running.stderr.splitlines()[0] == (
        "eval: JOB=ftjob-running has no fine-tuned model (status running)"
    )
    assert unknown.stderr.splitlines()[0].startswith("eval: JOB=ftjob-unknown: not found at ")


def test_eval_reads_the_tuned_model_from_the_job_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from moto import mock_aws

    from scripts.eval import main

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    rows = validation_rows(4)
    arguments = ["--env", "dev", "--cdk-json", FIXTURE_CDK_JSON, "--base", "base"]
    arguments += ["--limit", "4", "--out-dir", str(tmp_path)]
    with mock_aws(), students_server({"base": 0.0, "tuned": 1.0}, rows) as (server, _):
        for name, value in server.sdk_environment().items():
            monkeypatch.setenv(name, value)
        assert main(arguments) == 2  # no record yet: one line, status 2
        record = {"job_id": "ftjob-rec", "backend": "openai", "status": "succeeded"}
        ssm = boto3.client("ssm", region_name="us-west-2")
        ssm.put_parameter(Name="/bedrock-rft/dev/job", Value=json.dumps(record), Type="String")
        assert main(arguments) == 2  # no fine-tuned model in it yet
        record["fine_tuned_model"] = "tuned"
        ssm.put_parameter(
            Name="/bedrock-rft/dev/job", Value=json.dumps(record), Type="String", Overwrite=True
        )
        assert main(arguments) == 0
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text(encoding="utf-8"))
    assert summary["job_id"] == "ftjob-rec" and summary["tuned"]["mean_reward"] == 1.0
