"""Every job identity input, end to end: a change of only that input (dataset content, grader,
base model, each hyperparameter, region) gives the synthesized job resource a new identity in
the job handler (``rft_job.identity``) and makes ``make review``'s retrain detection
(``scripts.review.retraining``) report a retrain naming that input. And the converse: a
memory-only change of the reward function keeps the identity, and the review says the running
job keeps calling the old, retained, reward version.

The base is the synthesized template of a fixture environment (the session's synth). A change
is applied to it the way synthesis applies it, through the stack's own functions (the dataset
and grader digests, the validated config's hyperparameters), each pinned against the base
template first, so a test here fails if the template stops carrying an input. The handler
sees the job resource's properties with their references resolved to stand-in ARNs (the
region's, for the region case).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scripts.review.retraining import job_properties, retraining
from stacks.config import (
    BedrockHyperparameters,
    EnvironmentConfig,
    OpenAIHyperparameters,
    parse_environment,
)
from tests.conftest import cdk_context
from tests.job_support import event_identity
from tests.lambda_loader import ROOT

ACCOUNT = "123456789012"
ENVIRONMENTS = {"openai": "staging", "bedrock": "nova-dev"}

# A changed, valid value of every hyperparameter of each backend (a test below fails when a
# hyperparameter is added to the config without a case here).
CHANGED_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "openai": {
        "n_epochs": 3,
        "batch_size": 16,
        "learning_rate_multiplier": 0.25,
        "eval_interval": 5,
        "eval_samples": 7,
        "compute_multiplier": 2.0,
        "reasoning_effort": "low",
    },
    "bedrock": {
        "epochCount": 3,
        "batchSize": 128,
        "learningRate": 2e-05,
        "trainingSamplePerPrompt": 8,
        "evalInterval": 5,
        "reasoningEffort": "low",
        "inferenceMaxTokens": 4096,
        "maxPromptLength": 2048,
    },
}
MODELS: dict[str, type[OpenAIHyperparameters] | type[BedrockHyperparameters]] = {
    "openai": OpenAIHyperparameters,
    "bedrock": BedrockHyperparameters,
}


def _raw(env: str) -> dict[str, Any]:
    raw: dict[str, Any] = copy.deepcopy(cdk_context()["environments"][env])
    if raw["backend"] == "openai":
        # The undocumented hyperparameters are sent (and part of the identity) only then.
        raw["job"] = {**raw.get("job", {}), "send_undocumented_fields": True}
    return raw


def _config(env: str, raw: dict[str, Any]) -> EnvironmentConfig:
    return parse_environment(env, raw, ROOT)


def _hyperparameters_json(config: EnvironmentConfig) -> str:
    """The Hyperparameters property as stacks/job.py writes it."""
    return json.dumps(config.typed_hyperparameters.model_dump(exclude_none=True), sort_keys=True)


# -- references resolved as CloudFormation would resolve them (stand-in names) --------------


def _resolve(value: Any, resources: dict[str, Any], region: str) -> Any:
    if isinstance(value, list):
        return [_resolve(item, resources, region) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return _ref(value["Ref"], resources, region)
    if set(value) == {"Fn::GetAtt"}:
        return _arn(value["Fn::GetAtt"][0], resources, region)
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_resolve(part, resources, region)) for part in parts)
    return {key: _resolve(item, resources, region) for key, item in value.items()}


def _arn(logical: str, resources: dict[str, Any], region: str) -> str:
    kind = resources[logical]["Type"]
    if kind == "AWS::IAM::Role":
        return f"arn:aws:iam::{ACCOUNT}:role/{logical}"
    if kind == "AWS::KMS::Key":
        return f"arn:aws:kms:{region}:{ACCOUNT}:key/{uuid.uuid5(uuid.NAMESPACE_URL, logical)}"
    if kind == "AWS::Lambda::Function":
        return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{logical[:60]}"
    return f"{logical}.arn"


def _ref(logical: str, resources: dict[str, Any], region: str) -> str:
    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    if logical in pseudo:
        return pseudo[logical]
    resource = resources[logical]
    if resource["Type"] == "AWS::Lambda::Version":
        function = _resolve(resource["Properties"]["FunctionName"], resources, region)
        number = int(hashlib.sha256(logical.encode()).hexdigest()[:4], 16) % 1000 + 1
        return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function}:{number}"
    if resource["Type"] == "AWS::Lambda::Function":
        return logical[:60]
    return logical.lower()


def identity(template: dict[str, Any]) -> str:
    """The identity digest the job handler derives from the template's job resource."""
    properties = job_properties(template)
    assert properties is not None
    region = properties["Region"]
    resolved = _resolve(properties, template["Resources"], region)
    resolved["SendUndocumentedFields"] = "true"  # not an identity input; lets every field in
    return str(event_identity({"ResourceProperties": resolved}).digest)


