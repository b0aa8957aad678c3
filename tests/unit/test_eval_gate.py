"""The promotion gate cannot be passed by failing: the pairing rule (a tuned failure scores 0,
a base failure excludes the prompt), the paired interval, and every rule of the gate at its
boundary. These are the tests ``make mutation`` runs against ``rft_eval/gate.py`` and
``rft_eval/stats.py``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tests.eval_support import REGION, ensure_paths, local_grader, students_server, validation_rows
from tests.openai_server.students import user_text

ensure_paths()

from rft_eval import gate  # noqa: E402
from rft_eval.evaluate import evaluate  # noqa: E402
from rft_eval.outputs import build_summary  # noqa: E402
from rft_eval.records import Record  # noqa: E402
from rft_eval.retry import Backoff  # noqa: E402
from rft_eval.sampling import OpenAISampler  # noqa: E402
from rft_eval.settings import PromoteWhen, Settings  # noqa: E402
from rft_eval.stats import bootstrap_ci, failed, pair, score, summarize  # noqa: E402

FAST = Backoff(base=0.001, cap=0.02)
SOURCES = {"reward_function_arn": "arn:aws:lambda:us-west-2:1:function:r:7", "validation": "v"}


def rec(
    pid: str,
    model: str,
    reward: float | None,
    sample: int = 0,
    metrics: dict[str, float] | None = None,
) -> Record:
    """A graded record, or a failed call when ``reward`` is None."""
    error = None if reward is not None else "BadRequestError: context length"
    return Record(pid, model, f"{model}-id", sample, "answer", reward, metrics or {}, error)


def both(pid: str, base: float | None, tuned: float | None) -> list[Record]:
    return [rec(pid, "base", base), rec(pid, "tuned", tuned)]


def summary_of(records: list[Record], rule: PromoteWhen, **extra: Any) -> dict[str, Any]:
    settings = Settings(bootstrap_resamples=500, promote_when=rule)
    return build_summary(
        records,
        settings,
        job_id="job",
        environment="dev",
        backend="openai",
        sources=SOURCES,
        **extra,
    )


# -- the pairing rule -----------------------------------------------------------------------


def test_a_tuned_failure_scores_0_and_a_base_failure_excludes_the_prompt() -> None:
    records = [
        *both("p1", 0.0, 1.0),
        *both("p2", 1.0, None),  # the tuned model failed: a loss, not an exclusion
        *both("p3", None, 1.0),  # the base failed: excluded, the tuned model gains nothing
        *both("p4", None, None),  # both failed: the base failed, so excluded
        rec("p5", "base", 0.5),  # no tuned record (a lost part): excluded
    ]
    paired = pair(records)
    assert paired.prompt_ids == ["p1", "p2"]
    assert paired.base == [0.0, 1.0] and paired.tuned == [1.0, 0.0]
    assert paired.excluded == ["p3", "p4", "p5"]
    assert paired.tuned_failed == ["p2"]
    figures = summarize(records, pass_threshold=0.5, resamples=50, seed=0)
    assert figures["n_prompts"] == 2
    assert figures["tuned"]["mean_reward"] == 0.5  # (1 + 0) / 2: the failure counts
    assert figures["tuned"]["pass_rate"] == 0.5
    assert figures["tuned"]["graded"] == 1 and figures["tuned"]["scored_as_failed"] == 1
    assert figures["base"]["graded"] == 2 and figures["base"]["scored_as_failed"] == 0
    assert figures["tuned"]["failed_calls"] == 2 and figures["base"]["failed_calls"] == 2
    assert figures["failed_calls"] == 4
    assert figures["excluded_prompts"] == 3 and figures["excluded_share"] == 0.6
    assert figures["tuned_failed_prompts"] == 1
    assert (figures["wins"], figures["ties"], figures["losses"]) == (1, 0, 1)


def test_a_model_missing_from_a_prompt_excludes_it() -> None:
    assert pair([rec("p1", "tuned", 1.0)]).excluded == ["p1"]
    assert pair([rec("p1", "base", 1.0)]).excluded == ["p1"]


@pytest.mark.parametrize("flag", ["grader_error", "judge_error"])
def test_grader_and_judge_errors_are_failures_like_failed_calls(flag: str) -> None:
    flagged = {flag: 1.0, "accuracy": 1.0}
    assert failed(rec("p", "tuned", 1.0, metrics=flagged))
    assert score(rec("p", "tuned", 1.0, metrics=flagged)) == 0.0
    assert not failed(rec("p", "tuned", 1.0, metrics={flag: 0.0}))
    assert score(rec("p", "tuned", 0.75, metrics={"other_error": 1.0})) == 0.75
    records = [
        # The reward function scores a flagged sample 0; the base's flag excludes the prompt
        # (as if its call had failed), the tuned model's counts as its loss.
        rec("p1", "base", 0.0, metrics={flag: 1.0}),
        rec("p1", "tuned", 1.0),
        rec("p2", "base", 1.0),
        rec("p2", "tuned", 1.0, metrics={flag: 1.0}),
    ]
    paired = pair(records)
    assert paired.prompt_ids == ["p2"] and paired.excluded == ["p1"]
    assert paired.tuned == [0.0] and paired.tuned_failed == ["p2"]
    figures = summarize(records, pass_threshold=0.5, resamples=50, seed=0)
    assert figures["tuned"]["grader_errors"] == 1 and figures["base"]["grader_errors"] == 1
    assert figures["failed_calls"] == 0


def test_with_several_samples_one_failed_base_sample_excludes_the_prompt() -> None:
    """A prompt is excluded when ANY base sample failed, not only when all did; a tuned
    failure among several samples is a 0 in that prompt's mean."""
    records = [
        rec("p1", "base", 1.0, 0),
        rec("p1", "base", None, 1),  # one of three failed
        rec("p1", "base", 1.0, 2),
        rec("p1", "tuned", 0.0, 0),
        rec("p1", "tuned", 0.0, 1),
        rec("p1", "tuned", 0.0, 2),
        rec("p2", "base", 0.0, 0),
        rec("p2", "base", 1.0, 1),
        rec("p2", "base", 0.5, 2),
        rec("p2", "tuned", 1.0, 0),
        rec("p2", "tuned", None, 1),  # one of three failed: scored 0
        rec("p2", "tuned", 1.0, 2),
    ]
    paired = pair(records)
    assert paired.excluded == ["p1"] and paired.prompt_ids == ["p2"]
    assert paired.base == [0.5]
    assert paired.tuned == [pytest.approx(2 / 3)]
    figures = summarize(records, pass_threshold=0.5, resamples=50, seed=0)
    assert figures["tuned"]["mean_reward"] == pytest.approx(0.666667)
    assert figures["tuned"]["graded"] == 2 and figures["tuned"]["scored_as_failed"] == 1
    assert figures["base"]["graded"] == 3 and figures["base"]["pass_rate"] == pytest.approx(
        0.666667
    )


