"""The base ref's cloud assembly, synthesized in a temporary git worktree.

The worktree borrows this checkout's ``.venv`` and ``node_modules`` (symbolic links) and a
hard-linked copy of ``.build`` (the installed Lambda locks and the content-addressed bundles,
so an unchanged function is not rebuilt), then runs the base's own ``make synth`` with the
install steps marked done (``-o``): the shared virtual environment is never reinstalled with
the base's pins. Where the base pins other tools, the report says so.

The templates are kept under ``.build/review/<commit>-<tools>/``: the same base with the same
tools is synthesized once, however often the working tree is reviewed against it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from scripts.synth_stamp import inputs_digest
from stacks.bundle_store import link_tree

ROOT = Path(__file__).resolve().parent.parent.parent
# What the base is synthesized with: a difference here is a difference of tools, not of code.
TOOL_PINS = ("requirements.txt", "requirements-dev.txt", "package.json", "package-lock.json")
KEPT = ("manifest.json", "validation-report.json")
# The digest of the base's synthesis inputs (scripts/synth_stamp.py), kept with its templates.
INPUTS = "inputs.sha256"
CACHED_BASES = 3
# The content-addressed parts of .build the base may reuse (installed locks, bundles, assets,
# and the files they are links to, whose marker says the folders need no sharing again).
SHARED_BUILDS = ("deps", "bundles", "assets", "objects")


class ReviewError(Exception):
    """The review cannot be made; the message is one line saying why."""


@dataclass(frozen=True)
class Base:
    """The base ref, resolved."""

    ref: str
    commit: str


def git(*args: str, cwd: Path = ROOT) -> str:
    """Run git; its first error line becomes a :class:`ReviewError`."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["failed"])[0]
        raise ReviewError(f"git {' '.join(args)}: {first}")
    return done.stdout.strip()


def resolve_base(ref: str | None) -> Base:
    """``ref`` as a commit, or (no ref) the merge base of HEAD with ``main`` or ``origin/main``."""
    if ref:
        try:
            return Base(ref, git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"))
        except ReviewError:
            raise ReviewError(
                f"BASE={ref}: not a commit, branch or tag of this repository "
                "(git log --oneline shows the commits; omit BASE for the merge base with main)"
            ) from None
    for main in ("main", "origin/main"):
        try:
            return Base(f"merge-base with {main}", git("merge-base", "HEAD", main))
        except ReviewError:
            continue
    raise ReviewError("no BASE given and no main or origin/main to take the merge base with")


def tool_differences(commit: str) -> list[str]:
    """The tool pins (requirements, package lock) whose base version differs from this one."""
    differ = []
    for name in TOOL_PINS:
        try:
            base = git("show", f"{commit}:{name}")
        except ReviewError:
            base = ""
        here = (ROOT / name).read_text(encoding="utf-8").strip() if (ROOT / name).is_file() else ""
        if base != here:
            differ.append(name)
    return differ


def _tools_key() -> str:
    digest = hashlib.sha256()
    for name in TOOL_PINS:
        path = ROOT / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()[:12]


def synthesize(base: Base, log: list[str]) -> tuple[Path, Path]:
    """The base's templates (synthesized unless cached) and the working tree's ``cdk.out``,
    both syntheses running at once (each is mostly one single-threaded process). When the
    working tree differs from the base in nothing synthesis reads (scripts/synth_stamp.py:
    say, only documentation changed), its templates are the base's: one synthesis, or none."""
    cache = ROOT / ".build" / "review"
    target = cache / f"{base.commit[:16]}-{_tools_key()}"
    head_inputs = inputs_digest(ROOT, "")
    if (target / "manifest.json").is_file():
        log.append(f"base {base.commit[:12]}: templates reused from an earlier review")
        os.utime(target)
        if _same_inputs(target, head_inputs, log):
            return target, target
        make_synth(ROOT, "the working tree")
        return target, ROOT / "cdk.out"
    cache.mkdir(parents=True, exist_ok=True)
    worktree = Path(tempfile.mkdtemp(prefix="base-", dir=cache))
    try:
        # Before the working tree's synth starts: its bundler prunes what it no longer uses.
        _prepare(base, worktree)
        base_inputs = inputs_digest(worktree, "")
        same = base_inputs is not None and base_inputs == head_inputs
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [pool.submit(make_synth, worktree, f"the base {base.commit[:12]}")]
            if not same:
                jobs.append(pool.submit(make_synth, ROOT, "the working tree"))
            for job in jobs:
                job.result()
        _keep(worktree / "cdk.out", target)
        if base_inputs is not None:
            (target / INPUTS).write_text(base_inputs + "\n", encoding="utf-8")
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(worktree)],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(worktree, ignore_errors=True)
    _prune(cache)
    log.append(f"base {base.commit[:12]}: synthesized in a temporary worktree")
    if _same_inputs(target, head_inputs, log):
        return target, target
    return target, ROOT / "cdk.out"


