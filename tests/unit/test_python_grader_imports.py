"""A python grader's imports are checked before its source runs: a module the reward Lambda
lacks fails the definition once, with one line naming it, at cold start and at synth (where
the development environment's extra packages do not count)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from stacks.grader_check import grader_problem, reward_modules
from tests.lambda_loader import LambdaContext
from tests.reward_support import definition_error, load_reward, rollout, scores


def source(*lines: str) -> str:
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("code", "module", "line"),
    [
        (source("import pandas as pd", "def grade(sample, item):", "    return 1"), "pandas", 1),
        (
            source("def grade(sample, item):", "    from scipy.stats import norm", "    return 1"),
            "scipy.stats",
            2,
        ),
        (
            source(
                "import json", "def grade(sample, item):", "    import sqlparse", "    return 1"
            ),
            "sqlparse",
            3,
        ),
    ],
    ids=["top-level", "from-inside-grade", "import-inside-grade"],
)
def test_a_missing_module_fails_the_definition_with_its_name(
    monkeypatch: pytest.MonkeyPatch, code: str, module: str, line: int
) -> None:
    # Packages of OpenAI's python grader image that neither the bundle nor this environment has.
    assert importlib.util.find_spec(module.partition(".")[0]) is None
    message = definition_error(monkeypatch, {"type": "python", "source": code})
    assert f"$.source: line {line} imports '{module}', which the reward Lambda" in message
    assert "reward_function.extra_packages" in message
    assert "\n" not in message


def test_guarded_relative_and_present_imports_load(monkeypatch: pytest.MonkeyPatch) -> None:
    code = source(
        "import math, re",
        "from collections import Counter",
        "try:",
        "    import numpy",
        "except ImportError:",
        "    numpy = None",
        "def grade(sample, item):",
        "    from rapidfuzz import fuzz",
        "    return fuzz.ratio(sample['output_text'], item['reference_answer']) / 100",
    )
    module = load_reward(monkeypatch, {"type": "python", "source": code})
    outputs = module.handler([rollout("a", "Paris", "Paris")], LambdaContext())
    assert scores(outputs) == [1.0]


def test_synth_looks_at_the_bundle_not_the_development_environment(tmp_path: Path) -> None:
    # numpy and pytest are installed here but are no part of the reward bundle; rapidfuzz is.
    modules = reward_modules()
    assert {"rapidfuzz", "jinja2", "grading"} <= modules
    assert not {"numpy", "pytest"} & modules
    problems = {}
    for name in ("numpy", "pytest", "rapidfuzz"):
        path = tmp_path / f"{name}.json"
        code = source("def grade(sample, item):", f"    import {name}", "    return 1")
        path.write_text(json.dumps({"type": "python", "source": code}), encoding="utf-8")
        problems[name] = grader_problem(path)
    assert problems["numpy"] == (
        "$.source: line 2 imports 'numpy', which the reward Lambda does not have (list its "
        "pinned distribution in the environment's reward_function.extra_packages)"
    )
    assert problems["pytest"] is not None and "imports 'pytest'" in problems["pytest"]
    assert problems["rapidfuzz"] is None
