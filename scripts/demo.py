"""``make demo``: the loop after a job, end to end, without AWS.

It starts the project's local OpenAI-compatible server (the one the tests use) on 127.0.0.1,
with a "base" model that answers 56% of the fixture GSM8K validation prompts right and a
"tuned" one 85% (which prompts is fixed per model, so every run gives the same figures), then,
as a user would after a job:

1. ``make eval``: the tuned against the base model, graded by the reward Lambda's own handler;
2. ``make chat``: one question to the tuned model;
3. ``make report``: the training curves of a simulated 67-step job with metrics;
4. ``make samples``: the graded rollouts the reward function kept during step 1 (every one,
   in a local folder instead of the artifacts bucket).

It uses the fixture environment ``dev`` of ``tests/fixtures/cdk.json`` (not your ``cdk.json``,
which may name datasets and environments of your own), needs no credentials and no network,
stops the server, and writes under ``reports/demo/`` (``OUT_DIR=`` elsewhere). The last line
is the path of the evaluation's ``summary.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.chat import main as chat  # noqa: E402
from scripts.eval import main as evaluate  # noqa: E402
from scripts.report import main as report  # noqa: E402
from scripts.samples import main as samples  # noqa: E402
from tests.metrics_fixtures import synthetic_run  # noqa: E402
from tests.openai_server import OpenAIServer, Students  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
CDK_JSON = FIXTURES / "cdk.json"
VALIDATION = FIXTURES / "datasets" / "gsm8k" / "validation.jsonl"
TUNED, BASE = "ft:demo-tuned", "demo-base"
SHARES = {BASE: 0.56, TUNED: 0.85}
JOB = "ftjob-demo"
# Variables that would send a call elsewhere than the local server, or to AWS.
_UNSET = ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@contextlib.contextmanager
def _offline(environment: dict[str, str]) -> Iterator[None]:
    """The process environment pointed at the local server, restored afterwards."""
    saved = dict(os.environ)
    for name in _UNSET:
        os.environ.pop(name, None)
    os.environ.update(environment)
    os.environ.setdefault("AWS_REGION", "us-west-2")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _fixture_cdk_json(folder: Path) -> Path:
    """The fixture cdk.json with absolute dataset and grader paths, as every tool reads them."""
    document = json.loads(CDK_JSON.read_text("utf-8"))
    for raw in document["context"]["environments"].values():
        for key in ("dataset", "grader"):
            raw[key] = str(ROOT / raw[key])
    path = folder / "cdk.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def run(out_dir: Path) -> Path:
    """Run the three steps against a local server; the path of the evaluation's summary."""
    rows = [json.loads(line) for line in VALIDATION.read_text("utf-8").splitlines() if line]
    question = next(m["content"] for m in rows[0]["messages"] if m["role"] == "user")
    out_dir.mkdir(parents=True, exist_ok=True)
    kept = out_dir / "rollouts"
    shutil.rmtree(kept, ignore_errors=True)  # this run's samples only
    kept.mkdir()
    with (
        tempfile.TemporaryDirectory() as folder,
        OpenAIServer() as server,
        _offline(server.sdk_environment()),
    ):
        server.chat.behaviour = Students(rows, SHARES)
        synthetic_run(server.fine_tuning, JOB, steps=67)
        server.fine_tuning.set_status(JOB, "succeeded")
        common = ["--env", "dev", "--cdk-json", str(_fixture_cdk_json(Path(folder)))]

        _step(f"make eval: {TUNED} against {BASE} on {len(rows)} validation prompts")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            models = ["--job", JOB, "--model", TUNED, "--base", BASE]
            written = ["--out-dir", str(out_dir), "--keep-rollouts", str(kept)]
            status = evaluate([*common, *models, *written])
        print(printed.getvalue(), end="")
        if status:
            raise SystemExit(f"demo: make eval failed (exit status {status})")
        summary = Path(printed.getvalue().strip().splitlines()[-1])

        _step(f"make chat: {question[:70]}...")
        chat([*common, "--model", TUNED, "--prompt", question])

        _step(f"make report: the simulated job {JOB}")
        report([JOB, "--out", str(out_dir / f"{JOB}.png")])

        _step("make samples: the rollouts the reward function kept, the lowest scores first")
        samples([*common, "--source", str(kept), "--max-score", "0", "--limit", "5",
                 "--out-dir", str(out_dir)])  # fmt: skip
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Print each step's output; the last line is the path of ``summary.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "reports" / "demo")
    args = parser.parse_args(argv)
    summary = run(args.out_dir)
    print(f"\ndemo: report {summary.parent / 'report.png'}")
    print(f"demo: training curves {args.out_dir / (JOB + '.png')}")
    for page in sorted(args.out_dir.glob("samples-*.html")):
        print(f"demo: rollout samples {page}")
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
