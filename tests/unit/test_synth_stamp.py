"""``make synth`` skips the CDK CLI only when ``cdk.out`` is the synthesis of the current
inputs (scripts/synth_stamp.py): any file synthesis reads, ENV, or the assembly itself
changed means synthesizing again; documentation does not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.lambda_loader import ROOT


def _stamp() -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location("synth_stamp", ROOT / "scripts/synth_stamp.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stamp = _stamp()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git checkout with code, data, docs and a synthesized assembly."""
    for name, text in {
        "app.py": "print('app')\n",
        "stacks/a.py": "A = 1\n",
        "datasets/d/train.jsonl": "{}\n",
        "README.md": "# readme\n",
        "docs/topic.md": "topic\n",
        "tests/unit/test_x.py": "def test_x() -> None: ...\n",
        ".gitignore": "cdk.out/\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    out = tmp_path / "cdk.out"
    out.mkdir()
    manifest = {
        "artifacts": {
            "S": {"type": "aws:cloudformation:stack", "properties": {"templateFile": "S.json"}}
        }
    }
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (out / "S.json").write_text('{"Resources": {}}', encoding="utf-8")
    stamp.write(tmp_path, out, "")  # type: ignore[attr-defined]
    return tmp_path


def _current(project: Path, context: str = "") -> bool:
    return bool(stamp.is_current(project, project / "cdk.out", context))  # type: ignore[attr-defined]


def test_the_same_inputs_are_current(project: Path) -> None:
    assert _current(project)


@pytest.mark.parametrize("name", ["README.md", "docs/topic.md", "tests/unit/test_x.py"])
def test_what_synthesis_never_reads_leaves_it_current(project: Path, name: str) -> None:
    (project / name).write_text("changed\n", encoding="utf-8")
    assert _current(project)


@pytest.mark.parametrize("name", ["app.py", "stacks/a.py", "datasets/d/train.jsonl"])
def test_a_changed_input_is_not_current(project: Path, name: str) -> None:
    (project / name).write_text("changed\n", encoding="utf-8")
    assert not _current(project)


def test_a_new_untracked_input_is_not_current(project: Path) -> None:
    (project / "graders").mkdir()
    (project / "graders/new.json").write_text("{}", encoding="utf-8")
    assert not _current(project)


def test_another_environment_selection_is_not_current(project: Path) -> None:
    assert not _current(project, "-c env=dev")


@pytest.mark.parametrize("name", ["manifest.json", "S.json"])
def test_an_assembly_changed_since_is_not_current(project: Path, name: str) -> None:
    path = project / "cdk.out" / name
    path.write_text(path.read_text(encoding="utf-8") + " ", encoding="utf-8")
    assert not _current(project)


def test_a_missing_template_or_stamp_is_not_current(project: Path) -> None:
    (project / "cdk.out" / "S.json").unlink()
    assert not _current(project)
    stamp.write(project, project / "cdk.out", "")  # type: ignore[attr-defined]
    assert not (project / "cdk.out" / stamp.STAMP).exists()  # type: ignore[attr-defined]


def test_outside_git_nothing_is_current(project: Path) -> None:
    subprocess.run(["rm", "-rf", str(project / ".git")], check=True)
    assert not _current(project)
