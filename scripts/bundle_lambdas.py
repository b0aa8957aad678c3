"""Build each Lambda function's deployment folder under ``.build/lambda/<name>/`` without Docker.

For every ``lambda/<name>/`` (except ``common``): the function's pinned ``requirements.txt``
(if any) is installed for the Lambda platform (Linux arm64, CPython 3.13, binary wheels only),
then the function's own code and the shared ``lambda/common`` package are copied on top.
Dependencies are reinstalled only when the requirements file changes (a stamp holds its
hash), so synth after the first build needs no network.

Wheels are taken for ``manylinux2014_aarch64`` (glibc 2.17) and ``manylinux_2_28_aarch64``
(glibc 2.28): Lambda's python3.13 runtime is Amazon Linux 2023 (glibc 2.34), so both run
there, and some projects publish only the newer tag for new releases. After installing, every
wheel's tags are checked: a distribution that is neither pure Python nor built for
CPython 3.13 on Linux arm64 (glibc at most 2.28) fails the bundle.

Usage: ``python scripts/bundle_lambdas.py [name ...]``
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "lambda"
BUILD = ROOT / ".build" / "lambda"
# The newest glibc whose manylinux wheels are accepted (see the module docstring).
MAX_GLIBC = (2, 28)
PLATFORM = (
    "--platform",
    "manylinux2014_aarch64",
    "--platform",
    f"manylinux_{MAX_GLIBC[0]}_{MAX_GLIBC[1]}_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.13",
    "--only-binary=:all:",
)
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt", ".mypy_cache")


def _digest(path: Path) -> str:
    """The requirements' hash, with the install options (changing either reinstalls)."""
    content = path.read_bytes() if path.is_file() else b"none"
    return hashlib.sha256(content + " ".join(PLATFORM).encode()).hexdigest()


_MANYLINUX = re.compile(r"manylinux(?:2014|_(\d+)_(\d+))_aarch64")


def _tag_fits(tag: str) -> bool:
    """Whether a wheel tag (``interpreter-abi-platform``) runs on the Lambda platform."""
    interpreter, abi, platform = tag.split("-")
    if platform == "any":
        return abi == "none" and interpreter in {"py3", "py2.py3", "cp313"}
    manylinux = _MANYLINUX.fullmatch(platform)
    if manylinux is None:
        return False
    glibc = (int(manylinux[1]), int(manylinux[2])) if manylinux[1] else (2, 17)
    if glibc > MAX_GLIBC:
        return False
    if abi == "abi3":  # the stable ABI: built for an older CPython 3, it runs on 3.13
        return re.fullmatch(r"cp3(\d+)", interpreter) is not None and int(interpreter[3:]) <= 13
    if abi == "none":  # Python code with a platform's binaries beside it (no extension)
        return interpreter in {"py3", "py2.py3", "cp313"}
    return interpreter == "cp313" and abi == "cp313"


def check_wheels(deps_dir: Path) -> list[str]:
    """The installed distributions (``name: tags``) of ``deps_dir`` that cannot run on the
    Lambda platform: a pure distribution of Python 2 only, or a binary one for another
    interpreter, architecture or a newer glibc."""
    misfits = []
    for wheel in sorted(deps_dir.glob("*.dist-info/WHEEL")):
        lines = wheel.read_text(encoding="utf-8").splitlines()
        tags = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")]
        if not any(_tag_fits(tag) for tag in tags):
            misfits.append(f"{wheel.parent.name}: {', '.join(tags) or 'no tags'}")
    return misfits


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
    misfits = check_wheels(deps_dir)
    if misfits:
        raise SystemExit(
            f"bundle {name}: not for Lambda (CPython 3.13, Linux arm64): {'; '.join(misfits)}"
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