# -- the paired interval ----------------------------------------------------------------------


def test_the_interval_is_of_paired_differences_not_of_independent_samples() -> None:
    """Prompts of every difficulty, the tuned model 0.1 better on each: the paired interval is
    exactly [0.1, 0.1]. Resampling the two models' prompts independently would give an
    interval as wide as the spread of difficulties (about +/-0.2 here)."""
    base = [i / 40 for i in range(40)]
    records = [r for i, b in enumerate(base) for r in both(f"p{i:02}", b * 0.9, b * 0.9 + 0.1)]
    figures = summarize(records, pass_threshold=0.5, resamples=1000, seed=3)
    assert figures["difference"] == {"mean": 0.1, "ci95": [0.1, 0.1]}
    decision = gate.decide(
        {**figures, "promoted_model": None}, PromoteWhen(min_prompts=30, min_improvement=0.05)
    )
    assert decision.promoted and decision.rule == "ci_above_zero"


def test_bootstrap_resamples_whole_values_with_the_seed() -> None:
    assert bootstrap_ci([0.5] * 10, 100, seed=1) == (0.5, 0.5)
    spread = bootstrap_ci([0.0, 1.0] * 10, 2000, seed=1)
    assert spread[0] < 0.5 < spread[1]
    assert spread == bootstrap_ci([0.0, 1.0] * 10, 2000, seed=1)
    with pytest.raises(ValueError, match="no values"):
        bootstrap_ci([], 10, seed=1)


# -- the gate's rules, each at its boundary --------------------------------------------------


