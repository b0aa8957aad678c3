"""Benchmarks of the Lambda bundles: size, and cold import of each handler on CPython 3.13.

Run with ``make bench``. Prints figures; asserts nothing.

1. Size of each Lambda bundle as built by ``make bundle`` (``.build/bundles``): unzipped MB
   against the build's limit (``stacks/bundling.MAX_UNZIPPED_BYTES``, below Lambda's quota),
   files, zipped MB (deflate, as the deployment package), and the share of the largest
   dependency (botocore in the reward bundle).
2. Cold import of each handler module under CPython 3.13, from bundles built for this machine
   from the same lock, with and without precompiled bytecode: fresh ``python3.13 -I -S``
   processes that cannot write bytecode (``-B``, as on read-only ``/var/task``), the bare
   interpreter's start subtracted, median of the runs, the two variants interleaved.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stacks.bundle_store import read_record  # noqa: E402
from stacks.bundling import (  # noqa: E402
    LAMBDA_UNZIPPED_QUOTA,
    MAX_UNZIPPED_BYTES,
    bundle,
    find_cpython313,
    function_names,
    prune_superseded,
)

RUNS = 9
# The reward handler loads its grader definition at import: a rule-based one, inline.
IMPORT = (
    "import os, sys; os.environ['GRADER_CONFIG'] = '{\"type\": \"math_answer\"}'; "
    "sys.path.insert(0, sys.argv[1]); import handler"
)
BARE = "import sys"


def _size(folder: Path) -> tuple[float, int, float, dict[str, int]]:
    """Unzipped MB, files, zipped MB, and bytes per top-level entry."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    tops: dict[str, int] = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            relative = path.relative_to(folder)
            top = "bytecode" if "__pycache__" in relative.parts else relative.parts[0]
            tops[top] = tops.get(top, 0) + path.stat().st_size
            archive.write(path, relative.as_posix())
    return total / 1e6, len(files), buffer.tell() / 1e6, tops


def _elapsed(python: str, code: str, *arguments: str) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-I", "-S", "-B", "-c", code, *arguments], check=True)
    return time.perf_counter() - start


def sizes() -> None:
    """Print each Lambda bundle's size."""
    limit, quota = MAX_UNZIPPED_BYTES / 1e6, LAMBDA_UNZIPPED_QUOTA / 1e6
    print(f"Lambda bundles (linux/arm64, as deployed); limit {limit:.0f} MB unzipped", end="")
    print(f" (Lambda's quota {quota:.1f} MB):")
    print(
        f"  {'bundle':17} {'unzipped MB':>11} {'of limit':>8} {'files':>6} {'zipped MB':>9}  "
        "largest package"
    )
    for name in function_names():
        record = read_record(name)
        if record is None:
            print(f"  {name:17} not built: run `make bundle`")
            continue
        unzipped, count, zipped, tops = _size(record.folder)
        largest = max((top for top in tops if top != "bytecode"), key=lambda top: tops[top])
        share = tops[largest] / (unzipped * 1e6)
        bytecode = tops.get("bytecode", 0) / 1e6
        print(
            f"  {name:17} {unzipped:11.1f} {unzipped / limit:8.0%} {count:6d} {zipped:9.1f}  "
            f"{largest} {share:.0%}; bytecode {bytecode:.1f} MB"
        )


def cold_imports() -> None:
    """Print each handler's cold import time with and without bytecode."""
    interpreter = find_cpython313()
    if interpreter is None:
        print("cold import: no CPython 3.13 found (python3.13 on PATH or pyenv): skipped")
        return
    print(f"Cold import of handler, {interpreter.path}, median of {RUNS} (bare start subtracted):")
    for name in function_names():
        compiled = bundle(name, interpreter, host=True)
        source = bundle(name, interpreter, host=True, bytecode=False)
        times: dict[str, list[float]] = {"bare": [], "source": [], "bytecode": []}
        for _ in range(RUNS):
            times["bare"].append(_elapsed(interpreter.path, BARE))
            times["source"].append(_elapsed(interpreter.path, IMPORT, str(source)))
            times["bytecode"].append(_elapsed(interpreter.path, IMPORT, str(compiled)))
        bare = statistics.median(times["bare"])
        without = (statistics.median(times["source"]) - bare) * 1000
        with_ = (statistics.median(times["bytecode"]) - bare) * 1000
        print(
            f"  {name:17} sources only {without:7.0f} ms   with bytecode {with_:6.0f} ms   "
            f"({without / with_:.1f}x)"
        )
    prune_superseded("parity-source", interpreter)


def main() -> int:
    """Run both benchmarks."""
    sizes()
    cold_imports()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
