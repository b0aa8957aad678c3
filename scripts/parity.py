"""``make parity``: the handlers on CPython 3.13, from bundles built for this machine.

Finds a CPython 3.13 (``python3.13`` on PATH, pyenv, or ``$RFT_PYTHON313``); without one it
says so in one line and succeeds. With one, it builds every function's bundle for this
machine from the same lock as the Lambda bundle (``.build/parity``, with bytecode), then
runs ``tests/parity`` against them: each handler runs in ``python3.13 -I -S`` with only its
bundle and the standard library on ``sys.path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stacks.bundling import bundle, find_cpython313, function_names, prune_superseded  # noqa: E402


def main() -> int:
    """Build the parity bundles and run the parity tests; 0 when no 3.13 is found."""
    interpreter = find_cpython313()
    if interpreter is None:
        print("parity: no CPython 3.13 found (python3.13 on PATH or pyenv): skipped")
        return 0
    for name in function_names():
        bundle(name, interpreter, host=True)
    prune_superseded("parity", interpreter)
    print(f"parity: handlers on {interpreter.path}, bundles for this machine")
    environment = {**os.environ, "RFT_PARITY_PYTHON": interpreter.path}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/parity"]
    return subprocess.run(command, cwd=ROOT, env=environment, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
