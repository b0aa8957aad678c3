"""The Lambda bundles hold only wheels that run on Lambda: pure Python, or CPython 3.13 on
Linux arm64 with a glibc the runtime has (stacks/bundling.py checks every install)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from stacks import bundling as bundler
from stacks.bundle_store import read_record
from tests.bundle_support import canonical, lock_pins
from tests.lambda_loader import ROOT


def _install(folder: Path, name: str, *tags: str) -> None:
    info = folder / f"{name}.dist-info"
    info.mkdir(parents=True)
    lines = ["Wheel-Version: 1.0", "Root-Is-Purelib: false", *(f"Tag: {tag}" for tag in tags)]
    (info / "WHEEL").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    "tag",
    [
        "py3-none-any",
        "cp313-cp313-manylinux2014_aarch64",
        "cp313-cp313-manylinux_2_17_aarch64",
        "cp313-cp313-manylinux_2_28_aarch64",
        "cp39-abi3-manylinux_2_17_aarch64",
        "py3-none-manylinux_2_28_aarch64",
    ],
)
def test_wheels_for_the_lambda_platform_fit(tag: str) -> None:
    assert bundler._tag_fits(tag)


@pytest.mark.parametrize(
    "tag",
    [
        "py2-none-any",
        "cp313-cp313-manylinux2014_x86_64",
        "cp313-cp313-manylinux_2_34_aarch64",  # newer than the accepted manylinux_2_28
        "cp312-cp312-manylinux2014_aarch64",
        "cp313-cp313-musllinux_1_2_aarch64",
        "cp313-cp313-macosx_11_0_arm64",
        "cp314-abi3-manylinux2014_aarch64",
    ],
)
def test_wheels_for_other_platforms_do_not(tag: str) -> None:
    assert not bundler._tag_fits(tag)


def test_a_distribution_fits_when_one_of_its_tags_does(tmp_path: Path) -> None:
    _install(tmp_path, "six-1.17.0", "py2-none-any", "py3-none-any")
    _install(
        tmp_path,
        "rapidfuzz-3.14.6",
        "cp313-cp313-manylinux_2_26_aarch64",
        "cp313-cp313-manylinux_2_28_aarch64",
    )
    _install(tmp_path, "numpy-2.3.0", "cp313-cp313-manylinux_2_28_x86_64")
    _install(tmp_path, "oldlib-1.0", "py2-none-any")
    assert bundler.check_wheels(tmp_path) == [
        "numpy-2.3.0.dist-info: cp313-cp313-manylinux_2_28_x86_64",
        "oldlib-1.0.dist-info: py2-none-any",
    ]


@pytest.mark.parametrize("name", ["reward", "job", "metrics"])
def test_the_built_bundles_hold_only_lambda_wheels(name: str) -> None:
    record = read_record(name)
    assert record is not None, f"{name} is not built: run `make bundle`"
    assert list(record.folder.glob("*.dist-info/WHEEL")), "the bundle has its dependencies"
    assert bundler.check_wheels(record.folder) == []


@pytest.mark.parametrize("name", ["reward", "job", "metrics"])
def test_the_built_bundles_hold_exactly_their_lock(name: str) -> None:
    record = read_record(name)
    assert record is not None, f"{name} is not built: run `make bundle`"
    installed = {}
    for metadata in record.folder.glob("*.dist-info/METADATA"):
        fields = dict(
            line.split(": ", 1)
            for line in metadata.read_text("utf-8").splitlines()[:10]
            if ": " in line
        )
        installed[canonical(fields["Name"])] = fields["Version"]
    assert installed == lock_pins(ROOT / "lambda" / name / "requirements.txt")


@pytest.mark.parametrize("name", ["reward", "job", "metrics"])
def test_the_built_bundles_carry_no_test_folders_of_their_dependencies(name: str) -> None:
    record = read_record(name)
    assert record is not None, f"{name} is not built: run `make bundle`"
    dead = [
        p.relative_to(record.folder).as_posix()
        for p in record.folder.glob("*/**/")
        if p.name in bundler.TEST_FOLDERS and (p / "__init__.py").is_file()
    ]
    assert dead == []
    assert not (record.folder / "bin").exists()


def test_dropping_a_test_folder_a_module_imports_fails_the_build(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "tests").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "tests" / "__init__.py").write_text("", encoding="utf-8")
    (package / "tests" / "test_a.py").write_text("", encoding="utf-8")
    (package / "tests.py").write_text("RUNTIME = 1\n", encoding="utf-8")
    assert bundler.drop_dead_weight(tmp_path) == ["pkg/tests"]
    assert (package / "tests.py").is_file()  # a module named like it stays

    (package / "test").mkdir()
    (package / "test" / "__init__.py").write_text("", encoding="utf-8")
    (package / "core.py").write_text("from pkg.test import helper\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"pkg/core.py imports pkg.test"):
        bundler.drop_dead_weight(tmp_path)


def test_bytecode_is_reproducible_and_records_the_lambda_path(tmp_path: Path) -> None:
    interpreter = bundler.find_cpython313()
    if interpreter is None:
        pytest.skip("no CPython 3.13 found (python3.13 on PATH or pyenv)")
    outputs = []
    for run in ("first", "second"):
        folder = tmp_path / run
        shutil.copytree(ROOT / "lambda" / "common", folder)
        if run == "first":
            bundler.compile_bytecode(interpreter, folder)
        else:  # file by file, as a function's own sources are compiled
            files = [p.relative_to(folder).as_posix() for p in folder.rglob("*.py")]
            bundler.compile_bytecode(interpreter, folder, files)
        outputs.append({p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.pyc")})
    assert outputs[0], "the sources were compiled"
    assert outputs[0] == outputs[1]
    header = next(iter(outputs[0].values()))[:16]
    assert header[:4] == bytes.fromhex(interpreter.magic)
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, unchecked
    assert all(b"/var/task/" in data for data in outputs[0].values())


def test_a_known_lazy_import_of_a_test_folder_does_not_fail_the_build(tmp_path: Path) -> None:
    # mpmath's runtests() imports mpmath.tests in its body; nothing on Lambda calls it
    package = tmp_path / "mpmath"
    (package / "tests").mkdir(parents=True)
    (package / "tests" / "__init__.py").write_text("", encoding="utf-8")
    runtests = "def runtests():\n    from .tests import runtests as tests\n"
    (package / "__init__.py").write_text(runtests, encoding="utf-8")
    assert bundler.drop_dead_weight(tmp_path) == ["mpmath/tests"]
    # the same import anywhere else still fails the build
    (package / "tests" / "__init__.py").parent.mkdir(parents=True)
    (package / "tests" / "__init__.py").write_text("", encoding="utf-8")
    (package / "calculus.py").write_text("from .tests import helper\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"mpmath/calculus.py imports mpmath.tests"):
        bundler.drop_dead_weight(tmp_path)


def test_the_built_bundles_store_each_file_once() -> None:
    """Equal files (content and mode) of the built bundles are one file on disk: the installed
    locks of different functions hold the same distributions, every bundle lambda/common."""
    by_shape: dict[tuple[int, int], set[tuple[int, int]]] = {}
    paths: dict[tuple[int, int], Path] = {}
    for name in bundler.function_names():
        record = read_record(name)
        assert record is not None, f"{name} is not built: run `make bundle`"
        for path in record.folder.rglob("*"):
            info = path.lstat()
            if not path.is_file() or path.is_symlink() or info.st_size == 0:
                continue
            inode = (info.st_dev, info.st_ino)
            by_shape.setdefault((info.st_size, info.st_mode), set()).add(inode)
            paths.setdefault(inode, path)
    assert len(paths) > 1000, "the bundles hold their dependencies"
    seen: dict[tuple[bytes, int], Path] = {}
    copies = []
    for (_, mode), inodes in by_shape.items():
        for inode in sorted(inodes) if len(inodes) > 1 else []:
            key = (hashlib.sha256(paths[inode].read_bytes()).digest(), mode)
            if key in seen:
                copies.append(f"{paths[inode]} = {seen[key]}")
            seen.setdefault(key, paths[inode])
    assert copies == [], f"{len(copies)} files stored twice, e.g. {copies[:3]}"
