#!/usr/bin/env python3
"""``make check``: the quick loop after an edit of ``cdk.json``, ``graders/`` or ``datasets/``.

In order, cheapest first, stopping at the first step that fails:

1. the configuration, as ``make synth`` validates it (scripts/check_cdk_json.py): one
   ``error:`` line per problem, in seconds;
2. preflight of the dataset and grader of each environment the edit touches
   (scripts/preflight_examples.py);
3. the generic tests of the user's files (tests/unit/test_user_config.py), but for the one
   that synthesizes every environment: step 4 synthesizes what the edit touches;
4. ``make synth`` of the environments the edit touches (with the nag packs, which fail synth
   on a finding): one environment by name, more than one as all of them.

What the edit touches is read from git: the files that differ from the merge base with
``main`` (committed or not, untracked included), or from ``HEAD`` without a ``main``. An
environment is touched when its entry in ``cdk.json`` changed (or is new), or a file of its
dataset folder or its grader changed. When anything else that synthesis reads changed
(``cdk.json`` outside ``environments``, ``stacks/``, ``lambda/``, ``app.py``, the pins), or
git cannot say, every environment is checked; so is every environment when nothing changed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.check_cdk_json import environment_problems, problem  # noqa: E402

# Changes under these reach every environment's synthesis.
EVERY_ENVIRONMENT = (
    "app.py",
    "stacks/",
    "scripts/bundle_lambdas.py",
    "lambda/",
    "requirements.txt",
    "requirements-dev.txt",
    "package.json",
    "package-lock.json",
)
USER_CONFIG_TESTS = "tests/unit/test_user_config.py"
# Step 4 is this test's check, for the environments the edit touches.
SYNTH_TEST = "test_every_environment_synthesizes_and_passes_its_gates"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def base_commit() -> tuple[str, str] | None:
    """(what, commit): the merge base with main or origin/main, else HEAD; None outside git."""
    for main in ("main", "origin/main"):
        found = _git("merge-base", "HEAD", main)
        if found:
            return f"the merge base with {main}", found.strip()
    head = _git("rev-parse", "HEAD")
    return ("HEAD", head.strip()) if head else None


def changed_files(commit: str) -> set[str] | None:
    """The files that differ from ``commit`` in the working tree, untracked ones included."""
    changed = _git("diff", "--name-only", "--no-renames", commit, "--")
    untracked = _git("ls-files", "--others", "--exclude-standard")
    if changed is None or untracked is None:
        return None
    return {line for line in (changed + untracked).splitlines() if line}


def _environments_at(commit: str) -> dict[str, Any] | None:
    text = _git("show", f"{commit}:cdk.json")
    try:
        context = json.loads(text)["context"] if text else None
    except (ValueError, KeyError, TypeError):
        return None
    return context if isinstance(context, dict) else None


def touched(context: dict[str, Any], why: list[str]) -> list[str] | None:
    """The environments the edit touches (in cdk.json's order), or None for every one; ``why``
    gets one line saying how they were found."""
    names = list(context["environments"])
    base = base_commit()
    files = changed_files(base[1]) if base else None
    if base is None or files is None:
        why.append("git cannot say what changed: every environment")
        return None
    what, commit = base
    if not files:
        why.append(f"nothing changed since {what}: every environment")
        return None
    if broad := sorted(f for f in files if f.startswith(EVERY_ENVIRONMENT)):
        why.append(f"{broad[0]} changed: every environment")
        return None
    found: set[str] = set()
    if "cdk.json" in files:
        before = _environments_at(commit)
        if before is None or not isinstance(before.get("environments"), dict):
            why.append(f"cdk.json at {what} does not read: every environment")
            return None
        others = {k: v for k, v in context.items() if k != "environments"}
        if others != {k: v for k, v in before.items() if k != "environments"}:
            why.append("cdk.json changed outside environments: every environment")
            return None
        found |= {n for n in names if context["environments"][n] != before["environments"].get(n)}
    for name, raw in context["environments"].items():
        dataset = str(raw.get("dataset", "")).rstrip("/") + "/"
        grader = str(raw.get("grader", ""))
        if any(f == grader or f.startswith(dataset) for f in files):
            found.add(name)
    ordered = [n for n in names if n in found]
    why.append(f"changed since {what}: {', '.join(ordered) if ordered else 'no environment'}")
    return ordered


def _step(title: str, command: list[str]) -> bool:
    print(f"check: {title}", flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode == 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the steps above; exit 1 at the first that fails."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="check every environment")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cdk_json = ROOT / "cdk.json"
    problems = [found] if (found := problem(cdk_json)) else environment_problems(cdk_json, None)
    if problems:
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        return 1
    context = json.loads(cdk_json.read_text(encoding="utf-8"))["context"]
    why: list[str] = []
    names = None if args.all else touched(context, why)
    for line in why:
        print(f"check: {line}")
    python = sys.executable
    if names is None or names:
        selected = [f"--env={name}" for name in names or []]
        if not _step(
            "preflight of their datasets and graders",
            [python, "scripts/preflight_examples.py", *selected],
        ):
            return 1
    tests = [python, "-m", "pytest", USER_CONFIG_TESTS, "-q", "-n", "0", "-p", "no:cacheprovider"]
    tests += ["-k", f"not {SYNTH_TEST}"]
    if not _step("the generic tests of cdk.json, graders/ and datasets/", tests):
        return 1
    if names is None or len(names) > 1:
        synth = ["make", "--no-print-directory", "synth", "ENV="]
    elif names:
        synth = ["make", "--no-print-directory", "synth", f"ENV={names[0]}"]
    else:
        synth = []
    if synth and not _step("synthesis and the nag packs", synth):
        return 1
    print(f"check: passed in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
