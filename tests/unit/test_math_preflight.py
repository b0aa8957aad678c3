"""Preflight on competition-style math: references the grader cannot read are reported with
their line, and the gaming probes (copied prompt, one constant answer, sprayed candidates,
another record's answer) apply to every answer kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from preflight.dataset import Limits, Record, check_dataset
from preflight.findings import Findings
from preflight.grader_checks import run_grader_checks
from preflight.reward import RewardHandler

# Answers of every kind, each different from the others.
ANSWERS = [
    "\\frac{10}{9}",
    "2\\sqrt{3}",
    "\\frac{\\pi}{4}",
    "[0,1)",
    "(-\\infty, 2]",
    "\\{1,2\\}",
    "(3,-1)",
    "x=2",
    "\\text{(B)}",
    "50\\%",
    "3\\text{ cm}",
    "1\\,000",
    "x^2+2x+1",
    "\\text{Tuesday}",
    "2\\frac{1}{2}",
    "3\\times10^{5}",
    "\\frac{1}{2}",
    "(1,\\infty)",
    "\\{-3, 5\\}",
    "(0, \\frac{1}{2})",
    "y=2x+3",
    "\\text{(D)}",
    "\\sqrt{5}",
    "-\\frac{7}{3}",
]


def _dataset(tmp_path: Path, answers: list[Any]) -> list[Record]:
    path = tmp_path / "math.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "system", "content": "Put the final answer in \\boxed{}."},
                        {"role": "user", "content": f"Problem {index}: find it (x=1, [0,2))."},
                    ],
                    "reference_answer": {"final_answer": answer},
                }
            )
            + "\n"
            for index, answer in enumerate(answers)
        ),
        encoding="utf-8",
    )
    findings = Findings()
    result = check_dataset(path, "train", Limits(min_records=1), findings)
    assert findings.codes("error") == set()
    return result.valid


def _grader(tmp_path: Path, definition: dict[str, Any]) -> Path:
    path = tmp_path / "grader.json"
    path.write_text(json.dumps(definition), encoding="utf-8")
    return path


def test_math_answer_is_not_gamed_on_competition_answers(tmp_path: Path) -> None:
    records = _dataset(tmp_path, ANSWERS * 2)
    findings = Findings()
    grader = _grader(tmp_path, {"type": "math_answer", "name": "math"})
    result = run_grader_checks(RewardHandler(grader), records, findings, "math.jsonl")
    assert result.completed
    assert findings.codes("error") == set(), findings.groups
    means = {name: probe.to_dict()["mean"] for name, probe in result.probes.items()}
    assert means["reference"] == 1.0
    for probe in ("empty", "noise", "copy_prompt", "other_reference", "spray"):
        assert means[probe] == 0.0, probe
    # one answer for every record is right only where it is that record's answer
    assert means["constant"] == pytest.approx(2 / len(records), abs=1e-4)


def test_a_grader_that_rewards_a_sprayed_list_is_an_error(tmp_path: Path) -> None:
    records = _dataset(tmp_path, ANSWERS)
    # the reference anywhere in the response: the right answer among many candidates pays
    source = (
        "def grade(sample, item):\n"
        "    return float(item['reference_answer']['final_answer'] in sample['output_text'])\n"
    )
    grader = _grader(tmp_path, {"type": "python", "name": "contains", "source": source})
    findings = Findings()
    run_grader_checks(RewardHandler(grader), records, findings, "math.jsonl")
    assert "grader-rewards-spray" in findings.codes("error")
    assert "grader-rewards-constant" not in findings.codes("error")


def test_references_the_grader_cannot_read_are_errors_with_their_line(tmp_path: Path) -> None:
    # Math-Verify finds no math in either (a matrix, it reads)
    answers = [*ANSWERS[:5], "[0,1", *ANSWERS[5:10], "\\foo{3}"]
    records = _dataset(tmp_path, answers)
    findings = Findings()
    grader = _grader(tmp_path, {"type": "math_answer", "name": "math"})
    run_grader_checks(RewardHandler(grader), records, findings, "math.jsonl")
    group = findings.group("reference-unreadable")
    assert group is not None
    assert group.count == 2
    assert group.examples[0].startswith(
        "math.jsonl line 6: math: the reference answer is not math this grader reads"
    )
    assert group.examples[1].startswith("math.jsonl line 12: math: ")
