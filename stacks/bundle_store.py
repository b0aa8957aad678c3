"""Content-addressed build folders for the Lambda bundles and assets (no CDK import here).

``stacks/bundling.py`` writes each bundle to ``.build/bundles/<name>-<digest>/``, where
the digest covers everything that decides the folder's content (the lock, the sources, the
build recipe, whether bytecode is in), and records it in ``.build/bundles/<name>.json``. The
CDK code passes that digest as the asset's custom hash, so aws-cdk-lib never fingerprints the
folder: its fingerprint cache is keyed by inode, mtime and size, and handed back another
file's hash when folders were deleted and copied again.

Pruning superseded folders must never delete one that a live synth reads (``pytest -n 2``
synthesizes in parallel, and several environments use different reward assets at once).
Every reader takes a shared ``flock`` on ``<folder>.lock`` and keeps it until its process
ends (aws-cdk-lib copies an asset while the construct is built, and the process may build
more); pruning takes the lock exclusively without waiting and skips any folder it cannot
lock. Locks die with their process, so a crashed synth leaves nothing behind. Where ``fcntl``
does not exist (Windows), nothing is pruned.

Equal files are stored once. The installed locks of different functions (and of the Lambda
and the host builds) hold the same distributions, the bundles the same ``lambda/common``:
every file a build writes is replaced by a hard link to the file of the same content and mode
in ``<build folder>/objects/`` (:func:`share_files`), added there when it is the first.
Sound for the same reason hard links between the locks and the bundles are: a built file is
never written again (bytecode is written to a new file and renamed over). An object no
folder links any more is deleted when superseded folders are pruned (:func:`prune_objects`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no pruning, reading works
    fcntl = None  # type: ignore[assignment]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Tests build into a folder of their own; everyone else uses the project's .build.
BUILD_DIR_VARIABLE = "RFT_BUILD_DIR"
# Files of a function's folder that are not part of its bundle.
SKIPPED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache"})
SKIPPED_FILES = frozenset({"requirements.in", "requirements.txt"})
# Packages a function's bundle takes from another function's folder (path under lambda/; it
# goes to the bundle's root under its last name). The evaluation's aggregation runs the
# evaluation's own rft_eval code from a bundle of its own, the only one with matplotlib.
SHARED_SOURCES: dict[str, tuple[str, ...]] = {"evaluation_report": ("evaluation/rft_eval",)}

# Every file a build writes, once per content and mode (hard links): see the module docstring.
OBJECTS = "objects"
# Written into the objects folder once the folders built before it existed were shared (not
# an object: its name is not a digest; no leading dot, so copies of the folder keep it).
SHARED_MARKER = "shared.marker"
# The kinds of content-addressed folders of a build folder (each holds trees of files).
BUILT_KINDS = ("deps", "bundles", "parity", "parity-source", "extra", "assets")

# A folder being built is named ".<name>..." and renamed into place when complete; one older
# than this was left by a build that died.
STALE_STAGING_SECONDS = 3600.0

_held: dict[Path, int] = {}


def build_root() -> Path:
    """The build folder: ``$RFT_BUILD_DIR`` when set, else ``.build`` in the project."""
    override = os.environ.get(BUILD_DIR_VARIABLE)
    return Path(override).resolve() if override else PROJECT_ROOT / ".build"


def source_files(folder: Path) -> list[Path]:
    """The files of ``folder`` a bundle ships, sorted (no caches, bytecode or requirements)."""
    found = []
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if any(part in SKIPPED_DIRS for part in parts[:-1]) or not path.is_file():
            continue
        if path.name in SKIPPED_FILES or path.suffix == ".pyc":
            continue
        found.append(path)
    return sorted(found)


def files_digest(label: str, folder: Path, files: Iterable[Path]) -> bytes:
    """A digest of ``files`` (paths relative to ``folder`` under ``label``, and contents)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{label}/{path.relative_to(folder).as_posix()}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.digest()


def source_folders(
    name: str, source_root: Path = PROJECT_ROOT / "lambda"
) -> list[tuple[str, Path]]:
    """The source folders of function ``name``'s bundle, each with where it goes in the bundle
    (``""``: the root): ``lambda/common``, any shared package, ``lambda/<name>``."""
    shared = [
        (path.rsplit("/", 1)[-1], source_root / path) for path in SHARED_SOURCES.get(name, ())
    ]
    return [("", source_root / "common"), *shared, ("", source_root / name)]


def sources_digest(name: str, source_root: Path = PROJECT_ROOT / "lambda") -> str:
    """A digest of what function ``name`` is built from: its lock and its source folders
    (``lambda/common``, any shared package, ``lambda/<name>``)."""
    digest = hashlib.sha256()
    for _, folder in source_folders(name, source_root):
        label = folder.relative_to(source_root).as_posix()
        digest.update(files_digest(label, folder, source_files(folder)))
    lock = source_root / name / "requirements.txt"
    digest.update(lock.read_bytes() if lock.is_file() else b"no lock")
    return digest.hexdigest()


@dataclass(frozen=True)
class BundleRecord:
    """What ``.build/bundles/<name>.json`` says about the current bundle of a function."""

    name: str
    digest: str  # sha256 hex of every input of the folder's content
    sources: str  # sha256 hex of the function's sources and lock (a staleness check)
    bytecode: str | None  # e.g. "cpython-313 magic f30d0d0a, unchecked-hash", or None
    kind: str = "bundles"  # "bundles" for Lambda; "parity", "parity-source" for this machine

    @property
    def folder(self) -> Path:
        """The content-addressed folder of this bundle."""
        return build_root() / self.kind / f"{self.name}-{self.digest[:16]}"

    def write(self) -> None:
        """Record this bundle as the current one (atomically; unchanged records stay)."""
        path = build_root() / self.kind / f"{self.name}.json"
        text = json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)