# -- the changes --------------------------------------------------------------------------

Change = Callable[[str, dict[str, Any], Path], tuple[EnvironmentConfig, dict[str, Any]]]


def _with_job(template: dict[str, Any], **properties: Any) -> dict[str, Any]:
    head = copy.deepcopy(template)
    for resource in head["Resources"].values():
        if "Hyperparameters" in resource.get("Properties", {}):
            resource["Properties"].update(properties)
    return head


def _replace_text(template: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    assert old in json.dumps(template)
    replaced: dict[str, Any] = json.loads(json.dumps(template).replace(old, new))
    return replaced


def _new_version(template: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """The template as a change of the function publishes it: the reward version under a new
    logical id (aws-cdk-lib names ``current_version`` by a hash of the function)."""
    [old] = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Version"]
    new = old[:-8] + "FEEDBEEF"
    return _replace_text(template, old, new), old, new


def dataset_content(
    env: str, base: dict[str, Any], tmp: Path
) -> tuple[EnvironmentConfig, dict[str, Any]]:
    from stacks.staging import dataset_digest

    config = _config(env, _raw(env))
    folder = tmp / "gsm8k"
    shutil.copytree(ROOT / config.dataset, folder)
    old = dataset_digest(folder)
    assert job_properties(base)["DatasetDigest"] == old  # type: ignore[index]
    train = folder / "train.jsonl"
    lines = train.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    record["reference_answer"] = {"final_answer": "-1"}  # one answer of one record
    train.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n", encoding="utf-8")
    # The staged objects are content-addressed: every property naming them changes with it.
    return config, _replace_text(base, old, dataset_digest(folder))


def grader(env: str, base: dict[str, Any], tmp: Path) -> tuple[EnvironmentConfig, dict[str, Any]]:
    from stacks.reward import source_digest

    config = _config(env, _raw(env))
    grader_file = ROOT / config.grader
    code = [ROOT / "lambda" / "reward", ROOT / "lambda" / "common"]
    old = source_digest([*code, grader_file], extra=config.reward_function.extra_packages)
    assert job_properties(base)["GraderDigest"] == old  # type: ignore[index]
    changed = tmp / grader_file.name
    definition = json.loads(grader_file.read_text(encoding="utf-8"))
    changed.write_text(json.dumps({**definition, "name": "renamed"}), encoding="utf-8")
    new = source_digest([*code, changed], extra=config.reward_function.extra_packages)
    head, _, _ = _new_version(base)
    return config, _with_job(head, GraderDigest=new)


def base_model(
    env: str, base: dict[str, Any], tmp: Path
) -> tuple[EnvironmentConfig, dict[str, Any]]:
    raw = _raw(env)
    assert job_properties(base)["BaseModel"] == raw["base_model"]  # type: ignore[index]
    other = {"openai": "qwen.qwen3-32b", "bedrock": "amazon.nova-2-lite-v1:0"}[raw["backend"]]
    config = _config(env, {**raw, "base_model": other, "allow_unlisted_model": True})
    return config, _with_job(base, BaseModel=config.base_model)


def region(env: str, base: dict[str, Any], tmp: Path) -> tuple[EnvironmentConfig, dict[str, Any]]:
    raw = _raw(env)
    assert job_properties(base)["Region"] == raw["region"]  # type: ignore[index]
    other = {"us-west-2": "us-east-2", "us-east-1": "us-west-2"}[raw["region"]]
    config = _config(env, {**raw, "region": other, "allow_unlisted_model": True})
    return config, _with_job(base, Region=config.region)


def _hyperparameter(name: str) -> Change:
    def change(
        env: str, base: dict[str, Any], tmp: Path
    ) -> tuple[EnvironmentConfig, dict[str, Any]]:
        raw = _raw(env)
        original = _config(env, raw)
        # The base template carries the config's hyperparameters as stacks/job.py writes them.
        synthesized = json.loads(job_properties(base)["Hyperparameters"])  # type: ignore[index]
        assert json.loads(_hyperparameters_json(original)) == synthesized
        value = CHANGED_HYPERPARAMETERS[original.backend][name]
        assert synthesized.get(name) != value
        config = _config(env, {**raw, "hyperparameters": {**raw["hyperparameters"], name: value}})
        return config, _with_job(base, Hyperparameters=_hyperparameters_json(config))

    return change


CASES: list[tuple[str, str, Change, str]] = [
    (backend, what, change, expected)
    for backend in ENVIRONMENTS
    for what, change, expected in [
        ("dataset content", dataset_content, "dataset digest"),
        ("grader", grader, "grader digest"),
        ("base model", base_model, "base model"),
        ("region", region, "region"),
        *[
            (f"hyperparameter {name}", _hyperparameter(name), f"hyperparameters.{name}")
            for name in CHANGED_HYPERPARAMETERS[backend]
        ],
    ]
]


@pytest.fixture(scope="module")
def bases(templates: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The synthesized template (as JSON data) of each backend's fixture environment, with
    the openai environment's undocumented fields on (they are identity inputs only then)."""
    found = {}
    for backend, env in ENVIRONMENTS.items():
        template = copy.deepcopy(templates[env].to_json())
        found[backend] = _with_job(template, SendUndocumentedFields="true")
    return found


def test_every_hyperparameter_of_the_config_has_a_case() -> None:
    for backend, model in MODELS.items():
        assert set(CHANGED_HYPERPARAMETERS[backend]) == set(model.model_fields), backend


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{backend}-{what.replace(' ', '-')}" for backend, what, _, _ in CASES]
)
def test_changing_only_one_input_changes_the_identity_and_the_review_retrains(
    bases: dict[str, dict[str, Any]], tmp_path: Path, case: tuple[str, str, Change, str]
) -> None:
    backend, what, change, expected = case
    base = bases[backend]
    config, head = change(ENVIRONMENTS[backend], base, tmp_path)
    assert identity(head) != identity(base), what
    found = retraining(config, base, head, set())
    assert found.retrains, (what, found.summary)
    assert found.summary == "the job identity changes: deploying starts a new job"
    inputs = [entry["input"] for entry in found.identity_changes]
    assert expected in inputs, (what, inputs)
    # Only this input (and the staged data it addresses) changed.
    allowed = {expected, "training data", "validation data", "grader function"}
    assert set(inputs) <= allowed, (what, inputs)
    if what == "grader":  # a new version for the new job; the old one stays for the old job
        assert found.grader_version is not None
        assert found.grader_version.endswith(
            "which is retained (make prune-versions deletes it once no record names it)"
        )
    else:
        assert found.grader_version is None


# -- a change that publishes a new reward version and keeps the job ------------------------


def _memory_change(base: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    head, old, new = _new_version(base)
    [function] = [
        v
        for k, v in head["Resources"].items()
        if v["Type"] == "AWS::Lambda::Function" and k.startswith("RewardFunction")
    ]
    function["Properties"]["MemorySize"] = function["Properties"]["MemorySize"] * 2
    return head, old, new


@pytest.mark.parametrize("backend", list(ENVIRONMENTS))
def test_a_memory_only_change_keeps_the_job_on_the_old_retained_version(
    bases: dict[str, dict[str, Any]], backend: str
) -> None:
    from scripts.review.render import _retraining_section

    base = bases[backend]
    head, old, new = _memory_change(base)
    assert identity(head) == identity(base)
    config = _config(ENVIRONMENTS[backend], _raw(ENVIRONMENTS[backend]))
    found = retraining(config, base, head, set())
    assert not found.retrains
    assert found.summary == (
        "same job identity: the running job is kept; a new reward version is published, and "
        "the running job keeps calling the old version, which is retained"
    )
    assert found.grader_version is not None
    assert f"new reward version {new} published" in found.grader_version
    assert f"the running job keeps calling the old version {old}, which is retained" in (
        found.grader_version
    )
    facts: dict[str, Any] = {
        "retraining": found.summary,
        "identity_changes": [],
        "grader_version": found.grader_version,
    }
    assert f"- {found.grader_version}" in _retraining_section(facts)


def test_a_version_the_deployed_template_does_not_retain_is_reported_deleted(
    bases: dict[str, dict[str, Any]],
) -> None:
    """The first deploy of a function change from a template without the retention: the
    deployed template's deletion policy decides, and the review says the version goes."""
    base = copy.deepcopy(bases["openai"])
    [version] = [v for v in base["Resources"].values() if v["Type"] == "AWS::Lambda::Version"]
    version["DeletionPolicy"] = version["UpdateReplacePolicy"] = "Delete"
    head, _, _ = _memory_change(base)
    found = retraining(None, base, head, set())
    assert not found.retrains
    assert found.summary.endswith("which is **deleted** by this deploy")
    assert found.grader_version is not None and "deploy the version retention" in (
        found.grader_version
    )


def test_an_unchanged_function_publishes_no_version(bases: dict[str, dict[str, Any]]) -> None:
    base = bases["bedrock"]
    found = retraining(None, base, copy.deepcopy(base), set())
    assert (found.retrains, found.grader_version) == (False, None)
    assert found.summary == "same job identity: the running job is kept"
