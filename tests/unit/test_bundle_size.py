"""The size limit of the Lambda bundles: a bundle over it fails the build in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stacks import bundling as bundler
from stacks.bundle_store import (
    BUILD_DIR_VARIABLE,
    read_record,
    source_files,
    source_folders,
    sources_digest,
)
from tests.bundle_support import lock_pins
from tests.lambda_loader import ROOT


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)


def test_the_limit_is_below_lambdas_quota() -> None:
    assert bundler.MAX_UNZIPPED_BYTES < bundler.LAMBDA_UNZIPPED_QUOTA == 250 * 2**20


def test_sizes_count_every_file_under_its_top_level_entry(tmp_path: Path) -> None:
    _write(tmp_path / "big" / "a.so", 3000)
    _write(tmp_path / "big" / "sub" / "__pycache__" / "b.pyc", 1000)
    _write(tmp_path / "handler.py", 10)
    os.link(tmp_path / "big" / "a.so", tmp_path / "linked.so")  # a second path is a second file
    assert bundler.unzipped_sizes(tmp_path) == {"big": 4000, "handler.py": 10, "linked.so": 3000}
    assert bundler.check_size("fn", tmp_path, limit=7010) == 7010


def test_a_bundle_over_the_limit_fails_in_one_line_naming_its_largest_entries(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "matplotlib" / "x.so", 3_000_000)
    _write(tmp_path / "numpy" / "y.so", 2_000_000)
    _write(tmp_path / "botocore" / "z.json", 1_000_000)
    _write(tmp_path / "handler.py", 500_000)
    with pytest.raises(SystemExit) as failure:
        bundler.check_size("evaluation", tmp_path, limit=6_000_000)
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("bundle evaluation: 6.5 MB unzipped, over the 6 MB limit")
    assert message.endswith("largest: matplotlib 3.0 MB, numpy 2.0 MB, botocore 1.0 MB")


@pytest.mark.parametrize("name", bundler.function_names())
def test_the_built_bundles_fit_the_limit(name: str) -> None:
    record = read_record(name)
    assert record is not None, f"{name} is not built: run `make bundle`"
    assert bundler.check_size(name, record.folder) <= bundler.MAX_UNZIPPED_BYTES


def test_the_build_fails_when_a_bundle_outgrows_the_limit(tmp_path: Path) -> None:
    # The command `make bundle` (and so `make synth`) runs, with the limit lowered below the
    # job bundle: one line on stderr, a failing status, and no record of the bundle.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from stacks import bundling; "
        "bundling.MAX_UNZIPPED_BYTES = 1_000_000; "
        "raise SystemExit(bundling.main(['--no-bytecode', 'job']))"
    )
    environment = {**os.environ, BUILD_DIR_VARIABLE: str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script, str(ROOT)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bundle job: "), result.stderr
    assert "over the 1 MB limit" in lines[0]
    assert not (tmp_path / "bundles" / "job.json").exists()


# -- the evaluation's report bundle (issue 21) --------------------------------------------------

PLOTTING = {"matplotlib", "numpy", "fonttools", "pillow", "contourpy", "kiwisolver"}


def test_only_the_report_bundle_locks_the_plotting_stack() -> None:
    for name in bundler.function_names():
        locked = set(lock_pins(ROOT / "lambda" / name / "requirements.txt")) & PLOTTING
        assert locked == (PLOTTING if name == "evaluation_report" else set()), name


def test_only_the_report_handler_draws() -> None:
    # Nothing the evaluation bundle's entry points run imports matplotlib: only report.png
    # does, and only the report handler's aggregation reaches it.
    evaluation = (ROOT / "lambda" / "evaluation" / "handler.py").read_text(encoding="utf-8")
    assert "def aggregate(" not in evaluation
    report = (ROOT / "lambda" / "evaluation_report" / "handler.py").read_text(encoding="utf-8")
    assert "def aggregate(" in report and "def work(" not in report


def test_the_report_bundle_ships_the_evaluations_code() -> None:
    record = read_record("evaluation_report")
    assert record is not None, "evaluation_report is not built: run `make bundle`"
    source = ROOT / "lambda" / "evaluation" / "rft_eval"
    for path in source_files(source):
        shipped = record.folder / "rft_eval" / path.relative_to(source)
        assert shipped.read_bytes() == path.read_bytes(), path
    assert (record.folder / "rft_common").is_dir()
    assert "openai" not in bundler.unzipped_sizes(record.folder)


def test_a_change_of_the_shared_code_makes_the_report_bundle_stale(tmp_path: Path) -> None:
    for folder in ("common", "evaluation/rft_eval", "evaluation_report", "job"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "m.py").write_text("A = 1\n", encoding="utf-8")
    before = {n: sources_digest(n, tmp_path) for n in ("evaluation_report", "job")}
    (tmp_path / "evaluation" / "rft_eval" / "m.py").write_text("A = 2\n", encoding="utf-8")
    assert sources_digest("evaluation_report", tmp_path) != before["evaluation_report"]
    assert sources_digest("job", tmp_path) == before["job"]
    assert source_folders("evaluation_report", tmp_path)[1] == (
        "rft_eval",
        tmp_path / "evaluation" / "rft_eval",
    )