def read_record(name: str, kind: str = "bundles") -> BundleRecord | None:
    """The current bundle of function ``name``, or None when it has not been built."""
    path = build_root() / kind / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return BundleRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def hold(folder: Path) -> None:
    """Take a shared lock on ``folder`` for the rest of this process: pruning skips it."""
    if fcntl is None or folder in _held:
        return
    lock = folder.with_name(folder.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_SH)
        try:
            same = os.stat(lock).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else a pruner removed the lock file between open and flock: again
            _held[folder] = descriptor
            return
        os.close(descriptor)


def link_tree(source: Path, target: Path, ignore: tuple[str, ...] = ()) -> None:
    """Copy a tree as hard links: one copy on disk, since nothing writes a built file again
    (a plain copy where links are not possible, e.g. across file systems); names matching
    an ``ignore`` pattern are left out."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(
        source,
        target,
        dirs_exist_ok=True,
        copy_function=link,
        ignore=shutil.ignore_patterns(*ignore) if ignore else None,
    )


def touch(folder: Path) -> None:
    """Mark ``folder`` as used now (its modification time is the last use)."""
    with contextlib.suppress(OSError):
        os.utime(folder)


def remove_unused(folder: Path) -> bool:
    """Delete ``folder`` unless a live process holds it; True when it is gone."""
    if fcntl is None or folder in _held:
        return False
    lock = folder.with_name(folder.name + ".lock")
    descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        trash = folder.with_name(f".trash-{folder.name}-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            folder.rename(trash)
        # Unlinked while held: a reader that opened the old file notices and opens anew.
        lock.unlink(missing_ok=True)
    finally:
        os.close(descriptor)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def prune(folder: Path, keep: set[str], *, max_idle_seconds: float | None = None) -> list[str]:
    """Delete the sub-folders of ``folder`` not named in ``keep`` that no live process holds.

    With ``max_idle_seconds``, a folder in ``keep`` unused for longer goes too. Returns the
    names removed.
    """
    removed: list[str] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for child in sorted(folder.iterdir()):
        if not child.is_dir():
            continue
        if child.name.startswith("."):  # a build in progress, or the leftovers of a crash
            if now - child.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(child, ignore_errors=True)
            continue
        idle = max_idle_seconds is not None and now - child.stat().st_mtime > max_idle_seconds
        if (child.name not in keep or idle) and remove_unused(child):
            removed.append(child.name)
    for lock in folder.glob("*.lock"):  # locks of folders already gone
        if not lock.with_suffix("").exists():
            remove_unused(lock.with_suffix(""))
    return removed


def _object_name(path: str, info: os.stat_result) -> str:
    with open(path, "rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    return f"{digest}-{stat.S_IMODE(info.st_mode):o}"


def _link_to_object(path: str, store: Path, name: str) -> bool:
    """Make ``path`` a hard link to the store's object ``name`` (added from ``path`` when it is
    the first of its content); True when ``path`` now shares the object's space."""
    item = store / name
    for _ in range(3):  # a pruner may delete an unused object between two steps
        try:
            os.link(path, item)  # the first file of this content: it becomes the object
            return False
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system: keep the copy
            return False
        temporary = f"{path}.{os.getpid()}.shared"
        try:
            if os.path.samefile(path, item):
                return False
            os.link(item, temporary)
        except FileNotFoundError:
            continue
        except OSError:  # e.g. the object's link count is at the file system's maximum
            return False
        os.replace(temporary, path)
        return True
    return False


def share_files(folder: Path, store: Path, *, linked_too: bool = False) -> int:
    """Replace each regular file of ``folder`` by a hard link to ``store``'s object of the same
    content and mode; return the bytes this frees.

    Files that are hard links already (to an installed lock, say) are skipped unless
    ``linked_too``: they were shared when the folder they come from was built. Empty files
    take no space and are left alone.
    """
    store.mkdir(parents=True, exist_ok=True)
    names: dict[tuple[int, int], str] = {}  # (device, inode) -> object name: hashed once
    freed = 0
    for base, _, files in os.walk(folder):
        for file in files:
            path = os.path.join(base, file)
            try:
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
                    continue
                if info.st_nlink > 1 and not linked_too:
                    continue
                inode = (info.st_dev, info.st_ino)
                if inode not in names:
                    names[inode] = _object_name(path, info)
                if _link_to_object(path, store, names[inode]) and info.st_nlink == 1:
                    freed += info.st_size
            except FileNotFoundError:  # a folder pruned meanwhile (sharing an older build)
                continue
    return freed


def share_existing(root: Path) -> int:
    """Once per build folder: share the files of the folders built before ``root/objects``
    existed (hashing each file once); return the bytes this frees."""
    store = root / OBJECTS
    if (store / SHARED_MARKER).is_file():
        return 0
    freed = 0
    for kind in BUILT_KINDS:
        folder = root / kind
        for tree in sorted(folder.iterdir()) if folder.is_dir() else []:
            if tree.is_dir() and not tree.name.startswith("."):
                freed += share_files(tree, store, linked_too=True)
    store.mkdir(parents=True, exist_ok=True)
    (store / SHARED_MARKER).touch()
    return freed


def prune_objects(store: Path) -> int:
    """Delete the objects no built folder links any more; return how many went."""
    removed = 0
    for item in store.iterdir() if store.is_dir() else []:
        if item.name == SHARED_MARKER or item.name.startswith("."):
            continue
        with contextlib.suppress(FileNotFoundError):
            if item.stat().st_nlink == 1:
                item.unlink()
                removed += 1
    return removed
