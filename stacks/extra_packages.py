"""An environment's extra packages for its python grader (``reward_function.extra_packages``).

OpenAI's python grader image carries numpy, sympy, rapidfuzz, pyyaml and more; the reward
Lambda carries only its own lock. An environment lists the pinned distributions its grader
needs (``name==version``); they are installed for the Lambda platform exactly as the reward
lock is (``stacks/bundling.py``: Linux arm64, CPython 3.13, binary wheels only, every
wheel's tags checked), with their dependencies, constrained by the reward lock so they can
never change a version the reward bundle pins, and compiled to bytecode when a CPython 3.13
is found. The environment's reward asset gets them on top of the bundle (``stacks/reward.py``).

Content-addressed: ``.build/extra/<key>/`` where the key covers the sorted pins, the platform
options, the build recipe, the reward lock and the bytecode; a set of pins is installed once,
so later synths need no network. A pin with no wheel for Lambda, or one that conflicts with
the reward lock, is one line (:class:`ExtraPackagesError`), naming the pin.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

from stacks.bundle_store import PROJECT_ROOT, build_root, hold, link_tree, touch
from stacks.bundling import (
    PLATFORM,
    RECIPE,
    _build,
    check_wheels,
    compile_bytecode,
    drop_dead_weight,
    find_cpython313,
)

KEY = "reward_function.extra_packages"
REWARD_LOCK = PROJECT_ROOT / "lambda" / "reward" / "requirements.txt"
LAMBDA_PLATFORM = "Lambda (CPython 3.13, Linux arm64)"
# A pinned requirement: a distribution name (PEP 508) and an exact version (PEP 440 chars).
PIN = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==([A-Za-z0-9.+!_-]+)$")
_LOCK_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*==[^\s;\\]+)", re.MULTILINE)
# pip's words for a requirement it found no acceptable distribution for.
_NOT_FOUND = re.compile(r"satisf(?:y|ies) the requirement ([A-Za-z0-9._-]+)")
_CONFLICT = re.compile(r"Cannot install (.+?) because")


class ExtraPackagesError(Exception):
    """One line: what is wrong with an environment's extra packages (without the key)."""


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins_problem(pins: object) -> str | None:
    """Why ``pins`` is not a list of pinned requirements ``name==version``, each distribution
    named once, or None."""
    if not isinstance(pins, list | tuple):
        return "must be a list of pinned requirements name==version"
    for pin in pins:
        if not (isinstance(pin, str) and PIN.fullmatch(pin)):
            return f"{pin}: must be a pinned requirement name==version (only == pins)"
    if len({normalized(pin.split("==")[0]) for pin in pins}) != len(pins):
        return "names a distribution twice"
    return None


def _lock_constraints() -> str:
    """The reward lock's pins without their hashes (a constraints file: hashes would put pip
    in hash-checking mode for the extra packages too, whose hashes nobody locked)."""
    return "\n".join(_LOCK_PIN.findall(REWARD_LOCK.read_text("utf-8"))) + "\n"


def _key(pins: tuple[str, ...], bytecode: str | None) -> str:
    parts = [RECIPE, " ".join(PLATFORM), "\n".join(pins), _lock_constraints(), bytecode or ""]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _failure(pins: tuple[str, ...], stderr: str) -> str:
    """One line from pip's error output: the pin without a wheel, or the conflict."""
    by_name = {normalized(PIN.fullmatch(pin)[1]): pin for pin in pins}  # type: ignore[index]
    for name in _NOT_FOUND.findall(stderr):
        if (pin := by_name.get(normalized(name))) is not None:
            return f"{pin} has no wheel for {LAMBDA_PLATFORM}"
        return f"{name} (a dependency of {', '.join(pins)}) has no wheel for {LAMBDA_PLATFORM}"
    if "conflict" in stderr.lower() or "ResolutionImpossible" in stderr:
        named = _CONFLICT.search(stderr)
        what = named[1] if named else ", ".join(pins)
        return f"{what} needs a version other than the one the reward lock pins"
    last = [line for line in stderr.splitlines() if line.strip()][-1:] or ["no output"]
    return f"pip failed to install {', '.join(pins)}: {last[0].strip()}"


def _install(pins: tuple[str, ...], staging: Path) -> None:
    constraints = staging.parent / f"{staging.name}.constraints.txt"
    constraints.write_text(_lock_constraints(), encoding="utf-8")
    try:
        run = subprocess.run(  # noqa: S603 (this interpreter's pip, arguments are validated pins)
            [
                *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
                *("--no-compile", "--target", str(staging), *PLATFORM),
                *("--constraint", str(constraints), *pins),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        constraints.unlink(missing_ok=True)
    if run.returncode != 0:
        raise ExtraPackagesError(_failure(pins, run.stderr))
    if misfits := check_wheels(staging):
        raise ExtraPackagesError(f"not for {LAMBDA_PLATFORM}: {'; '.join(misfits)}")
    drop_dead_weight(staging)
    # The reward bundle already carries the locked distributions (same versions).
    locked = {normalized(pin.split("==")[0]) for pin in _LOCK_PIN.findall(_lock_constraints())}
    for info in staging.glob("*.dist-info"):
        if normalized(info.name.rsplit("-", 1)[0]) in locked:
            _remove_distribution(staging, info)


def _remove_distribution(root: Path, info: Path) -> None:
    """Delete the files an installed distribution's RECORD lists, and its dist-info."""
    for line in (info / "RECORD").read_text(encoding="utf-8").splitlines():
        relative = line.rsplit(",", 2)[0] if line else ""
        if relative:
            (root / relative).unlink(missing_ok=True)
    for folder in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


@cache
def installed(pins: tuple[str, ...]) -> Path:
    """The folder holding ``pins`` (sorted, validated) installed for Lambda, built once.

    Raises :class:`ExtraPackagesError` when pip finds no Lambda wheel or a conflict.
    """
    compiler = find_cpython313()
    plain = build_root() / "extra" / f"extra-{_key(pins, None)}"
    hold(plain)
    if not plain.is_dir():
        _build(plain, lambda staging: _install(pins, staging))
    touch(plain)
    if compiler is None:
        return plain
    compiled = plain.with_name(f"extra-{_key(pins, compiler.bytecode_tag)}")
    hold(compiled)
    if not compiled.is_dir():

        def compile_installed(staging: Path) -> None:
            link_tree(plain, staging)
            compile_bytecode(compiler, staging)

        _build(compiled, compile_installed)
    touch(compiled)
    return compiled


def top_level_modules(folder: Path) -> frozenset[str]:
    """The top-level importable names of the distributions installed in ``folder`` (from
    each RECORD: packages and single-file modules)."""
    found: set[str] = set()
    for record in folder.glob("*.dist-info/RECORD"):
        for line in record.read_text(encoding="utf-8").splitlines():
            first = line.rsplit(",", 2)[0].split("/", 1)[0] if line else ""
            if not first or first.endswith((".dist-info", ".data")) or first == "..":
                continue
            found.add(first.split(".", 1)[0] if first.endswith((".py", ".so")) else first)
    return frozenset(name for name in found if name.isidentifier())