def _same_inputs(target: Path, head_inputs: str | None, log: list[str]) -> bool:
    """Whether the working tree's synthesis inputs are the base's (kept beside its templates)."""
    kept = target / INPUTS
    same = (
        head_inputs is not None
        and kept.is_file()
        and kept.read_text(encoding="utf-8").strip() == head_inputs
    )
    if same:
        log.append("the working tree changes nothing synthesis reads: its templates are the base's")
    return same


def _keep(outdir: Path, target: Path) -> None:
    """Copy the manifest, validation report and templates of ``outdir`` to ``target``."""
    staging = Path(tempfile.mkdtemp(prefix=".keep-", dir=target.parent))
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    templates = [
        artifact["properties"]["templateFile"]
        for artifact in manifest.get("artifacts", {}).values()
        if artifact.get("type") == "aws:cloudformation:stack"
    ]
    for name in [*KEPT, *templates]:
        if (outdir / name).is_file():
            shutil.copyfile(outdir / name, staging / name)
    staging.rename(target)


def _prepare(base: Base, worktree: Path) -> None:
    git("worktree", "add", "--detach", "--force", str(worktree), base.commit)
    for name in (".venv", "node_modules"):
        if not (worktree / name).exists():
            (worktree / name).symlink_to(ROOT / name)
    build = ROOT / ".build"
    for folder in sorted(build.iterdir()) if build.is_dir() else []:
        if folder.is_dir() and folder.name in SHARED_BUILDS:
            # Lock files and half-built folders stay: they belong to this checkout's builds.
            link_tree(folder, worktree / ".build" / folder.name, ignore=("*.lock", ".*"))
    link_staged_assets(ROOT / "cdk.out", worktree / "cdk.out")


def link_staged_assets(source: Path, target: Path) -> None:
    """Hard-link the staged assets of one cloud assembly into another's folder. An asset is
    named by its content digest, and the CDK does not stage one whose folder exists: the
    base's synth then copies only the bundles this checkout has not staged (not some
    hundreds of MB of unchanged ones)."""
    for asset in sorted(source.glob("asset.*")) if source.is_dir() else []:
        if asset.is_dir():
            link_tree(asset, target / asset.name)
        elif asset.is_file():
            target.mkdir(parents=True, exist_ok=True)
            _link_file(asset, target / asset.name)


def _link_file(source: Path, target: Path) -> None:
    """One file as a hard link (a copy across file systems)."""
    try:
        os.link(source, target)
    except FileExistsError:
        pass
    except OSError:
        shutil.copy2(source, target)


def make_synth(folder: Path, what: str) -> None:
    """``make synth`` of every environment in ``folder``, the installs taken as done (the
    outer ``make review`` made them; the base must not reinstall the shared tools)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    done = subprocess.run(
        [
            *("make", "--no-print-directory", "-o", ".venv/.installed"),
            *("-o", "node_modules/.installed", "synth", "ENV="),
        ],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        last = next((line for line in reversed(lines) if line.startswith("error")), None)
        raise ReviewError(f"synthesis of {what} failed: {last or (lines or ['?'])[-1]}")


def _prune(cache: Path) -> None:
    """Keep the most recently used base assemblies only."""
    kept = sorted(
        (p for p in cache.iterdir() if p.is_dir() and not p.name.startswith((".", "base-"))),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in kept[CACHED_BASES:]:
        shutil.rmtree(old, ignore_errors=True)
