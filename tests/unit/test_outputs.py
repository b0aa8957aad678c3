"""Stack outputs keep the names the README documents (scripts and people read them)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.lambda_loader import ROOT

# Every stack: the dashboard, notifications, the collector and the staged data.
STACK_OUTPUTS = {
    "DashboardUrl",
    "NotificationTopicArn",
    "MetricsCollectorName",
    "DatasetsBucket",
    "TrainingDataUri",
    "ArtifactsBucket",
    "RewardFunctionVersionArn",
}
# Stacks that start a job (job.start, the default).
JOB_OUTPUTS = {"JobId", "JobBackend", "JobRecordParameter", "JobStatusCommand", "JobConsole"}
STARTS_A_JOB = {"dev": False, "staging": True, "prod": True, "nova-dev": True}
# Stacks that evaluate their job (job.start and evaluation.enabled, the defaults).
EVALUATION_OUTPUTS = {"EvaluationStateMachine", "ModelParameter"}


@pytest.mark.parametrize("env", sorted(STARTS_A_JOB))
def test_outputs_have_their_documented_names(templates: dict[str, Any], env: str) -> None:
    names = set(templates[env].to_json().get("Outputs", {}))
    assert names >= STACK_OUTPUTS
    assert (names >= JOB_OUTPUTS) is STARTS_A_JOB[env]
    assert not names & JOB_OUTPUTS or STARTS_A_JOB[env]
    assert (names >= EVALUATION_OUTPUTS) is STARTS_A_JOB[env]
    assert not names & EVALUATION_OUTPUTS or STARTS_A_JOB[env]
    hashed = {name for name in names if re.search(r"[0-9A-F]{8}$", name)}
    assert not hashed, "an output's name is its construct id, without a path hash"


def test_the_readme_names_the_outputs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in sorted(STACK_OUTPUTS | JOB_OUTPUTS | EVALUATION_OUTPUTS):
        assert f"`{name}`" in readme, name
