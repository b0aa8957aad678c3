"""The GSM8K grader on the real dataset: every reference solution earns 1 against its own
answer and 0 against a neighbour's, through ``handler()`` in the dataset's own shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.lambda_loader import SHARED_DATA, LambdaContext
from tests.reward_support import GRADERS, check_contract, load_reward, scores

GSM8K = SHARED_DATA / "gsm8k"
SYSTEM = "Solve the grade-school math problem. Reason step by step, then give the final answer."


def _records() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for split in ("train", "test"):
        with (GSM8K / f"{split}.jsonl").open(encoding="utf-8") as lines:
            rows.extend(json.loads(line) for line in lines if line.strip())
    return rows


RECORDS = _records()


def _final(solution: str) -> str:
    return solution.rsplit("####", 1)[1].strip()


def _value(final: str) -> float:
    return float(final.replace(",", ""))


def _rollout(index: int, response: str, final: str) -> dict[str, Any]:
    """A rollout as Bedrock sends it for the project's dataset (reference placement varies)."""
    record = RECORDS[index]
    rollout: dict[str, Any] = {
        "id": f"gsm8k-{index:05d}",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": record["question"]},
            {"role": "assistant", "content": response},
        ],
    }
    if index % 2:
        rollout["metadata"] = {"reference_answer": {"final_answer": final}}
    else:
        rollout["reference_answer"] = {"final_answer": final}
    return rollout


def _batches(event: list[dict[str, Any]], size: int = 1024) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(event), size):
        yield event[start : start + size]


@pytest.fixture(scope="module")
def handler() -> Any:
    with pytest.MonkeyPatch.context() as monkeypatch:
        module = load_reward(monkeypatch, GRADERS / "gsm8k.json")
    return module.handler


def _grade(handler: Any, event: list[dict[str, Any]]) -> list[float]:
    results: list[float] = []
    for batch in _batches(event):
        outputs = handler(batch, LambdaContext())
        check_contract(batch, outputs)
        results.extend(scores(outputs))
    return results


def test_the_dataset_is_the_full_gsm8k() -> None:
    assert len(RECORDS) == 7473 + 1319


def test_every_reference_solution_earns_one(handler: Any) -> None:
    event = [_rollout(i, r["answer"], _final(r["answer"])) for i, r in enumerate(RECORDS)]
    results = _grade(handler, event)
    failures = [event[i]["id"] for i, score in enumerate(results) if score != 1.0]
    assert failures == []


def test_every_reference_solution_earns_zero_against_a_neighbours_answer(handler: Any) -> None:
    event = []
    for index, record in enumerate(RECORDS):
        own = _value(_final(record["answer"]))
        step = 1
        while _value(_final(RECORDS[(index + step) % len(RECORDS)]["answer"])) == own:
            step += 1
        neighbour = _final(RECORDS[(index + step) % len(RECORDS)]["answer"])
        event.append(_rollout(index, record["answer"], neighbour))
    results = _grade(handler, event)
    assert [event[i]["id"] for i, score in enumerate(results) if score != 0.0] == []


@pytest.mark.parametrize(
    "style",
    [
        "{body}The answer is {final}.",
        "{body}Therefore, the final answer is $\\boxed{{{final}}}$.",
        "{body}**Answer:** {final}",
        "{body}<answer>{final}</answer>",
        "{body}So the total is {final}.",
    ],
)
def test_reference_working_with_other_answer_styles(handler: Any, style: str) -> None:
    """Models phrase the final answer in many ways; every style of a correct one earns 1."""
    event = []
    for index, record in enumerate(RECORDS[:1500]):
        body, final = record["answer"].rsplit("####", 1)
        response = style.format(body=body, final=final.strip())
        event.append(_rollout(index, response, final.strip()))
    results = _grade(handler, event)
    assert [event[i]["id"] for i, score in enumerate(results) if score != 1.0] == []
