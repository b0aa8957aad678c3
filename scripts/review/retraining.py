"""Which environments start a new, billable job: the job custom resource of both templates.

The handler's identity (``lambda/job/rft_job/identity.py``) decides whether an update starts a
new job; :data:`IDENTITY_PROPERTIES` names the custom resource properties it is computed from
(a test pins the two against each other). Template references are compared as what they name
(``${Logical}``, ``${Logical.Attr}``); a referenced resource the diff replaces changes too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.dataset import Limits, check_dataset
from preflight.findings import Findings
from stacks.config import EnvironmentConfig
from stacks.job import RESOURCE_TYPE

# Custom resource property -> the input it stands for (rft_job.identity.identity_inputs).
IDENTITY_PROPERTIES = {
    "Environment": "environment",
    "Backend": "backend",
    "Region": "region",
    "BaseModel": "base model",
    "DatasetDigest": "dataset digest",
    "TrainingDataUri": "training data",
    "ValidationDataUri": "validation data",
    "GraderFunctionArn": "grader function",
    "GraderDigest": "grader digest",
    "Hyperparameters": "hyperparameters",
    "KmsKeyArn": "KMS key",
    "VpcConfig": "VPC",
}
# Inputs whose change makes preflight check the new data and grader.
DATA_INPUTS = {"dataset digest", "training data", "validation data", "grader digest"}


@dataclass
class Retraining:
    """The job facts of one environment."""

    retrains: bool = False
    identity_changes: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""
    old_job: str | None = None
    # What becomes of the reward version the running job calls, when the change publishes a
    # new one (None: the job's grader version is unchanged).
    grader_version: str | None = None


def job_properties(template: dict[str, Any]) -> dict[str, Any] | None:
    """The properties of the template's job custom resource, if it has one."""
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == RESOURCE_TYPE:
            properties: dict[str, Any] = resource.get("Properties", {})
            return properties
    return None


