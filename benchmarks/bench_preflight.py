"""Benchmark: how preflight scales with the number of records (2,000, 20,000 and 200,000).

Every size is built from real GSM8K problems: the raw GSM8K files (``question`` / ``answer``
JSONL, ``train.jsonl`` and ``test.jsonl``) of the folder in ``GSM8K_DIR`` (or ``--source``),
converted the way ``make convert GSM8K=1`` converts them, else the project's example dataset
(``datasets/gsm8k/train.jsonl``, already in the RFT format). The problems are repeated with new
ids and a variant marker, so ids and prompts stay unique. 200,000 records is ten times the
service's maximum: preflight reports that as an error, and still runs every check, which is
what is timed. For each size it times:

- the dataset checks alone (in process),
- ``python -m preflight --dataset ... --grader graders/gsm8k.json`` end to end (a fresh
  interpreter, as a user runs it), with the dataset and grader check times from its report.

Each check is linear in the records, so the time per 1,000 records should stay about the same
from one size to the next. The issue's target: 20,000 records in a few seconds.
Usage: ``python benchmarks/bench_preflight.py [--sizes 2000,20000,200000] [--source DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from preflight.convert import ConvertOptions, convert_rows  # noqa: E402
from preflight.dataset import Limits, check_dataset  # noqa: E402
from preflight.findings import Findings  # noqa: E402

SIZES = (2_000, 20_000, 200_000)
EXAMPLE = ROOT / "datasets" / "gsm8k" / "train.jsonl"
GRADER = ROOT / "graders" / "gsm8k.json"
SYSTEM = (
    "Solve the grade-school math problem. Reason step by step, then give the final answer "
    "on the last line in the form '#### <number>'."
)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def source_records(source: Path | None) -> tuple[list[dict[str, Any]], str]:
    """RFT records of the raw GSM8K files in ``source`` (else of the example dataset), and
    where they came from."""
    files = [source / name for name in ("train.jsonl", "test.jsonl")] if source else []
    files = [path for path in files if path.is_file()]
    if not files:
        return _jsonl(EXAMPLE), f"{len(_jsonl(EXAMPLE)):,} example records"
    rows = ((number, row) for path in files for number, row in enumerate(_jsonl(path), start=1))
    options = ConvertOptions(gsm8k=True, system=SYSTEM, id_prefix="gsm8k")
    records = list(convert_rows(rows, options, "gsm8k"))
    return records, f"{len(records):,} GSM8K problems"


def build(path: Path, source: list[dict[str, Any]], count: int) -> int:
    """Write ``count`` records to ``path``; return its size in bytes."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            record = json.loads(json.dumps(source[i % len(source)]))
            record["id"] = f"bench-{i:06d}"
            cycle = i // len(source)
            if cycle:
                record["messages"][-1]["content"] += f" (variant {cycle})"
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path.stat().st_size


def run_size(count: int, source: list[dict[str, Any]], folder: Path) -> None:
    """Build ``count`` records and print the figures of each check."""
    data = folder / f"train-{count}.jsonl"
    size = build(data, source, count)
    print(f"{count:,} records ({size / 1e6:.1f} MB):")
    findings = Findings()
    started = time.perf_counter()
    result = check_dataset(data, "train", Limits(max_prompt_tokens=4096), findings)
    elapsed = time.perf_counter() - started
    print(
        f"  dataset checks (in process): {elapsed:.2f} s "
        f"({elapsed / count * 1000:.3f} s per 1,000 records; {len(result.valid):,} valid)"
    )
    if not GRADER.is_file() or not (ROOT / "lambda" / "reward" / "handler.py").is_file():
        print("  grader checks: skipped (no graders/gsm8k.json or reward handler)")
        return
    command = [sys.executable, "-m", "preflight", "--dataset", str(data), "--grader"]
    command += [str(GRADER), "--json", "--no-progress", "--max-prompt-length", "4096"]
    started = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    report = json.loads(run.stdout) if run.stdout.startswith("{") else {}
    timings = report.get("timings_seconds") or {}
    grader = report.get("grader") or {}
    checks = timings.get("grader_checks")
    print(
        f"  python -m preflight with grader checks (end to end): {elapsed:.2f} s, exit "
        f"{run.returncode} ({elapsed / count * 1000:.3f} s per 1,000 records)"
    )
    if checks is not None:
        print(
            f"    of which dataset checks {timings.get('dataset_checks', 0):.2f} s, grader "
            f"checks {checks:.2f} s ({grader.get('handler_invocations', '?')} handler "
            f"invocations, {checks / count * 1000:.3f} s per 1,000 records)"
        )
    elif run.returncode not in (0, 1):
        print(f"    preflight failed: {run.stderr.strip().splitlines()[-1:]}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in SIZES),
        help="record counts, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=Path(os.environ["GSM8K_DIR"]) if os.environ.get("GSM8K_DIR") else None,
        help="folder of the raw GSM8K train.jsonl/test.jsonl (default: $GSM8K_DIR)",
    )
    args = parser.parse_args(argv)
    sizes = [int(size.replace("_", "")) for size in args.sizes.split(",") if size.strip()]
    source, origin = source_records(args.source)
    print(f"preflight benchmark: {', '.join(f'{s:,}' for s in sizes)} records from {origin}")
    with tempfile.TemporaryDirectory() as tmp:
        for count in sizes:
            run_size(count, source, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
