"""``make mutation``'s own logic (the mutation run itself is minutes of CPU and not part of the
suite): which package each module is imported as, which tests run, how mutmut's keys map to
modules, and the score line."""

from __future__ import annotations

import pytest

from scripts import mutation


def test_every_default_module_exists_and_has_tests() -> None:
    for module in mutation.MODULES:
        folder, package = mutation.package_of(module)
        assert (mutation.ROOT / folder / package).is_dir()
    tests = mutation.tests_for(mutation.MODULES, [])
    assert "tests/unit/test_eval_gate.py" in tests and len(tests) == len(set(tests))


@pytest.mark.parametrize(
    ("module", "problem"),
    [
        ("stacks/config.py", "not a module of a Lambda package"),
        ("lambda/evaluation/handler.py", "not a module of a Lambda package"),
        ("lambda/evaluation/rft_eval/nothere.py", "no such file"),
    ],
)
def test_a_module_outside_a_lambda_package_is_one_line(module: str, problem: str) -> None:
    with pytest.raises(mutation.MutationError, match=problem):
        mutation.package_of(module)


def test_a_module_without_known_tests_needs_them_named() -> None:
    report = "lambda/evaluation/rft_eval/report.py"
    with pytest.raises(mutation.MutationError, match="name them with --tests"):
        mutation.tests_for([report], [])
    assert mutation.tests_for([report], ["tests/unit/test_eval_cli.py"]) == [
        "tests/unit/test_eval_cli.py"
    ]
    with pytest.raises(mutation.MutationError, match="no such test file"):
        mutation.tests_for([report], ["tests/unit/test_nothing.py"])


def test_keys_map_to_their_modules_and_scores_count_timeouts_as_killed() -> None:
    assert mutation.module_of("rft_eval.gate.x_decide__mutmut_3") == "rft_eval.gate"
    assert mutation.module_of("rft_eval.gate.xǁDecisionǁto_dict__mutmut_1") == "rft_eval.gate"
    found = {
        "rft_eval.stats": {
            "rft_eval.stats.x_pair__mutmut_1": "killed",
            "rft_eval.stats.x_pair__mutmut_2": "timeout",
            "rft_eval.stats.x_pair__mutmut_3": "survived",
            "rft_eval.stats.x_pair__mutmut_4": "no tests",
            "rft_eval.stats.x_pair__mutmut_5": "skipped",
        }
    }
    assert mutation.report(found, show=False) == [
        "rft_eval.stats: 50.0% killed (2 of 4; 1 no tests, 1 skipped, 1 survived)",
        "  survived: rft_eval.stats.x_pair__mutmut_3 (survived)",
        "  survived: rft_eval.stats.x_pair__mutmut_4 (no tests)",
    ]
