"""A python grader's time limit on CPython 3.13 from the reward bundle (``python3.13 -I -S``,
as on Lambda): the forked worker, killed and replaced, gives the scores the sources give."""

from __future__ import annotations

import json

import pytest

from tests.parity.test_runtime_parity import REWARD_ENVIRONMENT, _source_outputs, run_bundle
from tests.reward_support import check_contract, rollout, scores

LOOPING = {
    "type": "python",
    "name": "parity-python",
    "timeout_seconds": 0.5,
    "source": (
        "def grade(sample, item):\n"
        "    while sample['output_text'] == 'loop':\n"
        "        pass\n"
        "    return float(sample['output_text'] == item['reference_answer'])\n"
    ),
}


def test_an_infinite_loop_times_out_in_the_bundle_as_in_the_sources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = [rollout(f"p{i}", text, "42") for i, text in enumerate(["42", "loop", "41", "42"])]
    config = {**REWARD_ENVIRONMENT, "GRADER_CONFIG": json.dumps(LOOPING)}
    answer = run_bundle("reward", event, config)
    check_contract(event, answer["result"])
    assert scores(answer["result"]) == [1.0, 0.0, 0.0, 1.0]
    timed_out = [m["name"] for m in answer["result"][1]["metrics_list"] if m["value"] == 1.0]
    assert "grader_timeout" in timed_out
    assert answer["result"] == _source_outputs(monkeypatch, LOOPING, event)
