"""Build each Lambda function's bundle under ``.build/bundles/<name>-<digest>/`` without Docker.

For every ``lambda/<name>/`` (except ``common``): the function's lock ``requirements.txt``
(every dependency pinned with its hashes; ``make lock`` writes it from ``requirements.in``)
is installed with ``pip --require-hashes`` for the Lambda platform (Linux arm64, CPython
3.13, binary wheels only), the dependencies' test folders and console scripts are dropped,
the function's own code and the shared ``lambda/common`` package are added, and, when a
CPython 3.13 is found, everything is compiled to bytecode.

Content-addressed: the folder's name and the asset hash the CDK app gives it are a digest of
every input (build recipe, platform, lock, sources, bytecode or not). An unchanged bundle is
never written again, a changed one goes to a new folder, renamed into place when complete,
and ``.build/bundles/<name>.json`` names the current one. Superseded folders are pruned
unless a live synth holds them (``stacks/bundle_store.py``). Dependencies are installed
and compiled once per lock (``.build/deps``), so synth after the first build needs no
network, and a change of a function's code recompiles only that code.

Wheels are taken for ``manylinux2014_aarch64`` (glibc 2.17) and ``manylinux_2_28_aarch64``
(glibc 2.28): Lambda's python3.13 runtime is Amazon Linux 2023 (glibc 2.34), so both run
there, and some projects publish only the newer tag for new releases. After installing, every
wheel's tags are checked: a distribution that is neither pure Python nor built for
CPython 3.13 on Linux arm64 (glibc at most 2.28) fails the bundle.

Bytecode: ``/var/task`` is read-only, so without it every cold start compiles every imported
module from source. The ``.pyc`` files use the UNCHECKED_HASH invalidation mode: no source
mtime is recorded (the zip's dates would not match it anyway) and the runtime never reads
the source to check it, which is sound because source and bytecode ship together in one
immutable, content-addressed folder. They are compiled at optimization level 0 (the runtime
runs without ``-O``), with ``PYTHONHASHSEED=0`` (set constants are marshalled in hash order)
and ``/var/task`` as the recorded file name, so the same inputs give the same bytes.

The stacks own this module (``stacks/extra_packages.py`` builds on it at synth); the command
line is ``scripts/bundle_lambdas.py [--host] [--no-bytecode] [name ...]`` (``make bundle``);
``--host`` builds for this machine with the CPython 3.13 found (``.build/parity``, for
``make parity``).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stacks.bundle_store import (
    OBJECTS,
    BundleRecord,
    build_root,
    link_tree,
    prune,
    prune_objects,
    read_record,
    share_existing,
    share_files,
    source_files,
    source_folders,
    sources_digest,
)

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "lambda"
# Dependencies are installed once per lock, whatever folder the bundles are built in.
DEPS = ROOT / ".build" / "deps"
# Bump when the build steps change (what is dropped, how bytecode is made): every bundle
# then gets a new digest.
RECIPE = "bundle-recipe-2"
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
HOST_PLATFORM = ("--only-binary=:all:",)
# Dead weight in installed dependencies: a package's own test suite and benchmarks (a folder
# of that name inside the package; a module named like it, such as jinja2/tests.py, stays)
# and console scripts, which nothing on Lambda runs.
TEST_FOLDERS = frozenset({"tests", "test", "_tests", "benchmarks"})
TOP_LEVEL_DEAD_WEIGHT = frozenset({"bin"})
# Modules whose import of a dropped test folder is inside a function nothing on Lambda calls:
# mpmath's ``runtests()`` imports ``mpmath.tests`` in its body (sympy needs mpmath, not its
# tests).
LAZY_TEST_IMPORTS = frozenset({"mpmath/__init__.py"})
# Lambda's quota for a function's unzipped code is 250 MB (262,144,000 bytes, with layers). A
# bundle over this limit fails the build (and so `make synth`), leaving room to grow below the
# quota. The largest bundle is the evaluation report's (about 174 MB): matplotlib and what it
# needs to draw are 140 MB by themselves, so the 150 MB issue 21 asks for needs the figure
# drawn without matplotlib (docs/bundles.md).
MAX_UNZIPPED_BYTES = 190_000_000
LAMBDA_UNZIPPED_QUOTA = 262_144_000
# Reward assets (bundle + one grader) unused for this long are pruned even when current.
ASSET_MAX_IDLE_SECONDS = 24 * 3600.0
# Run by the CPython 3.13: compile a folder (argv[1]), or only the files named after it
# (relative to it), recording each under /var/task as Lambda unpacks it.
COMPILE = """
import compileall, os, py_compile, sys
root, files = sys.argv[1], sys.argv[2:]
options = dict(quiet=1, optimize=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
if not files:
    compileall.compile_dir(root, ddir="/var/task", workers=1, **options)
for relative in files:
    ddir = os.path.join("/var/task", os.path.dirname(relative))
    compileall.compile_file(os.path.join(root, relative), ddir=ddir, **options)
"""


@dataclass(frozen=True)
class Interpreter:
    """A CPython 3.13 found on this machine, and its bytecode's magic number."""

    path: str
    magic: str

    @property
    def bytecode_tag(self) -> str:
        """What the bytecode it writes is, as recorded in a bundle's digest."""
        return f"cpython-313 magic {self.magic}, unchecked-hash, optimize 0"


_PROBE = (
    "import importlib.util, sys; "
    "ok = sys.implementation.name == 'cpython' and sys.version_info[:2] == (3, 13); "
    "print(importlib.util.MAGIC_NUMBER.hex() if ok else '')"
)


def _candidates() -> list[str]:
    found = [os.environ.get("RFT_PYTHON313", ""), shutil.which("python3.13") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    versions = glob.glob(os.path.join(pyenv_root, "versions", "3.13*", "bin", "python3.13"))
    found += sorted(versions, reverse=True)
    return [candidate for candidate in found if candidate]


def find_cpython313() -> Interpreter | None:
    """A working CPython 3.13: ``$RFT_PYTHON313``, ``python3.13`` on PATH, or pyenv's."""
    for candidate in _candidates():
        try:
            probe = subprocess.run(
                [candidate, "-I", "-c", _PROBE],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue  # e.g. a pyenv shim for a version that is not selected
        magic = probe.stdout.strip()
        if probe.returncode == 0 and magic:
            return Interpreter(candidate, magic)
    return None


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


def drop_dead_weight(deps_dir: Path) -> list[str]:
    """Remove the dependencies' test folders and console scripts; return what went.

    A removed test folder that a remaining module imports fails the build (one line), so a
    package whose runtime needs its ``test`` package is never broken silently.
    """
    removed = sorted(
        path
        for path in deps_dir.glob("*/**/")
        if path.name in TEST_FOLDERS and (path.parent / "__init__.py").is_file()
    )
    removed = [path for path in removed if not any(p in removed for p in path.parents)]
    removed += [deps_dir / name for name in TOP_LEVEL_DEAD_WEIGHT if (deps_dir / name).is_dir()]
    for path in removed:
        shutil.rmtree(path)
    for path in removed:
        package = path.parent.relative_to(deps_dir).as_posix().replace("/", ".")
        absolute = re.compile(rf"^\s*(?:from|import)\s+{re.escape(package)}\.{path.name}\b", re.M)
        relative = re.compile(rf"^\s*from\s+\.{path.name}\b", re.M)
        for module in path.parent.rglob("*.py"):
            if module.relative_to(deps_dir).as_posix() in LAZY_TEST_IMPORTS:
                continue
            text = module.read_text(encoding="utf-8", errors="replace")
            if absolute.search(text) or (module.parent == path.parent and relative.search(text)):
                raise SystemExit(
                    f"bundle: {module.relative_to(deps_dir)} imports {package}.{path.name}, "
                    "which is dropped as a test folder: keep it in scripts/bundle_lambdas.py"
                )
    return [path.relative_to(deps_dir).as_posix() for path in removed]


def _staging(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))


def _move_into_place(staging: Path, target: Path) -> None:
    try:
        staging.rename(target)
    except OSError:  # another build finished the same folder first
        shutil.rmtree(staging, ignore_errors=True)


def _deps_name(name: str, compiler: Interpreter | None, *, host: bool) -> str:
    """The folder of function ``name``'s installed lock: named by the lock, the options and
    the bytecode (compiled once per lock, not once per change of the function's code)."""
    lock = SOURCE / name / "requirements.txt"
    content = lock.read_bytes() if lock.is_file() else b""
    options = " ".join(HOST_PLATFORM if host else PLATFORM)
    parts = [RECIPE.encode(), options.encode(), content]
    parts += [compiler.bytecode_tag.encode()] if compiler else []
    key = hashlib.sha256(b"\0".join(parts))
    return f"{'host' if host else 'lambda'}-{name}-{key.hexdigest()[:16]}"


def install_dependencies(
    name: str, interpreter: Interpreter | None, compiler: Interpreter | None, *, host: bool
) -> Path:
    """The dependencies of function ``name`` from its lock, installed once per lock and, with
    a ``compiler``, compiled once per lock (hard links to the installed files, plus bytecode).

    For the Lambda platform with this project's pip, or (``host``) for this machine with
    the CPython 3.13 ``interpreter``'s own pip.
    """
    installed = DEPS / _deps_name(name, None, host=host)
    if not installed.is_dir():
        _build(installed, lambda staging: _install_lock(name, interpreter, staging, host=host))
    if compiler is None:
        return installed
    compiled = DEPS / _deps_name(name, compiler, host=host)
    if not compiled.is_dir():
        print(f"bundle {name}: compiling the dependencies with {compiler.path}")

        def compile_installed(staging: Path) -> None:
            link_tree(installed, staging)
            compile_bytecode(compiler, staging)

        _build(compiled, compile_installed)
    return compiled


def _build(target: Path, make: Callable[[Path], None]) -> None:
    """Make ``target`` in a staging folder, renamed into place only when complete, its files
    stored once with the equal files of the build folder's other trees (``target`` is
    ``<build folder>/<kind>/<name>``; ``stacks/bundle_store.py`` says how)."""
    staging = _staging(target)
    try:
        make(staging)
        share_files(staging, target.parent.parent / OBJECTS)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _move_into_place(staging, target)


def _install_lock(name: str, interpreter: Interpreter | None, staging: Path, *, host: bool) -> None:
    lock = SOURCE / name / "requirements.txt"
    if lock.is_file():
        python = interpreter.path if host and interpreter else sys.executable
        options = HOST_PLATFORM if host else PLATFORM
        platform = "this machine" if host else "arm64"
        print(f"bundle {name}: installing {lock.relative_to(ROOT)} for {platform} / 3.13")
        subprocess.run(
            [
                *(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
                *("--no-compile", "--require-hashes", "--target", str(staging), *options),
                *(("--root-user-action=ignore",) if host else ()),
                *("-r", str(lock)),
            ],
            check=True,
        )
    misfits = [] if host else check_wheels(staging)
    if misfits:
        raise SystemExit(
            f"bundle {name}: not for Lambda (CPython 3.13, Linux arm64): {'; '.join(misfits)}"
        )
    drop_dead_weight(staging)


def bundle(
    name: str, interpreter: Interpreter | None, *, host: bool = False, bytecode: bool = True
) -> Path:
    """Build (unless built) the bundle of function ``name`` and return its folder."""
    if not (SOURCE / name / "handler.py").is_file():
        raise SystemExit(f"bundle {name}: lambda/{name}/handler.py does not exist")
    compiler = interpreter if bytecode else None
    sources = sources_digest(name)
    tag = compiler.bytecode_tag if compiler else None
    platform = "host" if host else " ".join(PLATFORM)
    digest = hashlib.sha256(f"{RECIPE}\0{platform}\0{sources}\0{tag}".encode()).hexdigest()
    kind = ("parity" if bytecode else "parity-source") if host else "bundles"
    record = BundleRecord(name=name, digest=digest, sources=sources, bytecode=tag, kind=kind)
    target = record.folder
    if not (target / "handler.py").is_file():
        deps = install_dependencies(name, interpreter, compiler, host=host)
        _build(target, lambda staging: _assemble(name, deps, staging, compiler))
    if not host:  # the host's wheels are not the ones deployed
        check_size(name, target)
    record.write()
    return target


def unzipped_sizes(folder: Path) -> dict[str, int]:
    """Bytes per top-level entry of ``folder`` as Lambda unpacks it (every file's size; hard
    links count once per path, as each is a file of its own in the zip)."""
    sizes: dict[str, int] = {}
    for directory, _, files in os.walk(folder):
        relative = Path(directory).relative_to(folder).parts
        for file in files:
            top = relative[0] if relative else file
            sizes[top] = sizes.get(top, 0) + os.path.getsize(os.path.join(directory, file))
    return sizes


def check_size(name: str, folder: Path, limit: int | None = None) -> int:
    """The unzipped bytes of bundle ``name``; over ``limit`` (``MAX_UNZIPPED_BYTES`` by
    default), a one-line error naming the largest entries (what to move out or drop)."""
    limit = MAX_UNZIPPED_BYTES if limit is None else limit
    sizes = unzipped_sizes(folder)
    total = sum(sizes.values())
    if total > limit:
        largest = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))[:3]
        listed = ", ".join(f"{top} {size / 1e6:.1f} MB" for top, size in largest)
        raise SystemExit(
            f"bundle {name}: {total / 1e6:.1f} MB unzipped, over the {limit / 1e6:.0f} MB "
            f"limit (stacks/bundling.py MAX_UNZIPPED_BYTES; Lambda's quota is "
            f"{LAMBDA_UNZIPPED_QUOTA / 1e6:.1f} MB); largest: {listed}"
        )
    return total


def _assemble(name: str, deps: Path, staging: Path, compiler: Interpreter | None) -> None:
    """Dependencies (hard links, with their bytecode), ``lambda/common``, any shared package
    and the function (compiled here when asked)."""
    link_tree(deps, staging)
    copied = []
    for place, folder in source_folders(name, SOURCE):
        for path in source_files(folder):
            relative = Path(place, path.relative_to(folder))
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            copied += [relative.as_posix()] if path.suffix == ".py" else []
    if compiler:
        compile_bytecode(compiler, staging, copied)


def compile_bytecode(compiler: Interpreter, root: Path, files: list[str] | None = None) -> None:
    """Compile ``files`` of ``root`` (all of it when None) with the CPython 3.13 ``compiler``.

    ``PYTHONHASHSEED=0``: set constants are written in hash order, so a random seed would
    make the bytes differ from build to build.
    """
    subprocess.run(
        [compiler.path, "-s", "-c", COMPILE, str(root), *(files or [])],
        env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
        stdout=subprocess.DEVNULL,
        check=True,
    )


def prune_superseded(kind: str, interpreter: Interpreter | None) -> list[str]:
    """Delete the folders of ``kind`` (and unused reward assets) that no record names, and
    the installed locks of this kind other than the current ones (plain, and compiled by
    ``interpreter``)."""
    root = build_root()
    names = function_names()
    records = [r for r in (read_record(name, kind) for name in names) if r is not None]
    removed = prune(root / kind, {r.folder.name for r in records})
    if kind == "bundles":
        reward = next((r for r in records if r.name == "reward"), None)
        if reward is not None:
            assets = root / "assets"
            current = {p.name for p in assets.glob(f"reward-{reward.digest[:12]}-*") if p.is_dir()}
            removed += prune(assets, current, max_idle_seconds=ASSET_MAX_IDLE_SECONDS)
        # Environments' extra packages (stacks/extra_packages.py): kept while synths use them.
        extra = {p.name for p in (root / "extra").glob("extra-*") if p.is_dir()}
        removed += prune(root / "extra", extra, max_idle_seconds=ASSET_MAX_IDLE_SECONDS)
        with contextlib.suppress(FileNotFoundError):  # the layout before content addressing
            shutil.rmtree(root / "lambda")
    # Each kind of build prunes its own installs (and those of the layout before this one).
    host = kind.startswith("parity")
    other = "lambda-" if host else "host-"
    keep = {p.name for p in DEPS.glob(f"{other}*")}
    keep |= {_deps_name(n, c, host=host) for n in names for c in (None, interpreter)}
    removed += prune(DEPS, keep)
    # The files no folder links any more (the installed locks have a build folder of their own
    # when $RFT_BUILD_DIR points elsewhere).
    for store in dict.fromkeys((root / OBJECTS, DEPS.parent / OBJECTS)):
        prune_objects(store)
    return removed


def function_names() -> list[str]:
    """Every function: each ``lambda/<name>/`` with a ``handler.py``."""
    return sorted(p.name for p in SOURCE.iterdir() if (p / "handler.py").is_file())


def main(argv: list[str]) -> int:
    """Bundle the named functions, or all of them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="functions (default: every lambda/<name>)")
    parser.add_argument("--host", action="store_true", help="build for this machine")
    parser.add_argument("--no-bytecode", action="store_true", help="ship sources only")
    args = parser.parse_args(argv)
    names = args.names or function_names()
    # A build folder from before equal files were stored once: its files are shared, once.
    for root in dict.fromkeys((DEPS.parent, build_root())):
        share_existing(root)
    interpreter = find_cpython313()
    if interpreter is None:
        if args.host:
            print("bundle: no CPython 3.13 found (python3.13 on PATH or pyenv): no host build")
            return 0
        if not args.no_bytecode:
            print("bundle: no CPython 3.13 found (python3.13 on PATH or pyenv): no bytecode")
    for name in names:
        bundle(name, interpreter, host=args.host, bytecode=not args.no_bytecode)
    kind = ("parity" if not args.no_bytecode else "parity-source") if args.host else "bundles"
    if not args.names:
        prune_superseded(kind, interpreter)
    print(f"bundled: {', '.join(names)}")
    return 0
