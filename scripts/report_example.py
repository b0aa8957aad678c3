"""Redraw ``docs/report-example.png``: ``make report`` on the test server's synthetic run.

``python scripts/report_example.py`` starts the local OpenAI-compatible test server, gives it
the synthetic 67-step run (``tests/metrics_fixtures.py: synthetic_run``, seeded, so the
same figure every time) and draws it with ``scripts/report.py``, as a user would.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.report import main as report  # noqa: E402
from tests.metrics_fixtures import synthetic_run  # noqa: E402
from tests.openai_server import OpenAIServer  # noqa: E402

JOB = "ftjob-synthetic-example"
OUT = ROOT / "docs" / "report-example.png"


def main() -> int:
    """Draw the example into docs/ and print its path."""
    with OpenAIServer() as server:
        synthetic_run(server.fine_tuning, JOB, steps=67)
        server.fine_tuning.set_status(JOB, "succeeded")
        os.environ.update(server.sdk_environment())
        return report([JOB, "--out", str(OUT)])


if __name__ == "__main__":
    raise SystemExit(main())
