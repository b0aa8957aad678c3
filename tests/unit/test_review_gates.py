"""make review's report of gates and moves, on the review's own data (no synthesis): a failing
gate shows as failing in the summary table and the JSON, an environment that moves is a new
stack whose old one is left alone, and paths are relative to the repository."""

from __future__ import annotations

import json
from typing import Any

from scripts.review.__main__ import environment_facts, gates, location_text, relative
from scripts.review.infra import StackChanges
from scripts.review.render import json_line, markdown
from scripts.review.synth import ROOT
from stacks.config import load_environments
from tests.conftest import cdk_context

FAILED = {"passed": False, "errors": 2, "warnings": 0, "findings": ["error E1: bad (2)"]}


def config(name: str = "staging") -> Any:
    [found] = load_environments(cdk_context(), ROOT, only=name)
    return found


def test_a_failing_preflight_fails_the_gates() -> None:
    verdict = gates(config(), FAILED)
    assert verdict["failed"] == ["preflight"]
    assert verdict["text"].startswith("**fails**: preflight (2 error(s))")
    passing = gates(config(), {**FAILED, "passed": True, "errors": 0})
    assert passing == {"failed": [], "text": "gates pass: AwsSolutions, Serverless"}
    assert gates(config(), None)["failed"] == []


def review_with(facts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "base": {"ref": "main", "commit": "0" * 40},
        "environments": facts,
        "other_stacks": {},
        "notes": [],
        "gates_failed": sorted(n for n, f in facts.items() if f["gates_failed"]),
    }


def plain_facts(**changes: Any) -> dict[str, Any]:
    facts = environment_facts(config(), StackChanges(), None, None, {})
    return {**facts, **changes}


def test_the_summary_table_and_the_json_show_a_failing_gate() -> None:
    verdict = gates(config(), FAILED)
    failing = plain_facts(
        preflight=FAILED, compliance=verdict["text"], gates_failed=verdict["failed"]
    )
    review = review_with({"dev": plain_facts(), "staging": failing})
    text = markdown(review)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()[:4]}
    assert "**fails**: preflight" in rows["staging"]
    assert "gates pass" in rows["dev"] and "fails" not in rows["dev"]
    # said right under the table, not only in the environment's section
    assert "**Failing gates:** staging: preflight" in "\n".join(text.splitlines()[:8])
    document = json.loads(json_line(review))
    assert document["gates_failed"] == ["staging"]
    assert document["environments"]["staging"]["gates_failed"] == ["preflight"]
    assert document["environments"]["staging"]["compliance"].startswith("**fails**")


def test_a_move_is_a_new_stack_and_the_old_one_is_left_alone() -> None:
    moved = {"from": "aws://unknown-account/us-west-2", "to": "aws://unknown-account/us-east-2"}
    facts = environment_facts(config(), StackChanges(), None, None, {}, moved=moved)
    assert facts["old_job"] == (
        "new stack in us-east-2; the stack in us-west-2 and its job are not touched "
        "(delete it yourself)"
    )
    text = markdown(review_with({"staging": facts}))
    assert "new stack: the environment moves" in text.splitlines()[2]
    assert "cancel" not in text
    assert location_text("aws://111111111111/eu-west-1") == "eu-west-1 (account 111111111111)"


def test_paths_are_relative_to_the_repository() -> None:
    finding = f"error E1: bad line, e.g. {ROOT}/datasets/gsm8k/train.jsonl:3"
    assert relative(finding) == "error E1: bad line, e.g. datasets/gsm8k/train.jsonl:3"
    assert str(ROOT) not in relative(f"in {ROOT}")
