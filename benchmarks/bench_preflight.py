"""Benchmark: preflight on 20,000 records (the service's maximum training set).

Builds a 20,000-record training file from the example dataset (its records repeated with new
ids and a variant marker, so ids and prompts stay unique), then times:

- the dataset checks alone (in process, best of 3),
- ``python -m preflight --dataset ...`` end to end (a fresh interpreter, as a user runs it),
- the grader checks on all 20,000 records with ``graders/gsm8k.json`` (when it exists).

Prints the figures; the issue's target is "20,000 records in well under 15 s".
Usage: ``python benchmarks/bench_preflight.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from preflight.dataset import Limits, check_dataset  # noqa: E402
from preflight.findings import Findings  # noqa: E402

RECORDS = 20_000
EXAMPLE = ROOT / "datasets" / "gsm8k" / "train.jsonl"
GRADER = ROOT / "graders" / "gsm8k.json"


def _source_records() -> list[dict[str, object]]:
    if EXAMPLE.is_file():
        return [json.loads(line) for line in EXAMPLE.read_text("utf-8").split("\n") if line]
    # Without the example dataset: arithmetic questions of a similar shape.
    return [
        {
            "messages": [
                {"role": "system", "content": "Answer with '#### <number>'."},
                {
                    "role": "user",
                    "content": f"A shop sells {i} apples a day for a "
                    f"week. How many apples does it sell in {i % 9 + 2} weeks?",
                },
            ],
            "reference_answer": {"final_answer": str(i * 7 * (i % 9 + 2))},
        }
        for i in range(1, 501)
    ]


def build(path: Path) -> int:
    """Write RECORDS records to ``path``; return its size in bytes."""
    source = _source_records()
    with path.open("w", encoding="utf-8") as handle:
        for i in range(RECORDS):
            record = json.loads(json.dumps(source[i % len(source)]))
            record["id"] = f"bench-{i:05d}"
            cycle = i // len(source)
            if cycle:
                record["messages"][-1]["content"] += f" (variant {cycle})"
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path.stat().st_size


def main() -> int:
    """Run the benchmark and print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.jsonl"
        size = build(data)
        print(
            f"preflight benchmark: {RECORDS:,} records, {size / 1e6:.1f} MB "
            f"({'from ' + EXAMPLE.name if EXAMPLE.is_file() else 'synthetic'})"
        )

        timings = []
        for _ in range(3):
            findings = Findings()
            started = time.perf_counter()
            result = check_dataset(data, "train", Limits(max_prompt_tokens=4096), findings)
            timings.append(time.perf_counter() - started)
        assert len(result.valid) == RECORDS, findings.groups  # the file must be clean
        print(
            f"  dataset checks (in process, best of 3): {min(timings):.2f} s "
            f"({RECORDS / min(timings):,.0f} records/s)"
        )

        started = time.perf_counter()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "preflight",
                "--dataset",
                str(data),
                "--json",
                "--max-prompt-length",
                "4096",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        print(
            f"  python -m preflight, dataset only (end to end): {elapsed:.2f} s, "
            f"exit {run.returncode}"
        )

        if GRADER.is_file() and (ROOT / "lambda" / "reward" / "handler.py").is_file():
            started = time.perf_counter()
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "preflight",
                    "--dataset",
                    str(data),
                    "--grader",
                    str(GRADER),
                    "--json",
                    "--no-progress",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            elapsed = time.perf_counter() - started
            report = json.loads(run.stdout) if run.stdout.startswith("{") else {}
            grader = report.get("grader") or {}
            print(
                f"  python -m preflight with grader checks on {RECORDS:,} records: "
                f"{elapsed:.2f} s ({grader.get('handler_invocations', '?')} handler "
                f"invocations), exit {run.returncode}"
            )
        else:
            print("  grader checks: skipped (no graders/gsm8k.json or reward handler)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
