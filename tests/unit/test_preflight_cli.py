"""``python -m preflight`` / ``make preflight``: exit status, terminal and JSON reports."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from preflight import __main__ as preflight_main
from preflight.__main__ import main
from tests.conftest import write_fixture_cdk_json
from tests.lambda_loader import ROOT
from tests.openai_server import OpenAIServer, Reply

FIXTURES = ROOT / "tests" / "fixtures" / "preflight"
# The tests' own example dataset and grader (datasets/ and graders/ are the user's).
DATASET = "tests/fixtures/datasets/gsm8k"
GRADER = "tests/fixtures/graders/gsm8k.json"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([*args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_bad_file_exits_1_and_names_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--dataset", str(FIXTURES / "bad_json.jsonl")], capsys)
    assert code == 1
    assert f"{FIXTURES / 'bad_json.jsonl'} line 7: not valid JSON" in out
    assert "FAILED: 1 error, 0 warnings" in out


def test_json_report_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--dataset", str(FIXTURES / "duplicate_id.jsonl"), "--json"], capsys)
    report = json.loads(out)
    assert code == 1
    assert report["passed"] is False and report["errors"] == 1
    assert report["datasets"][0]["records"] == 100
    assert report["datasets"][0]["valid_records"] == 99
    [finding] = report["findings"]
    assert finding["code"] == "duplicate-id" and finding["severity"] == "error"
    assert finding["examples"][0].endswith('line 45: id "q-002" already used on line 3')


def test_warnings_do_not_fail(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    json_out = tmp_path / "r" / "report.json"
    code, out, _ = _run(
        [
            "--dataset",
            str(FIXTURES / "good.jsonl"),
            "--max-prompt-length",
            "20",
            "--json-out",
            str(json_out),
        ],
        capsys,
    )
    assert code == 0
    assert "PASSED: 0 errors, 50 warnings" in out
    report = json.loads(json_out.read_text(encoding="utf-8"))
    assert report["passed"] is True and report["warnings"] == 50
    assert report["datasets"][0]["over_prompt_limit"] == 50


def test_five_thousand_bad_lines_give_a_short_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = (FIXTURES / "good.jsonl").read_text(encoding="utf-8")
    path = tmp_path / "train.jsonl"
    path.write_text(good + '{"messages": []}\n' * 5_000, encoding="utf-8")
    code, out, _ = _run(["--dataset", str(path)], capsys)
    assert code == 1
    assert "messages not a non-empty list: 5,000" in out
    assert "... and 4,995 more" in out
    assert len(out.splitlines()) < 30


def test_env_supplies_max_prompt_length(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_fixture_cdk_json(tmp_path)
    monkeypatch.setattr(preflight_main, "ROOT", tmp_path)  # its cdk.json: the fixture's
    code, out, _ = _run(
        ["--dataset", str(FIXTURES / "good.jsonl"), "--env", "nova-dev", "--json"], capsys
    )
    report = json.loads(out)
    assert code == 0
    assert report["settings"]["max_prompt_length"] == 4096  # the fixture's nova-dev
    assert report["datasets"][0]["max_prompt_tokens"] == 4096

    code, out, _ = _run(
        ["--dataset", str(FIXTURES / "good.jsonl"), "--env", "dev", "--json"], capsys
    )
    report = json.loads(out)
    assert report["settings"]["max_prompt_length"] is None
    assert any(
        "environment dev (backend openai) sets no maxPromptLength" in n for n in report["notes"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "no/such.jsonl"], "preflight: --dataset no/such.jsonl: no such file\n"),
        (
            ["--dataset", str(FIXTURES / "good.jsonl"), "--env", "nope"],
            'preflight: env = "nope": no such environment; defined: ',
        ),
        (
            ["--dataset", str(FIXTURES / "good.jsonl"), "--samples", "5"],
            "preflight: --samples needs --model\n",
        ),
        (
            ["--dataset", str(FIXTURES / "good.jsonl"), "--model", "m"],
            "preflight: --model needs --grader (the sampled responses are graded)\n",
        ),
        (
            ["--dataset", str(FIXTURES / "good.jsonl"), "--max-prompt-length", "0"],
            "preflight: --max-prompt-length must be at least 1\n",
        ),
        (
            ["--dataset", str(FIXTURES / "good.jsonl"), "--per-prompt", "4"],
            "preflight: --per-prompt needs --model\n",
        ),
        (
            ["--dataset", str(FIXTURES / "good.jsonl"), "--per-prompt", "17"],
            "preflight: --per-prompt must be between 1 and 16\n",
        ),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = _run(args, capsys)
    assert code == 2
    assert out == ""
    assert err.startswith(message)
    assert err.count("\n") == 1


def _make_preflight(*variables: str) -> subprocess.CompletedProcess[str]:
    """``make preflight <variables>`` with this interpreter (the virtualenv is not rebuilt)."""
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            "preflight",
            f"PY={sys.executable}",
            *variables,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_preflight_passes_the_example(tmp_path: Path) -> None:
    """The documented command on the example dataset and grader."""
    run = _make_preflight(
        f"DATASET={DATASET}/train.jsonl",
        f"VALIDATION={DATASET}/validation.jsonl",
        f"GRADER={GRADER}",
        f"REPORT_DIR={tmp_path}",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED: 0 errors" in run.stdout
    report = json.loads((tmp_path / "preflight.json").read_text(encoding="utf-8"))
    assert report["passed"] is True
    assert [d["records"] for d in report["datasets"]] == [500, 100]
    assert report["grader"]["probes"]["reference"]["mean"] == 1.0
    image = matplotlib_image().imread(tmp_path / "preflight.png")
    height, width = image.shape[:2]
    assert (width, height) == (1260, 1020)  # 3 x 3 panels at 100 dpi


def test_make_preflight_rejects_a_grader_that_rewards_an_empty_answer(tmp_path: Path) -> None:
    grader = tmp_path / "typo.json"
    grader.write_text(
        json.dumps({"type": "math_answer", "input": "{{ item.reference_answer.final_answer }}"})
    )
    run = _make_preflight(
        f"DATASET={DATASET}/train.jsonl", f"GRADER={grader}", f"REPORT_DIR={tmp_path}"
    )
    assert run.returncode != 0
    assert "ERROR grader rewards an empty response: 500" in run.stdout
    assert (
        f"{DATASET}/train.jsonl line 1 (id gsm8k-train-00000): an empty response scores 1.00"
    ) in run.stdout
    assert json.loads((tmp_path / "preflight.json").read_text())["passed"] is False


def test_make_preflight_needs_dataset_and_grader() -> None:
    run = _make_preflight(f"DATASET={DATASET}/train.jsonl")
    assert run.returncode != 0
    assert "make preflight: set DATASET=<jsonl> GRADER=<json>" in run.stderr


def matplotlib_image() -> Any:
    import matplotlib.image

    return matplotlib.image


def test_baseline_sampling_end_to_end(
    capsys: pytest.CaptureFixture[str], openai_server: OpenAIServer, tmp_path: Path
) -> None:
    """--model/--samples: the real SDK to a local server, graded by the real handler."""
    lines = (ROOT / DATASET / "train.jsonl").read_text(encoding="utf-8").split("\n")
    answers = {}
    for line in filter(None, lines):
        record = json.loads(line)
        answers[record["messages"][-1]["content"]] = record["reference_answer"]["final_answer"]
    asked: list[str] = []

    def reply(body: dict[str, Any], number: int) -> Reply:
        question = body["messages"][-1]["content"]
        asked.append(question)
        # right on questions of even length, wrong otherwise: about half earn a reward
        if len(question) % 2 == 0:
            return Reply(content=f"Let me think.\n#### {answers[question]}")
        return Reply(content="Let me think.\n#### 123456789")

    openai_server.chat.behaviour = reply
    plot = tmp_path / "p.png"
    code = main(
        [
            "--dataset",
            str(ROOT / DATASET / "train.jsonl"),
            "--grader",
            str(ROOT / GRADER),
            "--model",
            "openai.gpt-oss-20b",
            "--samples",
            "40",
            "--concurrency",
            "4",
            "--json",
            "--plot",
            str(plot),
        ]
    )
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 0
    baseline = report["baseline"]
    assert baseline["model"] == "openai.gpt-oss-20b"
    assert baseline["sampled"] == 40 and baseline["failed"] == 0
    right = sum(len(q) % 2 == 0 for q in asked)
    assert len(asked) == 40 and 0 < right < 40
    assert baseline["rewards"]["mean"] == round(right / 40, 4)
    assert baseline["rewards"]["share_nonzero"] == round(right / 40, 4)
    assert {r.body["model"] for r in openai_server.requests} == {"openai.gpt-oss-20b"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Traceback" not in err


def test_baseline_near_zero_is_a_warning(
    capsys: pytest.CaptureFixture[str], openai_server: OpenAIServer
) -> None:
    openai_server.chat.behaviour = lambda body, number: Reply(content="I am not sure.")
    code, out, _ = _run(
        [
            "--dataset",
            str(ROOT / DATASET / "train.jsonl"),
            "--grader",
            str(ROOT / GRADER),
            "--model",
            "m",
            "--samples",
            "20",
        ],
        capsys,
    )
    assert code == 0
    assert "WARNING base model earns (almost) no reward: 1" in out
    assert "m: 0% of 20 prompts earn a non-zero reward" in out


def test_per_prompt_sampling_reports_the_expected_zero_variance_share(
    capsys: pytest.CaptureFixture[str], openai_server: OpenAIServer
) -> None:
    """PER_PROMPT=3: three responses per prompt, the share of prompts whose three earned the
    same reward (the reward function's ZeroVarianceShare) in the report and its JSON."""
    lines = (ROOT / DATASET / "train.jsonl").read_text(encoding="utf-8").split("\n")
    answers = {}
    for line in filter(None, lines):
        record = json.loads(line)
        answers[record["messages"][-1]["content"]] = record["reference_answer"]["final_answer"]
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def reply(body: dict[str, Any], number: int) -> Reply:
        question = body["messages"][-1]["content"]
        with lock:
            seen[question] = seen.get(question, 0) + 1
            nth = seen[question]
        # questions of even length: always right (no signal); odd: right once in three
        if len(question) % 2 == 0 or nth == 1:
            return Reply(content=f"#### {answers[question]}")
        return Reply(content="#### 123456789")

    openai_server.chat.behaviour = reply
    argv = [
        "--dataset",
        str(ROOT / DATASET / "train.jsonl"),
        "--grader",
        str(ROOT / GRADER),
        "--model",
        "m",
        "--samples",
        "30",
        "--per-prompt",
        "3",
    ]
    code, out, _ = _run([*argv, "--json"], capsys)
    baseline = json.loads(out)["baseline"]
    assert code == 0
    assert len(openai_server.requests) == 90 and set(seen.values()) == {3}
    even = sum(len(q) % 2 == 0 for q in seen)
    assert 0 < even < 30
    assert baseline["per_prompt"] == 3 and baseline["sampled"] == 90
    assert baseline["zero_variance_share"] == pytest.approx(even / 30)

    openai_server.chat.behaviour = lambda body, number: Reply(content="#### 123456789")
    code, out, _ = _run(argv, capsys)
    assert code == 0
    assert "WARNING most prompts give every response the same reward" in out
    assert "m: for 100% of the prompts all 3 responses earned the same reward" in out
