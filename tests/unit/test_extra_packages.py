"""An environment's ``reward_function.extra_packages``: pinned distributions a python grader
imports beyond the reward lock, installed for Lambda (arm64, CPython 3.13, wheels only) and
bundled into that environment's reward asset; a pin without a Lambda wheel fails synth.

The first run installs into ``.build/extra`` from the package index (one small pure-Python
distribution, sqlparse, which OpenAI's python grader image carries); later runs reuse it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from stacks.config import ConfigError, parse_environment
from stacks.extra_packages import top_level_modules
from stacks.grader_check import grader_problem
from stacks.reward import source_digest
from tests.conftest import cdk_context
from tests.lambda_loader import ROOT, LambdaContext
from tests.reward_support import load_reward, rollout, scores

SQLPARSE = "sqlparse==0.5.3"
# numpy 1.26 predates CPython 3.13: it has no cp313 wheel for any platform.
NO_LAMBDA_WHEEL = "numpy==1.26.4"
# Not among tests/fixtures/graders, which load on this interpreter (it has no sqlparse).
GRADER = "tests/fixtures/extra_packages/python_sqlparse.json"


def _environment(extra: Any = None, grader: str = GRADER) -> dict[str, Any]:
    raw: dict[str, Any] = cdk_context()["environments"]["dev"]
    raw["grader"] = grader
    if extra is not None:
        raw["reward_function"] = {**raw.get("reward_function", {}), "extra_packages": extra}
    return raw


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_environment("dev", raw, ROOT)
    return caught.value.lines


@pytest.mark.parametrize(
    ("extra", "bad"),
    [
        (["sqlparse>=0.5"], "sqlparse>=0.5"),
        (["sqlparse"], "sqlparse"),
        ([SQLPARSE, "x==1 "], "x==1 "),
    ],
)
def test_only_exact_pins_are_accepted(extra: list[str], bad: str) -> None:
    (line,) = _problems(_environment(extra, grader="tests/fixtures/graders/gsm8k.json"))
    assert line.startswith("environment 'dev': reward_function.extra_packages = ")
    assert f"{bad}: must" in line and "must be a pinned requirement name==version" in line


def test_a_distribution_named_twice_is_refused() -> None:
    raw = _environment(["SQLParse==0.5.3", SQLPARSE], grader="tests/fixtures/graders/gsm8k.json")
    (line,) = _problems(raw)
    assert line.endswith("names a distribution twice")


def test_an_import_not_listed_fails_synth_naming_the_key() -> None:
    (line,) = _problems(_environment())
    assert line.startswith(f"environment 'dev': grader {GRADER}: $.source: line 1 imports")
    assert "'sqlparse'" in line and "reward_function.extra_packages" in line


def test_a_pin_without_a_lambda_wheel_fails_synth_in_one_line() -> None:
    assert _problems(_environment([NO_LAMBDA_WHEEL])) == [
        "environment 'dev': reward_function.extra_packages: numpy==1.26.4 has no wheel for "
        "Lambda (CPython 3.13, Linux arm64)"
    ]


def test_listed_packages_are_bundled_and_the_grader_grades_with_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import aws_cdk as cdk

    from app import build_app

    context = cdk_context()
    context["environments"] = {"dev": _environment([SQLPARSE])}
    app = cdk.App(outdir=str(tmp_path / "cdk.out"), context=context)
    (stack,) = build_app(app)
    reward = stack.reward
    asset: Path = reward.asset_dir
    assert (asset / "sqlparse" / "__init__.py").is_file()
    assert (asset / "sqlparse-0.5.3.dist-info").is_dir()
    assert "sqlparse" in top_level_modules(asset)
    assert (asset / "handler.py").is_file() and (
        asset / "graders" / "python_sqlparse.json"
    ).is_file()
    # The pins decide a score: the job identity changes with them.
    sources = [ROOT / "lambda" / "reward", ROOT / "lambda" / "common", ROOT / GRADER]
    assert reward.digest == source_digest(sources, extra=(SQLPARSE,))
    assert reward.digest != source_digest(sources)

    # sqlparse is pure Python: the asset's copy runs here (after this environment's own
    # packages, so the bundle's arm64 binaries are never picked up on this machine).
    monkeypatch.setattr(sys, "path", [*sys.path, str(asset)])
    try:
        module = load_reward(monkeypatch, asset / "graders" / "python_sqlparse.json")
        batch = [
            rollout("same", "select id from t  -- ids", "SELECT id FROM t"),
            rollout("other", "select name from t", "SELECT id FROM t"),
        ]
        assert scores(module.handler(batch, LambdaContext())) == [1.0, 0.0]
        assert str(sys.modules["sqlparse"].__file__).startswith(str(asset))
    finally:  # other tests check that this environment has no sqlparse
        for name in [name for name in sys.modules if name.partition(".")[0] == "sqlparse"]:
            del sys.modules[name]


def test_a_pin_against_the_reward_lock_fails_synth_in_one_line() -> None:
    # The reward lock pins rapidfuzz (another version): an extra package may not change it.
    locked = (ROOT / "lambda" / "reward" / "requirements.txt").read_text(encoding="utf-8")
    assert "\nrapidfuzz==" in locked and "\nrapidfuzz==3.0.0 " not in locked
    assert _problems(_environment(["rapidfuzz==3.0.0"])) == [
        "environment 'dev': reward_function.extra_packages: rapidfuzz==3.0.0 needs a version "
        "other than the one the reward lock pins"
    ]


@pytest.mark.parametrize(
    ("grade", "problem"),
    [
        ("def score(sample, item):", "the source defines no function grade(sample, item)"),
        ("def grade(sample):", "grade must accept two arguments: (sample, item)"),
        ("def grade(sample, item, extra):", "grade must accept two arguments: (sample, item)"),
        ("def grade(sample, item, *, strict):", "grade must accept two arguments: (sample, item)"),
        ("def grade(*args):", None),
        ("def grade(sample, item, scale=1):", None),
    ],
)
def test_a_source_importing_an_extra_package_is_checked_without_running(
    tmp_path: Path, grade: str, problem: str | None
) -> None:
    # At synth sqlparse exists only in the bundle (built for Linux arm64): the module body is
    # not run here, so what makes a grade function is checked from the source.
    code = f"import sqlparse\n{grade}\n    return 1.0\n"
    path = tmp_path / "grader.json"
    path.write_text(json.dumps({"type": "python", "source": code}), encoding="utf-8")
    found = grader_problem(path, frozenset({"sqlparse"}))
    assert found == (None if problem is None else f"$.source: {problem}")
