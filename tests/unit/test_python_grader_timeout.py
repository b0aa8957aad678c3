"""A python grader's per-sample time limit: a sample that loops forever or sleeps past the limit
scores 0 with ``grader_timeout``, the rest of the batch is graded, and the handler returns
before the invocation's deadline (the calls run in a forked worker that is killed and
replaced)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.lambda_loader import LambdaContext
from tests.reward_support import definition_error, load_reward, rollout, scores

SLOW = """
import time

def grade(sample, item):
    text = sample["output_text"]
    if text == "loop":
        while True:
            pass
    if text == "sleep":
        time.sleep(60)
    if text == "exit":
        import os
        os._exit(3)
    return 1.0 if text == "ok" else 0.5
"""


def python(**extra: Any) -> dict[str, Any]:
    return {"type": "python", "name": "slow", "source": SLOW, **extra}


def event(responses: list[str]) -> list[dict[str, Any]]:
    return [rollout(f"s{i}", text, "x") for i, text in enumerate(responses)]


def flags(output: dict[str, Any]) -> set[str]:
    return {m["name"] for m in output["metrics_list"] if m["value"] == 1.0} & {
        "grader_timeout",
        "grader_error",
    }


@pytest.mark.parametrize("stuck", ["loop", "sleep"])
def test_a_stuck_sample_times_out_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stuck: str
) -> None:
    module = load_reward(monkeypatch, python(timeout_seconds=0.5))
    started = time.monotonic()
    outputs = module.handler(event(["ok", stuck, "ok", "other"]), LambdaContext())
    elapsed = time.monotonic() - started
    assert scores(outputs) == [1.0, 0.0, 1.0, 0.5]
    assert [flags(o) for o in outputs] == [set(), {"grader_timeout", "grader_error"}, set(), set()]
    assert 0.5 <= elapsed < 5.0
    assert "grader_timeout (no result within 0.5 s)" in capsys.readouterr().out


def test_the_worker_stays_warm_and_is_replaced_after_a_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = load_reward(monkeypatch, python(timeout_seconds=0.3))
    grader = module.DEFINITION.grader
    module.handler(event(["ok"]), LambdaContext())
    first = grader.worker.pid
    module.handler(event(["ok", "ok"]), LambdaContext())
    assert grader.worker.pid == first != os.getpid()
    module.handler(event(["loop"]), LambdaContext())
    assert grader.worker.pid is None  # killed; the next sample forks a fresh one
    assert scores(module.handler(event(["ok"]), LambdaContext())) == [1.0]
    assert grader.worker.pid not in (None, first)


def test_the_invocation_deadline_bounds_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_reward(monkeypatch, python(timeout_seconds=60))
    context = LambdaContext(remaining_ms=2_500)
    started = time.monotonic()
    outputs = module.handler(event(["ok", "sleep", "ok"]), context)
    assert time.monotonic() - started < 2.5
    assert context.get_remaining_time_in_millis() > 0
    assert scores(outputs) == [1.0, 0.0, 0.0]
    assert [flags(o) for o in outputs][1:] == [{"grader_timeout", "grader_error"}] * 2


def test_a_worker_that_dies_fails_its_sample_only(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_reward(monkeypatch, python())
    outputs = module.handler(event(["ok", "exit", "ok"]), LambdaContext())
    assert scores(outputs) == [1.0, 0.0, 1.0]
    assert [flags(o) for o in outputs] == [set(), {"grader_error"}, set()]


@pytest.mark.parametrize(
    ("value", "problem"),
    [(0, "must be at least 0.05"), (121, "must be at most 120.0"), ("5", "must be a number")],
)
def test_timeout_seconds_is_validated(
    monkeypatch: pytest.MonkeyPatch, value: Any, problem: str
) -> None:
    message = definition_error(monkeypatch, python(timeout_seconds=value))
    assert "$.timeout_seconds: " in message
    assert problem in message