def figures(
    *,
    mean: float = 0.2,
    ci: tuple[float, float] = (0.1, 0.3),
    n: int = 100,
    excluded: int = 0,
    tuned_mean: float = 0.7,
    promoted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    total = n + excluded
    return {
        "difference": {"mean": mean, "ci95": list(ci)},
        "n_prompts": n,
        "excluded_prompts": excluded,
        "excluded_share": excluded / total if total else None,
        "tuned": {"mean_reward": tuned_mean},
        "promoted_model": promoted,
    }


@pytest.mark.parametrize(
    ("summary", "rule", "promoted", "decided", "why"),
    [
        (figures(), PromoteWhen(), True, "ci_above_zero", "at least +0.0000 over the base"),
        (figures(ci=(-0.1, 0.5)), PromoteWhen(), False, "ci_above_zero", "not above 0"),
        (figures(ci=(0.0, 0.5)), PromoteWhen(), False, "ci_above_zero", "not above 0"),
        (
            figures(ci=(-0.1, 0.5)),
            PromoteWhen(require_ci_above_zero=False),
            True,
            "min_improvement",
            "at least +0.0000",
        ),
        (
            figures(mean=0.05, ci=(0.01, 0.09)),
            PromoteWhen(min_improvement=0.1),
            False,
            "min_improvement",
            "below the required improvement +0.1000",
        ),
        (
            figures(mean=0.1, ci=(0.01, 0.2)),
            PromoteWhen(min_improvement=0.1),
            True,
            "ci_above_zero",
            "at least +0.1000",
        ),
        (figures(n=29), PromoteWhen(), False, "min_prompts", "29 prompts compared, fewer"),
        (figures(n=30), PromoteWhen(), True, "ci_above_zero", ""),
        (figures(n=5), PromoteWhen(min_prompts=5), True, "ci_above_zero", ""),
        (figures(n=95, excluded=5), PromoteWhen(), True, "ci_above_zero", ""),
        (figures(n=94, excluded=6), PromoteWhen(), False, "max_excluded_share", "6 prompts"),
        (
            figures(n=94, excluded=6),
            PromoteWhen(max_excluded_share=0.06),
            True,
            "ci_above_zero",
            "",
        ),
        # Too many excluded decides before too few compared.
        (figures(n=2, excluded=8), PromoteWhen(), False, "max_excluded_share", "80.0%"),
    ],
)
def test_the_gate(
    summary: dict[str, Any], rule: PromoteWhen, promoted: bool, decided: str, why: str
) -> None:
    decision = gate.decide(summary, rule)
    assert (decision.promoted, decision.rule) == (promoted, decided)
    assert why in decision.reason
    assert decision.to_dict() == {"promoted": promoted, "rule": decided, "reason": decision.reason}


def test_without_figures_nothing_is_promoted() -> None:
    summary = {**figures(), "difference": {"mean": None, "ci95": None}}
    decision = gate.decide(summary, PromoteWhen())
    assert (decision.promoted, decision.rule) == (False, "compared_prompts")
    assert decision.reason == "no prompt was answered and graded for both models"


def current(mean: float, comparable: bool = True) -> dict[str, Any]:
    return {
        "model_id": "ft:old",
        "job_id": "old",
        "mean_reward": mean,
        "comparable": comparable,
        "why": "reason",
    }


@pytest.mark.parametrize(
    ("promoted", "rule", "result", "decided", "why"),
    [
        (current(0.8), PromoteWhen(), False, "beats_promoted", "0.7000 against 0.8000"),
        (current(0.7), PromoteWhen(), True, "beats_promoted", "0.7000 against 0.7000"),
        (current(0.65), PromoteWhen(min_improvement=0.05), True, "beats_promoted", ""),
        (current(0.66), PromoteWhen(min_improvement=0.05), False, "beats_promoted", "below"),
        (current(0.8), PromoteWhen(compare_with_promoted=False), True, "ci_above_zero", ""),
        (current(0.9, comparable=False), PromoteWhen(), True, "ci_above_zero", "not compared"),
    ],
)
def test_the_gate_compares_with_the_promoted_model_when_it_can(
    promoted: dict[str, Any], rule: PromoteWhen, result: bool, decided: str, why: str
) -> None:
    decision = gate.decide(figures(tuned_mean=0.7, promoted=promoted), rule)
    assert (decision.promoted, decision.rule) == (result, decided)
    assert why in decision.reason


def test_a_promoted_record_is_comparable_only_on_the_same_prompts_grader_and_sampling() -> None:
    records = [r for i in range(40) for r in both(f"p{i:02}", 0.0, 1.0)]
    first = summary_of(records, PromoteWhen())
    assert first["decision"]["rule"] == "ci_above_zero" and first["promoted_model"] is None
    record = json.loads(gate.parameter_value(first, "s3://b/s.json", "openai"))
    assert record["evaluation"] == {
        "digest": first["comparison_digest"],
        "tuned_mean_reward": 1.0,
        "base_mean_reward": 0.0,
        "n_prompts": 40,
    }
    # The same evaluation again: comparable, and a tie with the promoted mean passes.
    again = summary_of(records, PromoteWhen(), promoted=record)
    assert again["promoted_model"]["comparable"] is True
    assert again["decision"] == {**again["decision"], "promoted": True, "rule": "beats_promoted"}
    # A worse tuned model (still better than the base) is refused against the promoted one.
    worse = [r for i in range(40) for r in both(f"p{i:02}", 0.0, 0.0 if i < 4 else 1.0)]
    refused = summary_of(worse, PromoteWhen(), promoted=record)
    assert refused["decision"]["rule"] == "beats_promoted" and not refused["promoted"]
    assert "0.9000 against 1.0000" in refused["promotion_reason"]
    # Other prompts, another grader version or other sampling: not comparable, said so.
    fewer = summary_of(records[:-2], PromoteWhen(), promoted=record)
    other_grader = build_summary(
        records,
        Settings(bootstrap_resamples=500),
        job_id="job",
        environment="dev",
        backend="openai",
        sources={**SOURCES, "reward_function_arn": "arn:aws:lambda:us-west-2:1:function:r:8"},
        promoted=record,
    )
    hotter = build_summary(
        records,
        Settings(bootstrap_resamples=500, temperature=1.0),
        job_id="job",
        environment="dev",
        backend="openai",
        sources=SOURCES,
        promoted=record,
    )
    for summary in (fewer, other_grader, hotter):
        assert summary["promoted_model"]["comparable"] is False
        assert summary["decision"]["rule"] == "ci_above_zero" and summary["promoted"]
        assert "not compared" in summary["promotion_reason"]
    # The run's own records location is not part of what makes two runs comparable.
    moved = {**SOURCES, "records": "s3://b/elsewhere/records.jsonl"}
    assert gate.comparison_digest(["a"], moved, {}) == gate.comparison_digest(["a"], SOURCES, {})
    # A record written before the figures were kept cannot be compared.
    old = {k: v for k, v in record.items() if k != "evaluation"}
    assert summary_of(records, PromoteWhen(), promoted=old)["promoted_model"] == {
        "model_id": "tuned-id",
        "job_id": "job",
        "mean_reward": None,
        "comparable": False,
        "why": "its record has no evaluation figures (promoted before they were kept)",
    }


def test_the_notification_names_the_rule_that_decided() -> None:
    records = [r for i in range(5) for r in both(f"p{i}", 0.0, 1.0)]
    summary = summary_of(records, PromoteWhen())
    text = gate.notification(summary, "dev", None)
    assert "NOT promoted" in text and "Gate (rule min_prompts): 5 prompts compared" in text
    assert "0 prompts (0.0%) excluded" in text and "0 tuned samples scored 0" in text


# -- done when: failing does not pass the gate ------------------------------------------------


def run_students(
    monkeypatch: pytest.MonkeyPatch,
    rows: list[dict[str, Any]],
    shares: dict[str, float],
    **options: Any,
) -> dict[str, Any]:
    with students_server(shares, rows, **options) as (server, _students):
        for name, value in server.sdk_environment().items():
            monkeypatch.setenv(name, value)
        sampler = OpenAISampler(REGION, route="/v1", backoff=FAST)
        records = evaluate(
            rows,
            {"base": "base", "tuned": "tuned"},
            Settings(),
            sampler,
            local_grader(),
            concurrency=4,
        )
    return summary_of(records, PromoteWhen())


def test_a_tuned_model_failing_on_40_percent_of_prompts_is_not_promoted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Right wherever it answers, a permanent 400 on 40% of the prompts, against a base right on
    half of them: on main this was promoted (its failures were excluded from both models)."""
    rows = validation_rows()
    rejected = [user_text(row["messages"]) for row in rows[:40]]
    summary = run_students(
        monkeypatch, rows, {"base": 0.5, "tuned": 1.0}, rejecting={"tuned": rejected}
    )
    assert summary["n_prompts"] == 100 and summary["excluded_prompts"] == 0
    assert summary["tuned"]["failed_calls"] == 40 and summary["tuned_failed_prompts"] == 40
    assert summary["tuned"]["mean_reward"] == 0.6 and summary["base"]["mean_reward"] == 0.5
    assert summary["promoted"] is False
    assert summary["decision"]["rule"] == "ci_above_zero"


def test_a_perfect_model_on_5_prompts_is_not_promoted(monkeypatch: pytest.MonkeyPatch) -> None:
    summary = run_students(monkeypatch, validation_rows(5), {"base": 0.0, "tuned": 1.0})
    assert summary["difference"] == {"mean": 1.0, "ci95": [1.0, 1.0]}
    assert summary["promoted"] is False
    assert summary["decision"]["rule"] == "min_prompts"


# -- exact outputs: what summary.json, the parameter and the topic carry ----------------------


def test_a_record_fails_on_an_error_or_a_missing_reward_alone() -> None:
    base = Record("p", "tuned", "m", 0, "answer", 1.0, {}, None)
    assert not failed(base)
    assert failed(Record("p", "tuned", "m", 0, "answer", None, {}, None))
    assert failed(Record("p", "tuned", "m", 0, "answer", 1.0, {}, "grading: no answer"))


def test_the_summary_figures_exactly() -> None:
    """Every key of the figures, ties at the tolerance's edge, and a model called under two
    ids (a re-run with another deployment): what summary.json holds."""
    records = [
        *both("a", 0.0, 1e-9),  # a difference of exactly the tolerance: a tie
        *both("b", 1e-9, 0.0),
        *both("c", 0.25, 1.0),
        *both("d", 1.0, 0.0),
        *both("e", None, 1.0),
        Record("f", "base", "base-other", 0, "x", 0.5),
        Record("f", "tuned", "tuned-id", 0, "x", 0.5),
    ]
    figures = summarize(records, pass_threshold=0.5, resamples=200, seed=4, expected=["g", "a"])
    again = summarize(records, pass_threshold=0.5, resamples=200, seed=4, expected=["g", "a"])
    assert figures == again
    low, high = figures["difference"]["ci95"]
    assert figures == {
        "n_prompts": 5,
        "base": {
            "model_id": ["base-id", "base-other"],
            "mean_reward": 0.35,
            "pass_rate": 0.4,
            "graded": 5,
            "scored_as_failed": 0,
            "failed_calls": 1,
            "grader_errors": 0,
        },
        "tuned": {
            "model_id": "tuned-id",
            "mean_reward": 0.3,
            "pass_rate": 0.4,
            "graded": 5,
            "scored_as_failed": 0,
            "failed_calls": 0,
            "grader_errors": 0,
        },
        "difference": {"mean": -0.05, "ci95": [low, high]},
        "wins": 1,
        "ties": 3,
        "losses": 1,
        "failed_calls": 1,
        "excluded_prompts": 2,
        "excluded_share": round(2 / 7, 6),
        "tuned_failed_prompts": 0,
        "excluded_prompt_ids": ["e", "g"],
        "missing_prompts": 1,
        "pass_threshold": 0.5,
        "bootstrap": {"resamples": 200, "seed": 4, "level": 0.95},
    }
    assert low < -0.05 < high
    # Seeded: the same seed gives the same interval, another seed another one.
    spread = [r for i in range(30) for r in both(f"s{i:02}", (i % 7) / 6, (i % 5) / 4)]
    intervals = [
        summarize(spread, pass_threshold=0.5, resamples=300, seed=seed)["difference"]["ci95"]
        for seed in (4, 4, 5)
    ]
    assert intervals[0] == intervals[1] != intervals[2]
    empty = summarize([], pass_threshold=0.5, resamples=10, seed=0)
    assert empty["excluded_share"] is None and empty["difference"] == {"mean": None, "ci95": None}


def test_the_bootstrap_is_the_percentile_interval_of_seeded_resampled_means() -> None:
    """The documented method, computed independently: ``random.Random(seed).choices`` of the
    values, the means' 2.5th and 97.5th percentiles as numpy computes them."""
    import random

    import numpy

    values = [((i * 37) % 11) / 10 - 0.4 for i in range(25)]
    rng = random.Random(9)
    means = [sum(rng.choices(values, k=len(values))) / len(values) for _ in range(500)]
    expected = numpy.percentile(means, [2.5, 97.5])
    assert bootstrap_ci(values, 500, seed=9) == pytest.approx(tuple(expected), abs=1e-12)
    wider = numpy.percentile(means, [5, 95])
    assert bootstrap_ci(values, 500, seed=9, level=0.9) == pytest.approx(tuple(wider), abs=1e-12)
    with pytest.raises(ValueError, match=r"^no values to resample$"):
        bootstrap_ci([], 10, seed=1)


def test_the_percentile_of_nothing_is_an_error() -> None:
    from rft_eval.stats import percentile

    with pytest.raises(ValueError, match=r"^no values$"):
        percentile([], 50)


def test_the_reasons_word_for_word() -> None:
    base = PromoteWhen()
    assert gate.decide(figures(), base).reason == (
        "mean difference +0.2000, 95% CI [+0.1000, +0.3000]: at least +0.0000 over the base "
        "with the interval above 0"
    )
    assert gate.decide(figures(n=94, excluded=6), base).reason == (
        "6 prompts excluded (6.0%), more than the 5.0% allowed: the models were not compared "
        "on the same prompts"
    )
    assert gate.decide(figures(n=12), base).reason == (
        "12 prompts compared, fewer than the 30 required"
    )
    assert gate.decide(figures(promoted=current(0.5, comparable=False)), base).reason == (
        "mean difference +0.2000, 95% CI [+0.1000, +0.3000]: at least +0.0000 over the base "
        "with the interval above 0; the promoted model ft:old not compared: reason"
    )
    assert gate.decide(figures(promoted=current(0.8)), base).reason == (
        "mean difference +0.2000, 95% CI [+0.1000, +0.3000], but mean reward 0.7000 against "
        "0.8000 of the promoted model ft:old: below 0.8000"
    )
    half = {**figures(), "difference": {"mean": 0.2, "ci95": None}}
    assert gate.decide(half, base).rule == "compared_prompts"


def test_the_promoted_models_comparability_word_for_word() -> None:
    summary = {"comparison_digest": "d1"}
    record = {"model_id": "m", "job_id": "j", "evaluation": {"digest": "d1"}}
    assert gate.promoted_model(summary, None) is None
    for evaluation in ({"digest": "d1"}, {"digest": "d1", "tuned_mean_reward": "0.9"}, "x"):
        found = gate.promoted_model(summary, {**record, "evaluation": evaluation})
        assert found == {
            "model_id": "m",
            "job_id": "j",
            "mean_reward": None,
            "comparable": False,
            "why": "its record has no evaluation figures (promoted before they were kept)",
        }
    ok = {"digest": "d1", "tuned_mean_reward": 0.9}
    assert gate.promoted_model(summary, {**record, "evaluation": ok}) == {
        "model_id": "m",
        "job_id": "j",
        "mean_reward": 0.9,
        "comparable": True,
        "why": "same prompts, grader version and sampling settings",
    }
    other = gate.promoted_model({"comparison_digest": "d2"}, {**record, "evaluation": ok})
    assert other is not None and other["comparable"] is False
    assert other["why"] == (
        "it was evaluated on other prompts, with another grader version or other sampling settings"
    )


def test_the_comparison_digest_is_stable_across_versions() -> None:
    """The digest is stored in the promoted model's parameter and compared by later versions of
    this code: its exact value for a fixed input is part of the contract."""
    settings = {"samples_per_prompt": 2, "temperature": 0.5, "max_tokens": 64, "seed": 3}
    digest = gate.comparison_digest(["b", "a"], {"validation": "v", "records": "r"}, settings)
    canonical = (
        '{"prompts":["a","b"],"sampling":{"max_tokens":64,"samples_per_prompt":2,'
        '"temperature":0.5},"sources":{"validation":"v"}}'
    )
    assert digest == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert digest == "de2b4eb5a29eb4948732af5c3d905230319c986cfb62c7c0525efbd5756d5baa"
    assert gate.comparison_digest(["a", "b"], {"validation": "v"}, settings) == digest
    for change in ({"samples_per_prompt": 3}, {"max_tokens": 65}, {"temperature": 0.6}):
        assert gate.comparison_digest(["a", "b"], {"validation": "v"}, {**settings, **change}) != (
            digest
        )
    assert gate.comparison_digest(["a", "b"], {"validation": "v"}, {**settings, "seed": 4}) == (
        digest
    )


def test_the_parameter_value_word_for_word() -> None:
    from datetime import UTC, datetime

    records = [r for i in range(40) for r in both(f"p{i:02}", 0.0, 1.0)]
    summary = summary_of(records, PromoteWhen())
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    text = gate.parameter_value(summary, "s3://b/s.json", "bedrock", moment)
    assert text == json.dumps(
        {
            "backend": "bedrock",
            "ci95": [1.0, 1.0],
            "difference_mean": 1.0,
            "evaluation": {
                "base_mean_reward": 0.0,
                "digest": summary["comparison_digest"],
                "n_prompts": 40,
                "tuned_mean_reward": 1.0,
            },
            "job_id": "job",
            "model_id": "tuned-id",
            "promoted_at": "2026-01-02T03:04:05+00:00",
            "summary_uri": "s3://b/s.json",
        }
    )
    now = json.loads(gate.parameter_value(summary, "s3://b/s.json", "openai"))["promoted_at"]
    assert now.endswith("+00:00")


def test_the_parameter_is_written_and_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        ssm = boto3.client("ssm", region_name=REGION)
        name = "/bedrock-rft/dev/model"
        assert gate.read_promoted(ssm, name) is None
        ssm.put_parameter(Name=name, Value="not json", Type="String")
        assert gate.read_promoted(ssm, name) is None
        ssm.put_parameter(Name=name, Value="[1, 2]", Type="String", Overwrite=True)
        assert gate.read_promoted(ssm, name) is None
        gate.promote(ssm, "/bedrock-rft/new/model", "{}")  # the first promotion creates it
        assert ssm.get_parameter(Name="/bedrock-rft/new/model")["Parameter"]["Type"] == "String"
        gate.promote(ssm, name, '{"model_id": "m"}')
        assert gate.read_promoted(ssm, name) == {"model_id": "m"}
        stored = ssm.get_parameter(Name=name)["Parameter"]
        assert stored["Type"] == "String" and stored["Version"] == 3
        described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])[
            "Parameters"
        ][0]
        assert described["Description"] == (
            "The promoted model (written by the evaluation's promotion gate)"
        )