def render(value: Any) -> Any:
    """A template value with its references as text: ``${Logical}``, ``${Logical.Attr}``."""
    if isinstance(value, list):
        return [render(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return f"${{{value['Ref']}}}"
        if set(value) == {"Fn::GetAtt"}:
            return "${{{}.{}}}".format(*value["Fn::GetAtt"])
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(render(part)) for part in parts)
        return {key: render(item) for key, item in sorted(value.items())}
    return value


def _references(value: Any) -> set[str]:
    if isinstance(value, list):
        return set().union(*(_references(item) for item in value)) if value else set()
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return {value["Ref"]}
        if set(value) == {"Fn::GetAtt"}:
            return {value["Fn::GetAtt"][0]}
        return set().union(*(_references(item) for item in value.values())) if value else set()
    return set()


def identity_values(template: dict[str, Any]) -> dict[str, tuple[Any, set[str]]]:
    """Input name -> (its value as the identity sees it, the resources it refers to)."""
    properties = job_properties(template) or {}
    resources = template.get("Resources", {})
    values: dict[str, tuple[Any, set[str]]] = {}
    for key, name in IDENTITY_PROPERTIES.items():
        raw = properties.get(key)
        if key == "GraderFunctionArn" and properties.get("GraderDigest"):
            # With a content digest the identity takes the function, not its version.
            target = resources.get(raw.get("Ref", ""), {}) if isinstance(raw, dict) else {}
            if target.get("Type") == "AWS::Lambda::Version":
                raw = target["Properties"]["FunctionName"]
        if key == "Hyperparameters":
            parameters = json.loads(raw) if isinstance(raw, str) else raw or {}
            for parameter, value in sorted(parameters.items()):
                values[f"hyperparameters.{parameter}"] = (value, set())
            continue
        values[name] = (render(raw), _references(raw))
    return values


def identity_changes(
    base: dict[str, Any], head: dict[str, Any], replaced: set[str]
) -> list[dict[str, Any]]:
    """The identity inputs that differ between the base and head job resources."""
    old, new = identity_values(base), identity_values(head)
    changes = []
    for name in sorted(set(old) | set(new), key=_order):
        before, refs = old.get(name, (None, set()))
        after, _ = new.get(name, (None, set()))
        if before != after:
            changes.append({"input": name, "old": before, "new": after})
        elif refs & replaced:
            changes.append(
                {
                    "input": name,
                    "old": before,
                    "new": after,
                    "note": f"{', '.join(sorted(refs & replaced))} is replaced",
                }
            )
    return changes


def _order(name: str) -> tuple[int, str]:
    names = list(IDENTITY_PROPERTIES.values())
    head = name.split(".", maxsplit=1)[0]
    return (names.index(head) if head in names else len(names), name)


def retraining(
    config: EnvironmentConfig | None,
    base: dict[str, Any] | None,
    head: dict[str, Any] | None,
    replaced: set[str],
) -> Retraining:
    """Whether deploying the head starts a new job, and what happens to the running one."""
    old = job_properties(base) if base else None
    new = job_properties(head) if head else None
    fate = _old_job_fate(old)
    if new is None:
        why = (
            "job.start is false: deploying starts no job"
            if config is not None and not config.job.start
            else "no job resource"
        )
        if old is not None:
            return Retraining(summary=f"{why}; the job resource is removed", old_job=fate)
        return Retraining(summary=why)
    assert head is not None
    if old is None:
        return Retraining(
            retrains=True,
            identity_changes=[{"input": "job", "old": None, "new": "started"}],
            summary="a job is started (no job resource in the base)",
        )
    assert base is not None
    changes = identity_changes(base, head, replaced)
    version = grader_version(base, head, replaced)
    if not changes:
        summary = "same job identity: the running job is kept"
        if version is not None:
            summary += (
                "; a new reward version is published, and the running job keeps calling "
                "the old version, which is "
                + ("retained" if version.retained else "**deleted** by this deploy")
            )
        return Retraining(summary=summary, grader_version=_version_text(version, kept=True))
    return Retraining(
        retrains=True,
        identity_changes=changes,
        summary="the job identity changes: deploying starts a new job",
        old_job=fate,
        grader_version=_version_text(version, kept=old.get("OnDelete", "cancel") == "retain"),
    )


@dataclass(frozen=True)
class VersionChange:
    """The job's grader: a published Lambda version the change replaces with another."""

    old: str
    new: str
    retained: bool


def grader_version(
    base: dict[str, Any], head: dict[str, Any], replaced: set[str]
) -> VersionChange | None:
    """The old and new reward version when the change publishes a new one for the job.

    Whether the old version survives the deploy is decided by the *deployed* (base) template:
    CloudFormation deletes a resource the new template drops, or replaces, with the deletion
    policy it was deployed with.
    """
    old = (job_properties(base) or {}).get("GraderFunctionArn")
    new = (job_properties(head) or {}).get("GraderFunctionArn")
    old_id = old.get("Ref") if isinstance(old, dict) else None
    new_id = new.get("Ref") if isinstance(new, dict) else None
    resource = base.get("Resources", {}).get(old_id or "", {})
    if not old_id or not new_id or resource.get("Type") != "AWS::Lambda::Version":
        return None
    if old_id == new_id and old_id not in replaced:
        return None
    policy = "UpdateReplacePolicy" if old_id == new_id else "DeletionPolicy"
    return VersionChange(old_id, new_id, resource.get(policy) == "Retain")


def _version_text(version: VersionChange | None, *, kept: bool) -> str | None:
    if version is None:
        return None
    who = "the running job keeps calling" if kept else "the previous job's evaluation grades with"
    if version.retained:
        return (
            f"new reward version {version.new} published; {who} the old version "
            f"{version.old}, which is retained (make prune-versions deletes it once no "
            "record names it)"
        )
    return (
        f"new reward version {version.new} published; {who} the old version {version.old}, "
        "which this deploy **deletes** (the deployed template does not retain it): deploy "
        "the version retention on its own first"
    )


def _old_job_fate(old: dict[str, Any] | None) -> str | None:
    if old is None:
        return None
    if old.get("OnDelete", "cancel") == "retain":
        # retain keeps a job only when the stack is deleted; the clean-up after an update
        # stops the replaced job (lambda/job/rft_job/lifecycle.py).
        return (
            "the previous job is cancelled if still running (job.on_delete = retain keeps "
            "jobs only when the stack is deleted)"
        )
    return "the previous job is cancelled if still running (job.on_delete = cancel)"


@dataclass(frozen=True)
class Volume:
    """The estimated size (and, with prices, cost) of a new job."""

    records: int
    epochs: int
    samples_per_prompt: int | None
    prompt_tokens_per_epoch: int
    rollouts: int | None
    prompt_tokens: int | None
    cost: float | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return dict(self.__dict__)


def volume(config: EnvironmentConfig, project_root: Path) -> Volume:
    """Records x samples per prompt x epochs, prompt tokens from preflight's estimate, and a
    cost where the environment's ``pricing`` gives a per-token price (none is invented)."""
    findings = Findings()
    train = check_dataset(
        project_root / config.dataset / "train.jsonl", "train", Limits(), findings
    )
    records = len(train.valid)
    tokens = sum(record.prompt_tokens for record in train.valid)
    hyper = config.typed_hyperparameters
    epochs = int(getattr(hyper, "epochCount", None) or getattr(hyper, "n_epochs", None) or 1)
    samples: int | None = getattr(hyper, "trainingSamplePerPrompt", None)
    pricing = config.pricing
    note = ""
    if samples is None:
        samples = pricing.samples_per_prompt if pricing else None
        note = (
            "samples per prompt from pricing.samples_per_prompt"
            if samples
            else "samples per prompt: not documented for the OpenAI-compatible API "
            "(set pricing.samples_per_prompt)"
        )
    rollouts = records * samples * epochs if samples else None
    prompt_tokens = tokens * samples * epochs if samples else None
    cost = None
    if pricing is None:
        note = "; ".join(filter(None, [note, "no pricing in the environment's config: no cost"]))
    elif prompt_tokens is not None:
        cost = round(prompt_tokens / 1_000_000 * pricing.training_per_million_tokens, 2)
        note = "; ".join(filter(None, [note, "cost of the prompt tokens; responses not counted"]))
    return Volume(records, epochs, samples, tokens, rollouts, prompt_tokens, cost, note)
