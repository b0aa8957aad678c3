"""``make demo``: the loop after a job against the local server, without AWS."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scripts import demo


def test_demo_runs_eval_chat_and_report_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Credentials that would fail if anything reached AWS: the demo must not need them.
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing"))
    assert demo.main(["--out-dir", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = Path(lines[-1])
    assert summary.name == "summary.json" and summary.is_file()
    figures = json.loads(summary.read_text("utf-8"))
    text = json.dumps(figures)
    assert demo.TUNED in text and demo.BASE in text
    assert (summary.parent / "report.png").stat().st_size > 10_000
    assert (tmp_path / "out" / f"{demo.JOB}.png").stat().st_size > 10_000
    assert "#### " in "\n".join(lines)  # the chat step printed the tuned model's reply
    # make samples read the rollouts the reward function kept while it graded the evaluation
    kept = list((tmp_path / "out" / "rollouts").rglob("*.jsonl.gz"))
    assert kept, "the evaluation's grading kept no rollout"
    (page,) = (tmp_path / "out").glob("samples-*.html")
    assert "gsm8k-validation-" in page.read_text("utf-8")
    assert os.environ.get("AWS_PROFILE") == "no-such-profile"  # restored
