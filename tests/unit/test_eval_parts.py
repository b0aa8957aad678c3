"""The evaluation's small parts: ids, the context's settings, retries, statistics, the gate."""

from __future__ import annotations

import hashlib
import json
import random
import statistics
import time
from typing import Any

import pytest

from tests.eval_support import REWARD_VERSION_ARN, context, ensure_paths

ensure_paths()

from rft_eval import gate  # noqa: E402
from rft_eval.ids import prompt_id, safe_job_id  # noqa: E402
from rft_eval.records import Record, from_jsonl, merge, part_name, to_jsonl  # noqa: E402
from rft_eval.retry import (  # noqa: E402
    Backoff,
    OutOfTimeError,
    Transient,
    retry_after,
    with_retries,
)
from rft_eval.settings import PromoteWhen, SettingsError, parse_context  # noqa: E402
from rft_eval.stats import bootstrap_ci, pair, percentile, summarize  # noqa: E402


@pytest.mark.parametrize(
    ("job_id", "safe"),
    [
        ("ftjob-abc123", "ftjob-abc123"),
        ("ftjob.abc:1/2", "ftjob-abc-1-2"),
        ("arn:aws:bedrock:us-east-1:123456789012:model-customization-job/nova/x1y2z3", "x1y2z3"),
        ("a" * 80, "a" * 64),
    ],
)
def test_safe_job_id(job_id: str, safe: str) -> None:
    assert safe_job_id(job_id) == safe


def test_a_job_id_with_nothing_safe_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing left"):
        safe_job_id("...")


def test_prompt_id_is_the_id_field_else_a_digest_of_the_canonical_row() -> None:
    assert prompt_id({"id": "q-1", "messages": []}) == "q-1"
    row = {"messages": [{"role": "user", "content": "Ünïcode?"}], "reference_answer": 3, "id": 7}
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"))
    assert prompt_id(row) == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert prompt_id(dict(reversed(list(row.items())))) == prompt_id(row)


def test_the_context_parses_with_defaults() -> None:
    parsed = parse_context(context(settings={}))
    assert parsed.settings.samples_per_prompt == 1
    assert parsed.settings.promote_when == PromoteWhen(0.0, True)
    assert parsed.model_id("tuned") == "tuned"
    assert parsed.key("summary.json") == "evaluations/ftjob-abc123/summary.json"
    assert parsed.validation.uri == "s3://rft-dev-staging/datasets/abc/validation.jsonl"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backend": "sagemaker"}, "backend = 'sagemaker': must be 'openai' or 'bedrock'"),
        ({"reward_function_arn": REWARD_VERSION_ARN.rsplit(":", 1)[0]}, "qualified ARN"),
        ({"reward_function_arn": REWARD_VERSION_ARN[:-1] + "$LATEST"}, "qualified ARN"),
        ({"settings": {"temperature": 3}}, "settings.temperature = 3: must be between 0 and 2"),
        ({"settings": {"samples_per_prompt": 0}}, "samples_per_prompt = 0: must be between"),
        ({"settings": {"limit": "10"}}, "settings.limit = '10': must be an integer"),
        ({"settings": {"top_p": 1}}, "settings.top_p: unknown setting"),
        (
            {"settings": {"promote_when": {"min_improvement": 2}}},
            "settings.promote_when.min_improvement = 2: must be between 0 and 1",
        ),
        (
            {"settings": {"promote_when": {"min_improvement": -0.1}}},
            "settings.promote_when.min_improvement = -0.1: must be between 0 and 1",
        ),
        (
            {"settings": {"promote_when": {"min_prompts": 0}}},
            "settings.promote_when.min_prompts = 0: must be at least 1",
        ),
        (
            {"settings": {"promote_when": {"max_excluded_share": 1.5}}},
            "settings.promote_when.max_excluded_share = 1.5: must be between 0 and 1",
        ),
        (
            {"settings": {"promote_when": {"compare_with_promoted": "yes"}}},
            "settings.promote_when.compare_with_promoted: must be true or false",
        ),
        (
            {"settings": {"promote_when": {"min_improvment": 0.1}}},
            "settings.promote_when.min_improvment: unknown setting",
        ),
        ({"artifacts": {"bucket": "b", "prefix": "evaluations/x"}}, "must end in '/'"),
        ({"mantle_route": "/v2"}, "mantle_route = '/v2'"),
        ({"tuned_model": ""}, "tuned_model = '': must be a non-empty string"),
    ],
)
def test_a_wrong_context_value_is_one_line_naming_it(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_context(context(**change))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_retry_after_reads_milliseconds_seconds_and_dates() -> None:
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_throttles_wait_as_asked_and_have_a_budget_of_their_own() -> None:
    waits: list[float] = []
    backoff = Backoff(attempts=2, throttled_attempts=10, sleep=waits.append, jitter=lambda: 1.0)
    outcomes: list[Exception | str] = [*[RuntimeError("429")] * 6, "done"]

    def call() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert with_retries(call, lambda err: Transient(True, 1.5), backoff) == "done"
    assert waits == [1.5] * 6


def test_transient_failures_back_off_exponentially_then_give_up() -> None:
    waits: list[float] = []
    backoff = Backoff(attempts=4, base=1.0, cap=3.0, sleep=waits.append, jitter=lambda: 1.0)

    def call() -> str:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        with_retries(call, lambda err: Transient(), backoff)
    assert waits == [1.0, 2.0, 3.0]


def test_a_permanent_failure_is_not_retried() -> None:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        raise ValueError("400")

    with pytest.raises(ValueError):
        with_retries(call, lambda err: None, Backoff(sleep=lambda s: None))
    assert calls == [1]


def test_percentile_interpolates_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert percentile(values, 2.5) == pytest.approx(1.075)


def test_the_bootstrap_interval_is_seeded_and_as_wide_as_theory_says() -> None:
    rng = random.Random(3)
    values = [rng.gauss(0.2, 0.5) for _ in range(200)]
    low, high = bootstrap_ci(values, 2000, seed=11)
    assert (low, high) == bootstrap_ci(values, 2000, seed=11)
    assert low < statistics.fmean(values) < high
    # The normal approximation's half-width, 1.96 * s / sqrt(n), within 15%.
    half = 1.96 * statistics.stdev(values) / len(values) ** 0.5
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)


