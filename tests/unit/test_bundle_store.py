"""Build folders are pruned only when no live process holds them, and ``cdk.out`` keeps only
the assets its manifest names."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from stacks import bundle_store
from tests.lambda_loader import ROOT

HOLDER = (
    "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
    "from stacks.bundle_store import hold; hold(Path(sys.argv[2])); print('held', flush=True);"
    "sys.stdin.read()"
)


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _folders(root: Path, *names: str) -> None:
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "handler.py").write_text("", encoding="utf-8")


def test_a_folder_held_by_a_live_process_is_not_pruned(tmp_path: Path) -> None:
    _folders(tmp_path, "reward-old", "reward-new", "reward-held")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ROOT), str(tmp_path / "reward-held")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        removed = bundle_store.prune(tmp_path, {"reward-new"})
        assert removed == ["reward-old"]
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
            "reward-held",
            "reward-new",
        ]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # Its lock died with the process: now it goes.
    assert bundle_store.prune(tmp_path, {"reward-new"}) == ["reward-held"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reward-new"]


def test_idle_folders_go_and_builds_in_progress_stay(tmp_path: Path) -> None:
    _folders(tmp_path, "reward-a-1", "reward-a-2", ".reward-a-3.tmp")
    long_ago = time.time() - 2 * 24 * 3600
    os.utime(tmp_path / "reward-a-1", (long_ago, long_ago))
    removed = bundle_store.prune(tmp_path, {"reward-a-1", "reward-a-2"}, max_idle_seconds=3600)
    assert removed == ["reward-a-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".reward-a-3.tmp", "reward-a-2"]


def test_a_folder_this_process_holds_is_never_removed(tmp_path: Path) -> None:
    _folders(tmp_path, "mine")
    bundle_store.hold(tmp_path / "mine")
    assert bundle_store.prune(tmp_path, set()) == []
    assert (tmp_path / "mine" / "handler.py").is_file()


@pytest.mark.synth
def test_cdk_out_keeps_only_the_assets_and_stack_files_its_manifest_names(tmp_path: Path) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_s3_assets as s3_assets

    source = tmp_path / "source"
    source.mkdir()
    (source / "data.txt").write_text("payload\n", encoding="utf-8")
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "Assets")
    # staged as make synth stages them (the tests' own apps do not stage: tests/conftest.py);
    # the nearest scope's context wins over the app's
    stack.node.set_context("aws:cdk:disable-asset-staging", False)
    s3_assets.Asset(stack, "Data", path=str(source))
    app.synth()
    assembly = tmp_path / "cdk.out"
    kept = sorted(p.name for p in assembly.glob("asset.*"))
    assert kept, "the synth staged the asset"
    (assembly / "asset.0000superseded").mkdir()
    (assembly / "asset.0000superseded" / "old.py").write_text("", encoding="utf-8")
    (assembly / "asset.1111superseded.zip").write_bytes(b"PK")
    # the files of an environment removed from cdk.json since an earlier synth
    stack_files = sorted(p.name for p in assembly.glob("Assets.*.json"))
    assert stack_files == ["Assets.assets.json", "Assets.metadata.json", "Assets.template.json"]
    for suffix in ("assets", "metadata", "template"):
        (assembly / f"BedrockRft-gone.{suffix}.json").write_text("{}", encoding="utf-8")

    prune_cdk_out = _script("prune_cdk_out")
    assert prune_cdk_out.prune_assembly(assembly) == [
        "asset.0000superseded",
        "asset.1111superseded.zip",
        "BedrockRft-gone.assets.json",
        "BedrockRft-gone.metadata.json",
        "BedrockRft-gone.template.json",
    ]
    assert sorted(p.name for p in assembly.glob("asset.*")) == kept
    assert sorted(p.name for p in assembly.glob("*.json")) == [
        *stack_files,
        "manifest.json",
        "tree.json",
        "validation-report.json",
    ]


def test_staged_copies_of_a_bundle_become_hard_links_to_it(tmp_path: Path) -> None:
    store = tmp_path / ".build"
    bundle = store / "bundles" / "reward-0123"
    (bundle / "pkg").mkdir(parents=True)
    (bundle / "pkg" / "mod.py").write_text("x = 1\n", encoding="utf-8")
    (bundle / "handler.py").write_text("def handler(e, c): ...\n", encoding="utf-8")
    assembly = tmp_path / "cdk.out"
    staged = assembly / "asset.abc"
    shutil.copytree(bundle, staged)
    (staged / "pkg" / "mod.py").write_text("x = 2\n", encoding="utf-8")  # differs: kept
    (staged / "extra.txt").write_text("only here\n", encoding="utf-8")

    prune_cdk_out = _script("prune_cdk_out")
    freed = prune_cdk_out.link_assets(assembly, store)
    assert freed == len("def handler(e, c): ...\n")
    assert (staged / "handler.py").samefile(bundle / "handler.py")
    assert not (staged / "pkg" / "mod.py").samefile(bundle / "pkg" / "mod.py")
    assert (staged / "pkg" / "mod.py").read_text(encoding="utf-8") == "x = 2\n"
    assert (staged / "extra.txt").stat().st_nlink == 1
    assert prune_cdk_out.link_assets(assembly, store) == 0  # a second run finds nothing to do


def _without_cpython313(tmp_path: Path) -> dict[str, str]:
    """An environment whose only ``python3.13`` is a pyenv-like shim that fails."""
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python3.13"
    shim.write_text("#!/bin/sh\necho 'python3.13: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if k != "RFT_PYTHON313"}
    return {**environment, "PATH": f"{shims}:/usr/bin:/bin", "PYENV_ROOT": str(tmp_path)}


def test_without_cpython313_parity_says_so_in_one_line_and_passes(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "scripts/parity.py"],
        cwd=ROOT,
        env=_without_cpython313(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "parity: no CPython 3.13 found (python3.13 on PATH or pyenv): skipped"
    ]


def test_a_found_cpython313_is_probed_not_trusted(tmp_path: Path) -> None:
    from stacks import bundling as bundler

    environment = _without_cpython313(tmp_path)
    with pytest.MonkeyPatch.context() as monkeypatch:
        for key in ("PATH", "PYENV_ROOT"):
            monkeypatch.setenv(key, environment[key])
        monkeypatch.delenv("RFT_PYTHON313", raising=False)
        assert bundler.find_cpython313() is None
        monkeypatch.setenv("RFT_PYTHON313", sys.executable)  # the dev interpreter: not 3.13
        assert bundler.find_cpython313() is None


def test_a_bundle_built_from_other_sources_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stacks.lambda_code import bundle_record

    monkeypatch.setenv(bundle_store.BUILD_DIR_VARIABLE, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"bundle 'job' is missing: run `make bundle`"):
        bundle_record("job")
    stale = bundle_store.BundleRecord(name="job", digest="0" * 64, sources="1" * 64, bytecode=None)
    _folders(stale.folder.parent, stale.folder.name)
    stale.write()
    with pytest.raises(FileNotFoundError, match=r"'job' is out of date with lambda/job"):
        bundle_record("job")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_equal_files_of_two_builds_are_stored_once(tmp_path: Path) -> None:
    store = tmp_path / "objects"
    common = {"pkg/mod.py": "x = 1\n", "pkg/__init__.py": "", "run.sh": "echo\n"}
    first = _tree(tmp_path / "deps" / "a", {**common, "only-a.py": "a = 1\n"})
    second = _tree(tmp_path / "deps" / "b", {**common, "only-b.py": "b = 1\n"})
    (second / "run.sh").chmod(0o755)  # the same bytes with another mode: not the same file
    assert bundle_store.share_files(first, store) == 0  # the first of each content: stored
    assert bundle_store.share_files(second, store) == len("x = 1\n")
    assert (second / "pkg" / "mod.py").samefile(first / "pkg" / "mod.py")
    assert (second / "pkg" / "mod.py").read_text(encoding="utf-8") == "x = 1\n"
    assert not (second / "run.sh").samefile(first / "run.sh")
    assert (second / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (second / "pkg" / "__init__.py").stat().st_nlink == 1  # empty: no space to save
    assert (second / "only-b.py").stat().st_nlink == 2  # itself and its object
    assert sorted(p.name for p in second.rglob("*") if ".shared" in p.name) == []
    # a third build whose files are links already (to an installed lock) is not read again
    third = tmp_path / "bundles" / "c"
    bundle_store.link_tree(second, third)
    (third / "pkg" / "mod.py").unlink()
    shutil.copyfile(first / "pkg" / "mod.py", third / "pkg" / "mod.py")
    assert bundle_store.share_files(third, store) == len("x = 1\n")
    assert (third / "pkg" / "mod.py").samefile(first / "pkg" / "mod.py")


def test_objects_no_build_links_are_pruned_and_stored_again_when_needed(tmp_path: Path) -> None:
    store = tmp_path / "objects"
    first = _tree(tmp_path / "a", {"mod.py": "x = 1\n", "other.py": "y = 2\n"})
    bundle_store.share_files(first, store)
    assert len(list(store.iterdir())) == 2
    assert bundle_store.prune_objects(store) == 0  # both linked
    (first / "other.py").unlink()
    assert bundle_store.prune_objects(store) == 1
    shutil.rmtree(first)
    assert bundle_store.prune_objects(store) == 1
    assert list(store.iterdir()) == []
    again = _tree(tmp_path / "b", {"mod.py": "x = 1\n"})
    assert bundle_store.share_files(again, store) == 0
    assert [p.stat().st_nlink for p in store.iterdir()] == [2]


def test_a_build_folder_from_before_the_store_is_shared_once(tmp_path: Path) -> None:
    files = {"botocore/data.json": "{}" * 100, "common/util.py": "z = 3\n"}
    lock_a = _tree(tmp_path / "deps" / "lambda-job-1", files)
    lock_b = _tree(tmp_path / "deps" / "lambda-metrics-2", files)
    bundle = tmp_path / "bundles" / "job-3"
    bundle_store.link_tree(lock_a, bundle)  # hard links already, as bundles were built
    _tree(tmp_path / "deps" / ".lambda-job-4.staging", files)  # a build in progress: left
    freed = bundle_store.share_existing(tmp_path)
    assert freed > 0
    for relative in files:
        assert (lock_b / relative).samefile(lock_a / relative)
        assert (bundle / relative).samefile(lock_a / relative)
    staging = tmp_path / "deps" / ".lambda-job-4.staging" / "common" / "util.py"
    assert staging.stat().st_nlink == 1
    _tree(tmp_path / "deps" / "lambda-late-5", files)
    assert bundle_store.share_existing(tmp_path) == 0  # once: later builds share as built
    assert (tmp_path / "deps" / "lambda-late-5" / "common" / "util.py").stat().st_nlink == 1
    assert bundle_store.prune_objects(tmp_path / "objects") == 0  # the marker is no object
    assert (tmp_path / "objects" / bundle_store.SHARED_MARKER).is_file()
