"""Build each Lambda function's deployment folder under ``.build/lambda/<name>/`` without Docker.

For every ``lambda/<name>/`` (except ``common``): the function's pinned ``requirements.txt``
(if any) is installed for the Lambda platform (Linux arm64, CPython 3.13, binary wheels only),
then the function's own code and the shared ``lambda/common`` package are copied on top.
Dependencies are reinstalled only when the requirements file changes (a stamp holds its
hash), so synth after the first build needs no network.

Usage: ``python scripts/bundle_lambdas.py [name ...]``
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "lambda"
BUILD = ROOT / ".build" / "lambda"
PLATFORM = (
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.13",
    "--only-binary=:all:",
)
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt", ".mypy_cache")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "none"


def _install_dependencies(name: str, deps_dir: Path) -> None:
    requirements = SOURCE / name / "requirements.txt"
    stamp = deps_dir / ".requirements.sha256"
    digest = _digest(requirements)
    if stamp.is_file() and stamp.read_text() == digest:
        return
    shutil.rmtree(deps_dir, ignore_errors=True)
    deps_dir.mkdir(parents=True)
    if requirements.is_file():
        print(f"bundle {name}: installing {requirements.relative_to(ROOT)} for arm64 / 3.13")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--target",
                str(deps_dir),
                *PLATFORM,
                "-r",
                str(requirements),
            ],
            check=True,
        )
    stamp.write_text(digest)


def bundle(name: str) -> Path:
    """Build ``.build/lambda/<name>`` and return it."""
    if not (SOURCE / name / "handler.py").is_file():
        raise SystemExit(f"bundle {name}: lambda/{name}/handler.py does not exist")
    deps_dir = ROOT / ".build" / "deps" / name
    _install_dependencies(name, deps_dir)
    target = BUILD / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(deps_dir, target, ignore=shutil.ignore_patterns(".requirements.sha256"))
    shutil.copytree(SOURCE / "common", target, dirs_exist_ok=True, ignore=IGNORE)
    shutil.copytree(SOURCE / name, target, dirs_exist_ok=True, ignore=IGNORE)
    return target


def main(argv: list[str]) -> int:
    """Bundle the named functions, or all of them."""
    names = argv or sorted(
        p.name for p in SOURCE.iterdir() if p.is_dir() and (p / "handler.py").is_file()
    )
    for name in names:
        bundle(name)
    print(f"bundled: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
