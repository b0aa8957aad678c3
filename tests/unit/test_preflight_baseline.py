"""Baseline sampling against a local OpenAI-compatible server, through the real openai SDK."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from preflight.baseline import (
    BaselineResult,
    Sample,
    choose,
    judge_baseline,
    make_client,
    sample_responses,
)
from preflight.dataset import Record
from preflight.findings import Findings
from tests.openai_server import OpenAIServer, Reply
from tests.preflight_support import records_fixture  # noqa: F401 (fixture)


def _answers(records: list[Record]) -> dict[str, str]:
    """Question -> final answer, so the server can answer some questions right."""
    return {r.messages[-1]["content"]: r.reference_answer["final_answer"] for r in records}


def test_samples_every_chosen_prompt_concurrently(
    records: list[Record], openai_server: OpenAIServer
) -> None:
    """The project's client finds the local server through the SDK's own variables."""
    answers = _answers(records)

    def reply(body: dict[str, Any], number: int) -> Reply:
        question = body["messages"][-1]["content"]
        return Reply(content=f"Working...\n#### {answers[question]}")

    openai_server.chat.behaviour = reply
    openai_server.rendezvous(3)
    chosen = choose(records, 24, seed=1)
    client = make_client(region=None)
    done = []
    samples, aborted = sample_responses(
        client,
        "openai.gpt-oss-20b",
        chosen,
        concurrency=4,
        max_tokens=256,
        temperature=0.7,
        on_done=lambda: done.append(1),
    )
    assert not aborted
    assert len(samples) == len(done) == 24
    assert [s.record.line for s in samples] == sorted(s.record.line for s in samples)
    for sample in samples:
        assert sample.error is None
        final = sample.record.reference_answer["final_answer"]
        assert sample.response == f"Working...\n#### {final}"
    # what went over the wire: the prompt's messages as they are, the options, the key
    bodies = [r.body for r in openai_server.requests]
    assert len(bodies) == 24
    first = bodies[0]
    assert first["model"] == "openai.gpt-oss-20b"
    assert first["max_tokens"] == 256 and first["temperature"] == 0.7
    assert {json.dumps(body["messages"]) for body in bodies} == {
        json.dumps(s.record.messages) for s in samples
    }
    assert {r.headers["authorization"] for r in openai_server.requests} == {"Bearer test-key"}
    assert openai_server.max_in_flight >= 3


def test_choose_is_reproducible_in_file_order(records: list[Record]) -> None:
    first, again, other = choose(records, 50, 7), choose(records, 50, 7), choose(records, 50, 8)
    assert [r.line for r in first] == [r.line for r in again]
    assert [r.line for r in first] != [r.line for r in other]
    assert [r.line for r in first] == sorted(r.line for r in first)
    assert len({r.line for r in first}) == 50
    assert choose(records, 10_000, 0) == records


def test_stops_early_when_every_request_fails(
    records: list[Record], openai_server: OpenAIServer
) -> None:
    def reply(body: dict[str, Any], number: int) -> Reply:
        return Reply(status=404, error=f"model {body['model']} not found")

    openai_server.chat.behaviour = reply
    samples, aborted = sample_responses(
        make_client(region=None), "no-such-model", records[:40], concurrency=1
    )
    assert aborted
    assert len(openai_server.requests) == 5  # FAIL_FAST_AFTER, one at a time
    assert len(samples) == 5
    assert all(s.error and "NotFoundError" in s.error for s in samples)
    assert samples[0].error is not None
    assert re.match(r"line 1 \(id gsm8k-train-00000\): NotFoundError: ", samples[0].error)

    result = BaselineResult(model="no-such-model", requested=40, samples=samples, aborted=True)
    findings = Findings()
    judge_baseline(result, findings)
    group = findings.group("baseline-failed")
    assert group is not None
    assert group.examples[0].startswith(
        "no-such-model: all 5 requests failed (stopped early); first: line 1 (id "
    )


def test_some_failed_requests_are_a_warning(
    records: list[Record], openai_server: OpenAIServer
) -> None:
    def reply(body: dict[str, Any], number: int) -> Reply:
        if "Natalia" in body["messages"][-1]["content"]:
            return Reply(status=400, error="prompt rejected")
        return Reply(content="#### 0")

    openai_server.chat.behaviour = reply
    samples, aborted = sample_responses(make_client(region=None), "m", records[:6])
    assert not aborted
    assert sum(s.error is not None for s in samples) == 1
    findings = Findings()
    judge_baseline(BaselineResult(model="m", requested=6, samples=samples), findings)
    group = findings.group("baseline-request-failed", "warning")
    assert group is not None
    assert group.examples[0].startswith("m: 1 of 6 requests failed; first: line 1 ")
    assert findings.codes("error") == set()


def _result_with(records: list[Record], rewards: list[float]) -> BaselineResult:
    samples = [Sample(record=records[i], response="x", reward=r) for i, r in enumerate(rewards)]
    return BaselineResult(model="m", requested=len(rewards), samples=samples)


@pytest.mark.parametrize(
    ("rewards", "codes"),
    [
        ([0.0] * 99 + [1.0], {"baseline-near-zero"}),  # 1% earn anything
        ([0.0] * 90 + [1.0] * 10, set()),
        ([1.0] * 96 + [0.0] * 4, {"baseline-near-one"}),
        ([1.0] * 94 + [0.0] * 6, set()),
    ],
)
def test_warns_when_rewards_are_near_zero_or_near_one(
    records: list[Record], rewards: list[float], codes: set[str]
) -> None:
    findings = Findings()
    judge_baseline(_result_with(records, rewards), findings)
    assert findings.codes("warning") == codes
    assert findings.codes("error") == set()
