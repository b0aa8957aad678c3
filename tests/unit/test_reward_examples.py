"""Each example grader definition, on data of its task: the tests' own copies
(tests/fixtures/graders/) of the examples shipped in graders/, which are the user's to change."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.lambda_loader import SHARED_DATA, LambdaContext
from tests.openai_server import OpenAIServer, Reply, enclosed_response, outside_markers
from tests.reward_support import (
    GRADERS,
    check_contract,
    fixture,
    load_reward,
    scores,
)


def test_every_fixture_example_has_a_test_here() -> None:
    tested = {"gsm8k.json", "invoice_extraction.json", "rubric_judge.json"}
    assert {path.name for path in GRADERS.glob("*.json")} == tested


def _gsm8k_rollouts(count: int) -> list[dict[str, Any]]:
    """Rollouts in the project's dataset shape: system + user prompt, {final_answer}."""
    rows = []
    with (SHARED_DATA / "gsm8k" / "test.jsonl").open(encoding="utf-8") as lines:
        for index, line in enumerate(lines):
            if index == count:
                break
            rows.append(json.loads(line))
    event = []
    for index, row in enumerate(rows):
        working, final = row["answer"].rsplit("####", 1)
        answer = final.strip() if index % 2 == 0 else str(int(final.strip().replace(",", "")) + 1)
        event.append(
            {
                "id": f"gsm8k-test-{index:05d}",
                "messages": [
                    {"role": "system", "content": "Solve the grade-school math problem."},
                    {"role": "user", "content": row["question"]},
                    {"role": "assistant", "content": f"{working}#### {answer}"},
                ],
                "metadata": {"reference_answer": {"final_answer": final.strip()}},
            }
        )
    return event


def test_gsm8k(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_reward(monkeypatch, GRADERS / "gsm8k.json")
    event = _gsm8k_rollouts(40)
    outputs = module.handler(event, LambdaContext())
    check_contract(event, outputs)
    assert scores(outputs) == [1.0, 0.0] * 20


def test_invoice_extraction(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_reward(monkeypatch, GRADERS / "invoice_extraction.json")
    data = fixture("example_invoice_extraction.json")
    outputs = module.handler(data["event"], LambdaContext())
    check_contract(data["event"], outputs)
    assert scores(outputs) == pytest.approx(data["expected_scores"])
    names = [metric["name"] for metric in outputs[0]["metrics_list"]]
    assert names == ["invoice-extraction", "valid", "vendor", "number", "total"]


def _final(text: str) -> str | None:
    found = re.findall(r"####\s*([-\d,.]+)", text)
    return found[-1].replace(",", "") if found else None


def rubric_following_judge(body: dict[str, Any], number: int) -> Reply:
    """Follows the definition's rubric: 0 for a wrong final answer, else 4 to 10 by how many
    calculations the solution shows."""
    response = enclosed_response(body) or ""
    reference = re.search(r"Reference final answer: ([-\d,.]+)", outside_markers(body))
    if reference is None or _final(response) != reference.group(1).replace(",", ""):
        return Reply(content='{"score": 0}')
    shown = response.count("=")
    return Reply(content=json.dumps({"score": min(10, 4 + 2 * shown)}))


def test_rubric_judge(monkeypatch: pytest.MonkeyPatch, openai_server: OpenAIServer) -> None:
    event = _gsm8k_rollouts(12)
    bare = _final(event[2]["messages"][-1]["content"])
    assert bare is not None
    event[2]["messages"][-1]["content"] = f"#### {bare}"
    openai_server.chat.behaviour = rubric_following_judge
    module = load_reward(monkeypatch, GRADERS / "rubric_judge.json")
    outputs = module.handler(event, LambdaContext())
    check_contract(event, outputs)
    values = scores(outputs)
    assert values[1::2] == [0.0] * 6  # wrong final answers
    assert values[2] == 0.4  # right answer, no working shown
    assert all(value >= 0.6 for index, value in enumerate(values) if index % 2 == 0 and index != 2)
    questions = [rollout["messages"][1]["content"] for rollout in event]
    for request in (recorded.body for recorded in openai_server.requests):
        assert request["model"] == "openai.gpt-oss-120b"
        assert request["temperature"] == 0
        assert request["max_completion_tokens"] == 512
        # the problem comes from the conversation's user turn, outside the enclosure
        assert any(f"Problem:\n{question}" in outside_markers(request) for question in questions)