def test_the_bootstrap_interval_covers_the_true_mean_about_95_times_in_100() -> None:
    rng = random.Random(5)
    covered = 0
    for trial in range(60):
        values = [rng.gauss(0.3, 0.4) for _ in range(40)]
        low, high = bootstrap_ci(values, 400, seed=trial)
        covered += low <= 0.3 <= high
    # Binomial(60, ~0.94): fewer than 50 would be a broken interval (p < 0.001).
    assert covered >= 50


def _record(pid: str, model: str, reward: float | None, sample: int = 0) -> Record:
    error = None if reward is not None else "APIConnectionError: down"
    return Record(pid, model, f"{model}-id", sample, "answer", reward, {}, error)


def test_pairing_scores_a_tuned_failure_0_and_excludes_a_base_failure() -> None:
    records = [
        _record("p1", "base", 0.0),
        _record("p1", "tuned", 1.0),
        _record("p2", "base", 1.0),
        _record("p2", "tuned", None),  # failed: a 0 for the tuned model on p2
        _record("p3", "base", 0.5),  # tuned never answered p3 (a lost part): excluded
        _record("p4", "base", None),  # the base failed: excluded
        _record("p4", "tuned", 1.0),
    ]
    paired = pair(records)
    assert paired.prompt_ids == ["p1", "p2"]
    assert paired.excluded == ["p3", "p4"]
    figures = summarize(records, pass_threshold=0.5, resamples=50, seed=0)
    assert figures["base"]["mean_reward"] == 0.5 and figures["base"]["graded"] == 2
    assert figures["tuned"]["mean_reward"] == 0.5 and figures["tuned"]["graded"] == 1
    assert figures["tuned"]["failed_calls"] == 1 and figures["failed_calls"] == 2
    assert figures["excluded_prompts"] == 2


def test_with_a_deadline_no_wait_starts_past_it() -> None:
    waits: list[float] = []
    backoff = Backoff(sleep=waits.append, jitter=lambda: 1.0, deadline=time.monotonic() + 0.5)

    def call() -> str:
        raise RuntimeError("429")

    with pytest.raises(RuntimeError):
        with_retries(call, lambda err: Transient(True, 2.0), backoff)
    assert waits == []


def test_with_a_deadline_no_attempt_starts_that_could_end_past_it() -> None:
    """A grader call may take the reward function's timeout: with less time left than that,
    it is not started; after a failure, a retry is only when wait + attempt fit."""
    now = [100.0]
    waits: list[float] = []
    calls: list[float] = []

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    def call() -> str:
        calls.append(now[0])
        now[0] += 30.0  # each attempt took 30 s, then failed
        raise RuntimeError("timeout")

    late = Backoff(deadline=129.0, attempt_seconds=30.0, clock=clock, sleep=sleep)
    with pytest.raises(OutOfTimeError, match="29 s left, an attempt may take 30 s"):
        with_retries(call, lambda err: Transient(), late)
    assert calls == []
    # 100 s: the first attempt (ends 130), a wait of 1 s and a second (ends 161) fit before
    # 170; a third (wait 2 s, ends 193) does not: the last failure is raised.
    backoff = Backoff(
        deadline=170.0, attempt_seconds=30.0, clock=clock, sleep=sleep, jitter=lambda: 1.0
    )
    with pytest.raises(RuntimeError, match="timeout"):
        with_retries(call, lambda err: Transient(), backoff)
    assert calls == [100.0, 131.0] and waits == [1.0]


def test_without_any_compared_prompt_there_are_no_figures_and_no_promotion() -> None:
    figures = summarize([_record("p1", "base", None)], pass_threshold=0.5, resamples=50, seed=0)
    assert figures["difference"] == {"mean": None, "ci95": None}
    assert figures["base"]["mean_reward"] is None
    decision = gate.decide(figures, PromoteWhen())
    assert not decision.promoted and "no prompt" in decision.reason


def test_records_round_trip_sorted_and_parts_are_named_by_their_prompts() -> None:
    records = [_record("b", "tuned", 1.0), _record("a", "tuned", 0.0), _record("a", "base", 1.0)]
    text = to_jsonl(records)
    assert [(r.prompt_id, r.model) for r in from_jsonl(text)] == [
        ("a", "base"),
        ("a", "tuned"),
        ("b", "tuned"),
    ]
    assert part_name(["a", "b"]) == part_name(["b", "a"]) != part_name(["a"])
    assert len(merge([records, records[:1]])) == 3
