"""The evaluation's figures, end to end: the real openai SDK over HTTP against the local test
server (a base model right on a known share of the GSM8K fixture prompts, a tuned one on a
higher share), graded by the reward Lambda's own handler with the fixture GSM8K grader."""

from __future__ import annotations

from typing import Any

import pytest

from tests.eval_support import REGION, ensure_paths, local_grader, students_server, validation_rows
from tests.openai_server import OpenAIServer
from tests.openai_server.students import user_text

ensure_paths()

from rft_eval.evaluate import evaluate  # noqa: E402
from rft_eval.retry import Backoff  # noqa: E402
from rft_eval.sampling import OpenAISampler  # noqa: E402
from rft_eval.settings import Settings  # noqa: E402
from rft_eval.stats import summarize  # noqa: E402

MODELS = {"base": "base", "tuned": "tuned"}
FAST = Backoff(base=0.001, cap=0.02)


def run(
    monkeypatch: pytest.MonkeyPatch,
    server: OpenAIServer,
    rows: list[dict[str, Any]],
    settings: Settings,
) -> dict[str, Any]:
    for name, value in server.sdk_environment().items():
        monkeypatch.setenv(name, value)
    sampler = OpenAISampler(REGION, route="/v1", backoff=FAST)
    records = evaluate(rows, MODELS, settings, sampler, local_grader(), concurrency=4)
    figures = summarize(
        records,
        pass_threshold=settings.pass_threshold,
        resamples=settings.bootstrap_resamples,
        seed=settings.seed,
    )
    return {"records": records, **figures}


def test_the_figures_are_the_shares_the_server_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = validation_rows(40)
    with students_server({"base": 0.5, "tuned": 0.8}, rows) as (server, students):
        result = run(monkeypatch, server, rows, Settings(bootstrap_resamples=300))
    assert result["n_prompts"] == 40
    assert result["base"]["mean_reward"] == 0.5
    assert result["tuned"]["mean_reward"] == 0.8
    assert result["base"]["pass_rate"] == 0.5
    assert result["tuned"]["pass_rate"] == 0.8
    assert result["base"]["graded"] == result["tuned"]["graded"] == 40
    assert result["difference"]["mean"] == pytest.approx(0.3)
    # Per prompt: +1 where only tuned is right, -1 where only base is, else a tie.
    texts = {user_text(row["messages"]): row for row in rows}
    right_base, right_tuned = students.right("base"), students.right("tuned")
    assert result["wins"] == len(right_tuned - right_base)
    assert result["losses"] == len(right_base - right_tuned)
    assert result["wins"] + result["ties"] + result["losses"] == len(texts)
    assert result["failed_calls"] == 0 and result["excluded_prompts"] == 0
    assert students.calls == {"base": 40, "tuned": 40}


def test_several_samples_per_prompt_are_all_graded(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = validation_rows(10)
    with students_server({"base": 0.3, "tuned": 0.7}, rows) as (server, students):
        result = run(
            monkeypatch, server, rows, Settings(samples_per_prompt=3, bootstrap_resamples=100)
        )
    assert result["base"]["graded"] == result["tuned"]["graded"] == 30
    assert result["base"]["mean_reward"] == 0.3
    assert result["tuned"]["mean_reward"] == 0.7
    assert students.calls == {"base": 30, "tuned": 30}


def test_the_interval_is_reproducible_and_holds_the_true_difference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """40 of the 100 prompts: the models' true accuracies are over all 100 (0.56 and 0.85, the
    walkthrough's figures); the sample's interval holds their difference, and the same seed
    gives the same interval."""
    every = validation_rows()
    rows = every[:40]
    with students_server({"base": 0.56, "tuned": 0.85}, every) as (server, students):
        result = run(monkeypatch, server, rows, Settings(bootstrap_resamples=2000, seed=7))
    true_difference = students.accuracy("tuned") - students.accuracy("base")
    assert true_difference == pytest.approx(0.29)
    low, high = result["difference"]["ci95"]
    assert low <= true_difference <= high
    assert low > 0  # a real improvement of 0.29 on 40 prompts is resolved
    records = result["records"]
    again = summarize(records, pass_threshold=0.5, resamples=2000, seed=7)
    assert again["difference"] == result["difference"]
    other = summarize(records, pass_threshold=0.5, resamples=2000, seed=8)
    assert other["difference"]["ci95"] != result["difference"]["ci95"]
    assert other["difference"]["mean"] == result["difference"]["mean"]


def test_a_rate_limited_endpoint_slows_the_evaluation_but_it_completes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = validation_rows(12)
    with students_server({"base": 0.5, "tuned": 1.0}, rows) as (server, _students):
        # More 429s (each with retry-after-ms: 5) than the SDK's or the backoff's ordinary
        # budget for other failures: throttling has a budget of its own.
        server.throttle(30, path_prefix="/v1/chat")
        result = run(monkeypatch, server, rows, Settings(bootstrap_resamples=100))
        throttled = sum(r.path == "/v1/chat/completions" for r in server.requests)
    assert throttled == 24 + 30
    assert result["failed_calls"] == 0
    assert result["base"]["mean_reward"] == 0.5
    assert result["tuned"]["mean_reward"] == 1.0


def test_a_prompt_that_always_fails_is_reported_and_excluded_from_both_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = validation_rows(10)
    failing = user_text(rows[3]["messages"])
    shares = {"base": 0.0, "tuned": 1.0}
    with students_server(shares, rows, failing=[failing]) as (server, students):
        result = run(monkeypatch, server, rows, Settings(bootstrap_resamples=100))
    assert result["n_prompts"] == 9
    assert result["excluded_prompts"] == 1
    assert result["excluded_prompt_ids"] == [rows[3]["id"]]
    # One failed call per model on that prompt; neither model is scored on it.
    assert result["failed_calls"] == 2
    assert result["base"]["failed_calls"] == result["tuned"]["failed_calls"] == 1
    assert result["base"]["graded"] == result["tuned"]["graded"] == 9
    assert result["base"]["mean_reward"] == 0.0
    assert result["tuned"]["mean_reward"] == 1.0
    assert result["wins"] == 9
    # Retried (500 is transient) before giving up: FAST.attempts per model.
    assert students.calls["base"] == 9 + FAST.attempts
    errors = [r.error for r in result["records"] if r.error]
    assert len(errors) == 2 and all("InternalServerError" in e for e in errors)


def test_each_model_is_called_under_its_own_path_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without OPENAI_BASE_URL and without the environment's mantle.route, each model goes to
    the prefix rft_common's table gives it (the server refuses the other one, as Bedrock's
    endpoint does)."""
    rows = validation_rows(4)
    models = {"base": "openai.gpt-oss-20b", "tuned": "openai.gpt-5-mini"}
    shares = {models["base"]: 0.5, models["tuned"]: 1.0}
    with students_server(shares, rows) as (server, students):
        server.model_routes = {models["tuned"]: "/openai/v1"}
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        monkeypatch.delenv("BEDROCK_MANTLE_ROUTE", raising=False)
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key or "")
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_MANTLE", server.origin)
        sampler = OpenAISampler(REGION, route=None, backoff=FAST)
        records = evaluate(rows, models, Settings(), sampler, local_grader())
        paths = {(r.body or {}).get("model"): r.path for r in server.requests}
    assert all(r.error is None for r in records)
    assert paths == {
        models["base"]: "/v1/chat/completions",
        models["tuned"]: "/openai/v1/chat/completions",
    }
    assert students.calls == {models["base"]: 4, models["tuned"]: 4}
