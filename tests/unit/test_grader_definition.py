"""Grader definitions are validated once, at cold start, with the JSON path of any problem."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.lambda_loader import ROOT, load_handler
from tests.reward_support import (
    GRADERS,
    definition_error,
    load_reward,
    reward_module,
    rollout,
    scores,
)


@pytest.mark.parametrize(
    ("definition", "path", "problem"),
    [
        ({"type": "math_anser"}, "$.type", "'math_anser' is not allowed; allowed: string_check"),
        ({"name": "x"}, "$.type", "required key is missing"),
        ({"type": "math_answer", "tolerance": -1}, "$.tolerance", "must be at least 0"),
        ({"type": "math_answer", "tolerance": "small"}, "$.tolerance", "must be a number"),
        ({"type": "math_answer", "refrence": "x"}, "$.refrence", "unknown key"),
        ({"type": "math_answer", "name": ""}, "$.name", "must not be empty"),
        ({"type": "math_answer", "max_numbers": 2.5}, "$.max_numbers", "whole number"),
        (
            {"type": "math_answer", "reference": "{{ item.reference_answer "},
            "$.reference",
            "template syntax error",
        ),
        (
            {"type": "math_answer", "reference": "{{ answer }}"},
            "$.reference",
            "template uses answer; only sample and item exist",
        ),
        ([1, 2], "$", "must be an object, got array"),
    ],
)
def test_invalid_definitions_fail_at_cold_start(
    monkeypatch: pytest.MonkeyPatch, definition: Any, path: str, problem: str
) -> None:
    value = json.dumps(definition) if isinstance(definition, list) else definition
    message = definition_error(monkeypatch, value)
    assert message.startswith(f"grader definition {path}: ")
    assert problem in message


def test_a_file_that_is_not_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "math_answer",\n "name": }', encoding="utf-8")
    message = definition_error(monkeypatch, bad)
    assert "bad.json is not valid JSON" in message
    assert "line 2" in message


def test_a_missing_file(monkeypatch: pytest.MonkeyPatch) -> None:
    message = definition_error(monkeypatch, "graders/does-not-exist.json")
    assert "GRADER_CONFIG=graders/does-not-exist.json: no such file" in message


def test_grader_config_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    grading = reward_module()
    monkeypatch.delenv("GRADER_CONFIG", raising=False)
    with pytest.raises(grading.DefinitionError, match="GRADER_CONFIG is not set"):
        load_handler("reward", fresh=True)


def test_inline_json_and_the_name_dimension(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_reward(monkeypatch, {"type": "math_answer"})
    assert module.DEFINITION.name == "inline"
    named = load_reward(monkeypatch, {"type": "math_answer", "name": "arith"})
    assert named.DEFINITION.name == "arith"
    assert scores(named.handler([rollout("1", "#### 3", 3)], None)) == [1.0]


def test_a_file_without_a_name_is_named_after_its_stem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "my-math.json"
    path.write_text('{"type": "math_answer"}', encoding="utf-8")
    assert load_reward(monkeypatch, path).DEFINITION.name == "my-math"


def test_paths_are_resolved_from_the_lambda_root_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    grading = reward_module()
    relative = "tests/fixtures/graders/gsm8k.json"
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_text(
        '{"type": "math_answer", "name": "from-root"}', encoding="utf-8"
    )
    definition = grading.load_definition(relative, root=tmp_path)
    assert definition.name == "from-root"
    # not under the root: the working directory (the repository in tests and preflight)
    fallback = grading.load_definition(relative, root=tmp_path / "elsewhere")
    assert fallback.name == "gsm8k"


@pytest.mark.parametrize("path", sorted(GRADERS.glob("*.json")), ids=lambda p: p.name)
def test_every_fixture_definition_is_valid(path: Path) -> None:
    grading = reward_module()
    definition = grading.load_definition(path)
    assert definition.name


def _readme_examples() -> list[str]:
    section = (ROOT / "docs" / "graders.md").read_text(encoding="utf-8")
    return re.findall(r"```json\n(.*?)\n```", section, re.DOTALL)


def test_the_readme_documents_every_grader_type_with_a_valid_example() -> None:
    grading = reward_module()
    registry = reward_module("grading.registry")
    examples = _readme_examples()
    documented: set[str] = set()
    for example in examples:
        definition = grading.parse_definition(json.loads(example), default_name="readme")
        documented.update(grader.type_name for grader in definition.graders())
    assert documented == set(registry.GRADER_TYPES)
