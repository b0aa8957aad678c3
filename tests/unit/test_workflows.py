"""The GitHub workflows: every action pinned by commit SHA with its tag beside it, external
checkouts pinned, no job that may write to a pull request runs its code, and deploy
credentials taken only after the installs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lambda_loader import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s+v\d+(\.\d+)*\s*$")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_sha_with_its_tag(path: Path) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if re.match(r"^\s*(-\s+)?uses:", line) and "uses: ./" not in line:
            assert PINNED.match(line), f"{path.name}:{number}: {line.strip()}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_keep_no_credentials_and_external_ones_are_pinned(path: Path) -> None:
    for job in load(path)["jobs"].values():
        for step in job.get("steps", []):
            if "actions/checkout@" not in step.get("uses", ""):
                continue
            options = step.get("with", {})
            assert options.get("persist-credentials") is False, (path.name, step)
            if "repository" in options:
                assert re.fullmatch(r"[0-9a-f]{40}", str(options.get("ref"))), (path.name, step)


def test_no_job_that_writes_to_pull_requests_runs_their_code() -> None:
    writers = 0
    for path in WORKFLOWS:
        workflow = load(path)
        raw: dict[Any, Any] = workflow
        events = raw.get(True, raw.get("on"))  # YAML 1.1 reads `on` as true
        assert "pull_request_target" not in (events or {}), path.name
        for name, job in workflow["jobs"].items():
            permissions = job.get("permissions", workflow.get("permissions", {}))
            if not isinstance(permissions, dict) or permissions.get("pull-requests") != "write":
                continue
            writers += 1
            for step in job.get("steps", []):
                assert "actions/checkout@" not in step.get("uses", ""), (path.name, name)
                assert not re.search(r"\b(make|pip|npm|npx|python)\b", step.get("run", "")), (
                    path.name,
                    name,
                    step.get("name"),
                )
    assert writers == 1  # review.yml's comment job


def test_deploy_credentials_come_after_the_installs() -> None:
    steps = load(ROOT / ".github/workflows/deploy-environment.yml")["jobs"]["deploy"]["steps"]
    uses = [step.get("uses", "") for step in steps]
    [credentials] = [i for i, u in enumerate(uses) if "configure-aws-credentials" in u]
    installs = [i for i, step in enumerate(steps) if "make install" in step.get("run", "")]
    assert installs and max(installs) < credentials
    assert [step.get("run", "") for step in steps[credentials + 1 :]] == [
        'make deploy ENV="$ENVIRONMENT" APPROVAL=never'
    ]


def test_dependabot_updates_the_actions() -> None:
    config = load(ROOT / ".github/dependabot.yml")
    assert any(u["package-ecosystem"] == "github-actions" for u in config["updates"])
