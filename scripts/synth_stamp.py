#!/usr/bin/env python3
"""Whether ``cdk.out`` already holds the synthesis of the current inputs.

``make synth`` skips the CDK CLI when it does, so ``make test`` (and ``make check``) right
after ``make synth`` does not synthesize the same inputs twice. Synthesis is deterministic
(same inputs, same templates, same nag verdict), so a current assembly is the one the CLI
would write again.

The inputs are the content of every file git sees in the project (tracked, and untracked
unless ignored) except those synthesis never reads (Markdown, ``docs/``, ``tests/unit/``,
``benchmarks/``), the CDK context argument (``ENV=``), the default account and region variables,
and the versions of the tools (Python, Node.js, aws-cdk-lib, cdk-nag, the CDK CLI). After a
successful synth, ``write`` records their digest with the digest of the assembly it produced
(the manifest and the templates and asset manifests it names) in ``cdk.out/.synth-stamp.json``;
``check`` is true only when both still match (a ``cdk synth`` run by hand, or one that failed
half-way, rewrites the assembly, and so clears the stamp). Outside a git checkout, nothing is
ever current.

Usage: ``python scripts/synth_stamp.py {check,write} [--context "-c env=dev"] [--outdir cdk.out]``
(``check`` exits 0 when current, 1 when not).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP = ".synth-stamp.json"
# What synthesis never reads: a change here leaves the templates as they were.
NOT_INPUTS = ("docs/", "tests/unit/", "benchmarks/")
NOT_INPUT_SUFFIXES = (".md",)
# The variables the app may read (the CLI sets CDK_CONTEXT_JSON itself, from cdk.json and -c).
ENVIRONMENT_INPUTS = ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")
TOOL_PACKAGES = ("aws-cdk-lib", "cdk-nag", "constructs", "jsii", "pydantic")


def input_files(root: Path) -> list[str] | None:
    """The project files synthesis may read, relative to ``root``; None outside git."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            check=False,
        )
    except OSError:
        return None
    if done.returncode != 0:
        return None
    names = {name for name in done.stdout.decode("utf-8").split("\0") if name}
    return sorted(
        name
        for name in names
        if not name.startswith(NOT_INPUTS) and not name.endswith(NOT_INPUT_SUFFIXES)
    )


def _tools() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in TOOL_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    cli = ROOT / "node_modules" / "aws-cdk" / "package.json"
    found["aws-cdk"] = (
        json.loads(cli.read_text(encoding="utf-8")).get("version", "?") if cli.is_file() else "?"
    )
    try:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
        found["node"] = node.stdout.strip()
    except OSError:
        found["node"] = "absent"
    return found


def inputs_digest(root: Path, context: str) -> str | None:
    """The digest of everything synthesis reads (see the module docstring), or None."""
    names = input_files(root)
    if names is None:
        return None
    digest = hashlib.sha256()
    environment = {k: os.environ.get(k) for k in ENVIRONMENT_INPUTS}
    head = {"context": context.split(), "environment": environment, "tools": _tools()}
    digest.update(json.dumps(head, sort_keys=True).encode())
    for name in names:
        path = root / name
        if path.is_symlink() or not path.is_file():
            continue  # a deleted file still listed by git, or a link to a shared install
        digest.update(b"\0" + name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _assembly_digest(outdir: Path) -> str | None:
    """The digest of the manifest and of every file its artifacts name (templates, asset
    manifests), or None when one is missing: a synth that stopped half-way changes it."""
    manifest = outdir / "manifest.json"
    try:
        text = manifest.read_bytes()
        artifacts = json.loads(text).get("artifacts", {})
        digest = hashlib.sha256(text)
        for artifact in artifacts.values():
            properties = artifact.get("properties", {})
            for key in ("templateFile", "file"):
                if isinstance(properties.get(key), str):
                    digest.update(b"\0" + (outdir / properties[key]).read_bytes())
    except (OSError, ValueError, AttributeError):
        return None
    return digest.hexdigest()


def is_current(root: Path, outdir: Path, context: str) -> bool:
    """True when ``outdir`` holds the synthesis of the current inputs and is complete."""
    try:
        stamp = json.loads((outdir / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    assembly = _assembly_digest(outdir)
    if not isinstance(stamp, dict) or assembly is None or stamp.get("assembly") != assembly:
        return False
    current = inputs_digest(root, context)
    return current is not None and stamp.get("inputs") == current


def write(root: Path, outdir: Path, context: str) -> None:
    """Record that ``outdir`` is the synthesis of the current inputs (after a good synth)."""
    current, assembly = inputs_digest(root, context), _assembly_digest(outdir)
    path = outdir / STAMP
    if current is None or assembly is None:
        path.unlink(missing_ok=True)
        return
    path.write_text(json.dumps({"inputs": current, "assembly": assembly}) + "\n", "utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """``check``: exit 0 when current, else 1; ``write``: record the stamp."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("check", "write"))
    parser.add_argument("--context", default="", help="the CDK context arguments (-c env=x)")
    parser.add_argument("--outdir", type=Path, default=ROOT / "cdk.out")
    args = parser.parse_args(argv)
    if args.action == "check":
        return 0 if is_current(ROOT, args.outdir, args.context) else 1
    write(ROOT, args.outdir, args.context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
