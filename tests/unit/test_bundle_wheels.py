"""The Lambda bundles hold only wheels that run on Lambda: pure Python, or CPython 3.13 on
Linux arm64 with a glibc the runtime has (scripts/bundle_lambdas.py checks every install)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.lambda_loader import ROOT


def _bundler() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bundle_lambdas", ROOT / "scripts" / "bundle_lambdas.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bundler = _bundler()


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
    folder = ROOT / ".build" / "lambda" / name
    assert (folder / "handler.py").is_file(), f"{folder} is not built: run `make bundle`"
    assert list(folder.glob("*.dist-info/WHEEL")), "the bundle has its dependencies"
    assert bundler.check_wheels(folder) == []
