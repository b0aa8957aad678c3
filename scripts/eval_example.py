"""Redraw ``docs/eval-report-example.png``: ``make eval`` on the local test server.

``python scripts/eval_example.py`` starts the local OpenAI-compatible test server with a base
model that answers 56% of the fixture GSM8K validation prompts right and a tuned one 85% (the
walkthrough's figures; which prompts is fixed per model, so the same picture every time), and
runs ``scripts/eval.py`` on the fixture environment ``dev`` as a user would, grading with the
reward Lambda's own handler.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.eval import main as evaluate  # noqa: E402
from tests.openai_server import OpenAIServer, Students  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
VALIDATION = FIXTURES / "datasets" / "gsm8k" / "validation.jsonl"
OUT = ROOT / "docs" / "eval-report-example.png"
SHARES = {"base": 0.56, "tuned": 0.85}


def main(out: Path = OUT) -> int:
    """Draw the example into ``out`` (docs/) and print its path."""
    lines = VALIDATION.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    with OpenAIServer() as server, tempfile.TemporaryDirectory() as folder:
        server.chat.behaviour = Students(rows, SHARES)
        os.environ.update(server.sdk_environment())
        arguments = ["--env", "dev", "--cdk-json", str(FIXTURES / "cdk.json")]
        arguments += ["--job", "ftjob-example", "--model", "tuned", "--base", "base"]
        status = evaluate([*arguments, "--out-dir", folder])
        if status:
            return status
        (report,) = Path(folder).glob("*/report.png")
        shutil.copyfile(report, out)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
