"""Grader checks, through the real reward handler: a good grader and graders that can be gamed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from preflight.dataset import Limits, Record, check_dataset
from preflight.findings import Findings
from preflight.grader_checks import (
    GraderCheckResult,
    ProbeResult,
    answer_text,
    judge_grader,
    noise,
    render,
    run_grader_checks,
)
from preflight.reward import (
    GraderContractError,
    GraderLoadError,
    HandlerOutput,
    RewardHandler,
    check_answer,
    ensure_lambda_paths,
)
from tests.openai_server import OpenAIServer, Reply
from tests.preflight_support import records_fixture  # noqa: F401 (fixture)
from tests.reward_support import GRADERS

GSM8K_GRADER = GRADERS / "gsm8k.json"


def _grader(tmp_path: Path, definition: dict[str, Any]) -> Path:
    path = tmp_path / f"{definition.get('name', 'grader')}.json"
    path.write_text(json.dumps(definition), encoding="utf-8")
    return path


def _check(grader: Path, records: list[Record]) -> tuple[Findings, GraderCheckResult]:
    findings = Findings()
    result = run_grader_checks(RewardHandler(grader), records, findings, "train.jsonl")
    return findings, result


def test_project_grader_passes_on_the_example_dataset(records: list[Record]) -> None:
    findings, result = _check(GSM8K_GRADER, records)
    assert result.completed
    assert findings.codes("error") == set()
    means = {name: probe.to_dict()["mean"] for name, probe in result.probes.items()}
    assert means["reference"] == 1.0
    assert means["empty"] == means["noise"] == means["other_reference"] == 0.0
    assert means["copy_prompt"] < 0.05
    assert all(len(p.values) == len(records) for p in result.probes.values())
    # every rollout went through the handler and its EMF metrics were captured
    assert result.handler_metrics["Samples"] == 6 * 20 + 7 * len(records)
    assert result.handler_metrics["GraderErrors"] == 0
    # A copied prompt is rewarded only where the question itself contains the answer (a
    # warning: GSM8K questions that end with the number asked for).
    copied = findings.group("prompt-copy-rewarded", "warning")
    assert copied is not None and 0 < copied.count < 25
    for example in copied.examples:
        line = int(example.split(" line ")[1].split(" ")[0])
        record = next(r for r in records if r.line == line)
        assert record.reference_answer["final_answer"] in record.messages[-1]["content"]
    # The report says why, where it prints the warning (terminal and JSON).
    assert "the last number in these prompts is also their answer" in copied.to_dict()["hint"]


def test_grader_that_ignores_the_response_rewards_an_empty_answer(
    tmp_path: Path, records: list[Record]
) -> None:
    # A template typo: the grader reads the reference instead of the response, so every
    # response (the empty one too) earns full reward.
    grader = _grader(
        tmp_path,
        {
            "name": "typo",
            "type": "math_answer",
            "input": "{{ item.reference_answer.final_answer }}",
        },
    )
    findings, _ = _check(grader, records[:120])
    assert {
        "grader-rewards-empty",
        "grader-rewards-noise",
        "grader-rewards-prompt-copy",
        "grader-rewards-wrong-answer",
    } <= findings.codes("error")
    empty = findings.group("grader-rewards-empty")
    assert empty is not None and empty.count == 120
    assert empty.examples[0] == (
        "train.jsonl line 1 (id gsm8k-train-00000): an empty response scores 1.00"
    )


def test_too_lenient_grader_rewards_wrong_answers(tmp_path: Path, records: list[Record]) -> None:
    grader = _grader(tmp_path, {"name": "lenient", "type": "math_answer", "tolerance": 1e12})
    findings, result = _check(grader, records[:150])
    assert findings.codes("error") == {
        "grader-rewards-wrong-answer",
        "grader-rewards-prompt-copy",
        "grader-rewards-constant",
    }
    wrong = findings.group("grader-rewards-wrong-answer")
    assert wrong is not None
    assert wrong.examples == [
        f"{grader}: another record's answer scores 1.00 on average over 150 records"
    ]
    assert result.probes["empty"].to_dict()["max"] == 0.0


def test_grader_that_cannot_score_the_task(tmp_path: Path) -> None:
    colours = tmp_path / "colours.jsonl"
    colours.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [{"role": "user", "content": f"Colour {i}?"}],
                    "reference_answer": {"final_answer": ["red", "blue"][i % 2]},
                }
            )
            + "\n"
            for i in range(100)
        ),
        encoding="utf-8",
    )
    findings = Findings()
    data = check_dataset(colours, "train", Limits(), findings)
    result = run_grader_checks(RewardHandler(GSM8K_GRADER), data.valid, findings, "c.jsonl")
    assert findings.codes("error") == {"grader-cannot-score", "reference-unreadable"}
    unreadable = findings.group("reference-unreadable")
    assert unreadable is not None
    assert unreadable.count == 100
    assert unreadable.examples[0] == (
        "c.jsonl line 1: gsm8k: the reference answer has no single number (no_number)"
    )
    errors = findings.group("grader-errors", "warning")
    assert errors is not None
    # the handler's own reason, from its log lines (captured, not printed)
    assert errors.examples == [
        f"{GSM8K_GRADER}: 720 responses could not be graded (scored 0); reasons: gsm8k: the "
        "reference answer has no single number (no_number) (720)"
    ]
    assert result.handler_metrics["GraderErrors"] == 720


def test_handler_output_is_captured_not_printed(
    records: list[Record], capsys: pytest.CaptureFixture[str]
) -> None:
    _check(GSM8K_GRADER, records[:10])
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_invalid_definition_is_reported_with_its_json_path(tmp_path: Path) -> None:
    grader = _grader(tmp_path, {"name": "bad", "type": "math_answer", "tolerance": "tiny"})
    with pytest.raises(GraderLoadError) as err:
        RewardHandler(grader)
    assert str(err.value) == (
        f"{grader}: the reward handler failed to load it: DefinitionError: grader definition "
        "$.tolerance: must be a number, got string"
    )


def test_each_load_reads_its_own_grader(tmp_path: Path, records: list[Record]) -> None:
    # The handler reads GRADER_CONFIG at import: every RewardHandler is a fresh import.
    typo = _grader(
        tmp_path,
        {
            "name": "typo",
            "type": "math_answer",
            "input": "{{ item.reference_answer.final_answer }}",
        },
    )
    good, bad, good_again = (
        RewardHandler(GSM8K_GRADER),
        RewardHandler(typo),
        RewardHandler(GSM8K_GRADER),
    )
    empty = [
        {
            "id": "e",
            "messages": [*records[0].messages, {"role": "assistant", "content": ""}],
            "metadata": {"reference_answer": records[0].reference_answer},
        }
    ]
    assert good.scores(empty) == [0.0]
    assert bad.scores(empty) == [1.0]
    assert good_again.scores(empty) == [0.0]


def test_reference_below_noise_and_all_probe_rules() -> None:
    recs = [
        Record(
            line=i + 1,
            id=f"r{i}",
            messages=[{"role": "user", "content": "q"}],
            reference_answer="a",
            extra={},
            prompt_tokens=5,
        )
        for i in range(4)
    ]
    result = GraderCheckResult(grader="g.json", records=4, rendering="bare")
    scores: dict[str, list[float | None]] = {
        "reference": [1.0, 0.2, 1.0, 1.0],
        "empty": [0.0, 0.0, 0.0, 0.5],
        "noise": [0.0, 0.4, 0.0, 0.0],
        "copy_prompt": [0.0, 0.0, 0.0, 0.0],
        "other_reference": [0.0, None, 0.0, 0.0],
    }
    result.probes = {name: ProbeResult(name, values) for name, values in scores.items()}
    findings = Findings()
    judge_grader(result, recs, findings, "t.jsonl", "g.json")
    assert findings.codes("error") == {"reference-below-noise", "grader-rewards-empty"}
    below = findings.group("reference-below-noise")
    assert below is not None and below.examples == [
        "t.jsonl line 2 (id r1): the reference answer scores 0.20, noise 0.40"
    ]
    empty = findings.group("grader-rewards-empty")
    assert empty is not None and empty.examples == [
        "t.jsonl line 4 (id r3): an empty response scores 0.50"
    ]
    assert findings.codes("warning") == {"reference-low"}


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"id": "a"}, "not a JSON array"),
        ([{"aggregate_reward_score": 1}], "answer item 0 is not an object with an id"),
        ([{"id": "a", "aggregate_reward_score": "1"}], 'aggregate_reward_score is "1"'),
        ([{"id": "a", "aggregate_reward_score": True}], "aggregate_reward_score is true"),
        ([{"id": "a", "aggregate_reward_score": 1.5}], "1.5 is outside 0..1"),
        (
            [
                {
                    "id": "a",
                    "aggregate_reward_score": 1,
                    "metrics_list": [{"name": "x", "value": 1, "type": "Score"}],
                }
            ],
            "metrics_list items must be",
        ),
        ([{"id": "b", "aggregate_reward_score": 1}], "missing ids: a"),
        ([], "answered 0 items for 1 rollouts"),
    ],
)
def test_contract_violations_are_named(answer: Any, problem: str) -> None:
    with pytest.raises(GraderContractError) as err:
        check_answer([{"id": "a"}], answer)
    assert problem in str(err.value)


def test_synthetic_responses() -> None:
    assert answer_text({"final_answer": "72"}) == "72"
    assert answer_text({"label": 3}) == "3"
    assert answer_text({"only": "x", "nested": {"a": 1}}) == "x"
    assert answer_text(["a", "b"]) == '["a", "b"]'
    assert answer_text("yes") == "yes"
    assert render({"final_answer": "72"}, "hashes") == "#### 72"
    assert render({"final_answer": "72"}, "boxed") == "\\boxed{72}"
    assert render({"final_answer": "72"}, "json") == '{"final_answer": "72"}'
    assert noise(3) == noise(3) != noise(4)
    assert not any(ch.isdigit() for ch in noise(3))


def test_handler_output_sums_counts_from_the_handlers_own_emf(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ensure_lambda_paths("reward")
    from grading.base import Stats
    from grading.metrics import Summary, publish

    stats = Stats()
    for latency in (120.0, 80.0, 95.0):
        stats.judge_call(latency)
    stats.judge_error()
    stats.judge_timeout()
    stats.judge_reply(structured=True)
    capsys.readouterr()
    for _ in range(2):
        publish(
            Summary(scores=[1.0, 0.0, 0.5], grader_errors=1, stats=stats, remote=True),
            environment="test",
            grader="judge",
        )
    emf = capsys.readouterr().out
    log = json.dumps(
        {
            "level": "WARNING",
            "message": "sample 'x' scored 0: why",
            "reason": "judge: no score in the reply",
        }
    )
    output = HandlerOutput()
    output.absorb(emf + log + "\nnot json\n")
    assert output.metrics == {
        "Samples": 6,
        "GraderErrors": 2,
        "JudgeCalls": 6,
        "JudgeErrors": 2,
        "JudgeTimeouts": 2,
        "JudgeStructured": 2,
        "JudgeUnstructured": 0,
    }
    assert output.problems == {"judge: no score in the reply": 1}


@pytest.mark.parametrize(
    "definition",
    [
        # "not equal to the answer": every other response, the empty one included, wins
        {
            "name": "ne",
            "type": "string_check",
            "input": "{{ sample.output_text }}",
            "reference": "{{ item.reference_answer.final_answer }}",
            "operation": "ne",
        },
        # "penalise refusals" alone: saying nothing is not a refusal
        {
            "name": "no-refusal",
            "type": "regex",
            "pattern": "i (don't|do not) know",
            "flags": ["i"],
            "negate": True,
        },
        # "be concise" alone: no words is concise
        {"name": "concise", "type": "length", "unit": "words", "min": 0, "max": 300},
    ],
    ids=["string_check-ne", "regex-negated", "length-only"],
)
def test_graders_that_reward_an_empty_answer_are_rejected(
    tmp_path: Path, records: list[Record], definition: dict[str, Any]
) -> None:
    findings, result = _check(_grader(tmp_path, definition), records[:100])
    assert result.completed
    assert {"grader-rewards-empty", "grader-rewards-noise"} <= findings.codes("error")
    empty = findings.group("grader-rewards-empty")
    assert empty is not None and empty.count == 100
    assert empty.examples[0] == (
        "train.jsonl line 1 (id gsm8k-train-00000): an empty response scores 1.00"
    )


def _judge_reply(body: dict[str, Any], number: int) -> Reply:
    """A judge that gives 10 when the graded solution contains the reference answer, and (as
    a careful judge does) nothing to a list of candidate answers."""
    prompt = body["messages"][-1]["content"]
    reference = re.search(r"Reference final answer: (\S+)", prompt)
    assert reference is not None
    # the response sits between markers with a random hex name: drop them first
    solution = re.sub(r"</?[\w-]+>", " ", prompt.split("Solution to grade:", 1)[1])
    right = re.search(rf"(?<![\w.]){re.escape(reference.group(1))}(?![\w.])", solution)
    listed = solution.strip().count("\n") > 3
    return Reply(content=json.dumps({"score": 10 if right and not listed else 0}))


def test_model_judged_grader_runs_on_100_records_through_the_judge_endpoint(
    openai_server: OpenAIServer, records: list[Record]
) -> None:
    openai_server.chat.behaviour = _judge_reply
    findings, result = _check(GRADERS / "rubric_judge.json", records)
    assert result.records == 100
    assert result.notes == [
        f"{GRADERS / 'rubric_judge.json'} calls a model: grader checks ran on the "
        "first 100 records only (--grader-records to choose)"
    ]
    judged = 6 * 20 + 7 * 100
    assert result.handler_metrics["JudgeCalls"] == judged == len(openai_server.requests)
    assert {r.body["model"] for r in openai_server.requests} == {"openai.gpt-oss-120b"}
    assert findings.codes("error") == set()
    assert result.probes["reference"].to_dict()["mean"] == 1.0
    assert result.probes["empty"].to_dict()["max"] == 0.0


def test_failing_judge_is_reported(
    openai_server: OpenAIServer, tmp_path: Path, records: list[Record]
) -> None:
    definition = json.loads((GRADERS / "rubric_judge.json").read_text())
    definition.update(max_retries=0, name="judge")
    openai_server.chat.behaviour = lambda body, number: Reply(
        status=503, error="model is not ready"
    )
    findings, _ = _check(_grader(tmp_path, definition), records[:30])
    assert "grader-cannot-score" in findings.codes("error")
    failed = findings.group("judge-errors", "warning")
    assert failed is not None
    assert failed.examples[0].startswith(f"{tmp_path / 'judge.json'}: 330 judgements failed")


def _answer_records(answers: list[Any]) -> list[Record]:
    return [
        Record(
            line=i + 1,
            id=f"r{i}",
            messages=[{"role": "user", "content": f"q{i}"}],
            reference_answer=answer,
            extra={},
            prompt_tokens=1,
        )
        for i, answer in enumerate(answers)
    ]


def test_constant_probe_answer_is_the_most_common_then_the_first_of_a_tie() -> None:
    from preflight.grader_checks import _constant

    # Compared as stripped text: " 7" and "7" are one answer; its first occurrence is kept.
    records = _answer_records(["3", " 7", "5", "7", "3 ", "7"])
    assert _constant(records) == " 7"
    assert _constant(_answer_records(["4", "9", "9", "4"])) == "4"
    assert _constant(_answer_records([{"final_answer": "2"}, "1", "2"])) == {"final_answer": "2"}


def test_constant_probe_counts_every_record_of_a_large_file() -> None:
    """Large files once fell back to the first record's answer (the count was cubic)."""
    from preflight.grader_checks import _constant

    answers = ["first"] + [str(i % 1000) for i in range(19_999)]
    answers[10_000:10_050] = ["popular"] * 50
    assert _constant(_answer_records(answers)) == "popular"
