"""The user's own cdk.json, graders/ and datasets/, checked generically.

These files belong to the user: nothing here pins a value in them. Whatever environments they
define must load, synthesize and pass the compliance gates; every grader file must load with
the reward Lambda's own loader; every dataset an environment names must pass preflight's
dataset checks. A valid edit keeps this module green; an invalid one fails it with the same
config error ``make synth`` prints.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from app import build_app
from preflight.__main__ import main as preflight
from stacks.config import ConfigError, EnvironmentConfig, load_environments
from stacks.nag import rule_packs
from tests.conftest import user_cdk_context
from tests.lambda_loader import ROOT
from tests.reward_support import reward_module


def _user_environments() -> list[EnvironmentConfig]:
    """The user's environments; a config problem fails the test with its error lines."""
    try:
        return load_environments(user_cdk_context(), ROOT)
    except ConfigError as err:
        problems = str(err)
    pytest.fail(f"cdk.json:\n{problems}", pytrace=False)


def test_every_environment_loads() -> None:
    assert _user_environments(), "cdk.json defines at least one environment"


def _current_synth() -> dict[str, Path] | None:
    """The stacks of ``cdk.out`` when ``make synth`` made it from exactly the current inputs
    (every environment; scripts/synth_stamp.py), else None."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("synth_stamp", ROOT / "scripts/synth_stamp.py")
    assert spec and spec.loader
    stamp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stamp)
    if not stamp.is_current(ROOT, ROOT / "cdk.out", ""):
        return None
    from scripts.synthesized import templates

    return templates(ROOT / "cdk.out")


def test_every_environment_synthesizes_and_passes_its_gates(tmp_path: Path) -> None:
    configs = _user_environments()
    names = [config.name for config in configs]
    found = _current_synth()
    if found is not None:
        # make synth built these inputs already, with the same packs: a finding fails it, and
        # it stamps only an assembly it finished. Its stacks are the ones these configs make.
        assert [n for n in found if n in {c.stack_name for c in configs}] == [
            config.stack_name for config in configs
        ]
        report = json.loads((ROOT / "cdk.out" / "validation-report.json").read_text("utf-8"))
        assert all(r.get("summary", {}).get("status") != "failure" for r in report["pluginReports"])
        return
    app = cdk.App(outdir=str(tmp_path), context=user_cdk_context())
    assert [stack.config.name for stack in build_app(app)] == names
    for pack in rule_packs():
        report = pack.validate_scope(app)
        assert report.success, f"{pack.name}: {[v.rule_name for v in report.violations]}"


@pytest.mark.parametrize(
    "path", sorted((ROOT / "graders").glob("*.json")), ids=lambda path: path.name
)
def test_every_grader_file_loads_with_the_reward_lambdas_loader(path: Path) -> None:
    grading = reward_module()
    try:
        definition = grading.load_definition(path)
    except grading.DefinitionError as err:
        pytest.fail(f"graders/{path.name}: {err}", pytrace=False)
    assert definition.name


def _preflight_errors(
    folder: Path, more: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[Any]]:
    """Preflight of a dataset folder (its validation file too): the exit status and the first
    examples of each error."""
    args = ["--dataset", str(folder / "train.jsonl"), *more]
    if (folder / "validation.jsonl").is_file():
        args += ["--validation", str(folder / "validation.jsonl")]
    code = preflight([*args, "--json", "--no-progress"])
    report = json.loads(capsys.readouterr().out)
    return code, [f["examples"][:2] for f in report["findings"] if f["severity"] == "error"]


def test_every_dataset_an_environment_names_passes_the_dataset_checks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    checked: set[tuple[str, object]] = set()
    for config in _user_environments():
        limit = config.hyperparameters.get("maxPromptLength")
        if (config.dataset, limit) in checked:
            continue
        checked.add((config.dataset, limit))
        code, problems = _preflight_errors(ROOT / config.dataset, ["--env", config.name], capsys)
        assert code == 0, f"environment '{config.name}': {config.dataset}: {problems}"


def _example_pairs() -> list[Path]:
    """Each dataset folder with a grader file of its name (datasets/gsm8k, graders/gsm8k.json):
    whatever cdk.json deploys, these ship together."""
    return sorted(
        folder
        for folder in (ROOT / "datasets").glob("*/")
        if (folder / "train.jsonl").is_file()
        and (ROOT / "graders" / f"{folder.name}.json").is_file()
    )


@pytest.mark.parametrize("folder", _example_pairs(), ids=lambda folder: folder.name)
def test_every_dataset_passes_preflight_with_the_grader_of_its_name(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``make preflight`` passes (valid records, every reference readable by the grader, no
    gaming probe that is an error), for the datasets no environment names as well."""
    grader = ROOT / "graders" / f"{folder.name}.json"
    code, problems = _preflight_errors(folder, ["--grader", str(grader)], capsys)
    assert code == 0, f"{folder.name}: {problems}"


def _edited(context: dict[str, Any]) -> dict[str, Any]:
    """The edits the README invites: a new environment, other valid sizes and batch sizes."""
    edited = copy.deepcopy(context)
    environments = edited["environments"]
    first = next(iter(environments.values()))
    environments["qa-new"] = {**copy.deepcopy(first), "tags": {"environment": "qa-new"}}
    for raw in environments.values():
        hyperparameters = raw.setdefault("hyperparameters", {})
        if raw.get("backend", "openai") == "bedrock":
            hyperparameters["batchSize"] = 32
        else:
            hyperparameters["batch_size"] = 2
        raw.setdefault("reward_function", {})["memory_mb"] = 2048
    return edited


def test_valid_edits_load_and_an_invalid_one_names_itself() -> None:
    edited = _edited(user_cdk_context())
    names = [config.name for config in load_environments(edited, ROOT)]
    assert names[-1] == "qa-new"
    edited["environments"]["qa-new"]["reward_function"]["memory_mb"] = 64
    with pytest.raises(ConfigError) as caught:
        load_environments(edited, ROOT)
    assert caught.value.lines == [
        "environment 'qa-new': reward_function.memory_mb = 64: "
        "Input should be greater than or equal to 128"
    ]