def test_the_notification_word_for_word() -> None:
    records = [*both("p1", 0.0, 1.0), *both("p2", 1.0, None), *both("p3", None, 1.0)]
    summary = summary_of(records, PromoteWhen(min_prompts=1, max_excluded_share=0.5))
    assert gate.notification(summary, "dev", "s3://b/s.json") == (
        "Evaluation of job job in dev: tuned model NOT promoted. Over 2 prompts, mean reward "
        "0.500 (base) vs 0.500 (tuned), pass rate 50.0% vs 50.0%; wins/ties/losses 1/0/1; "
        "2 failed calls, 1 tuned samples scored 0 for a failure, 1 prompts (33.3%) excluded "
        "from both models. Gate (rule ci_above_zero): mean difference +0.0000, 95% CI "
        f"[{summary['difference']['ci95'][0]:+.4f}, {summary['difference']['ci95'][1]:+.4f}]: "
        "the interval's lower bound is not above 0. Report: s3://b/s.json"
    )
    bare = {
        "base": {"mean_reward": None, "pass_rate": None},
        "tuned": {"mean_reward": None, "pass_rate": None},
        "promoted": True,
        "job_id": None,
        "n_prompts": 0,
        "wins": 0,
        "ties": 0,
        "losses": 0,
        "failed_calls": 0,
        "excluded_prompts": 0,
        "excluded_share": None,
        "promotion_reason": "why",
    }
    assert gate.notification(bare, "prod", None) == (
        "Evaluation of job (unnamed) in prod: tuned model promoted. Over 0 prompts, mean reward "
        "n/a (base) vs n/a (tuned), pass rate n/a vs n/a; wins/ties/losses 0/0/0; 0 failed "
        "calls, 0 tuned samples scored 0 for a failure, 0 prompts (n/a) excluded from both "
        "models. Gate (rule n/a): why."
    )
