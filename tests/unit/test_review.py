"""``make review``: two commits in a temporary git repository, reviewed as a user would.

The repository is a copy of the project's files with the fixture config as its ``cdk.json``
(nova-dev given a grader of its own, so that a grader change is seen to reach exactly the
environments that use it); it borrows this checkout's ``.venv``, ``node_modules`` and built
bundles. The base commit is synthesized once (the review's own cache of base templates) and
each case commits one change on top of it and runs ``make review FORMAT=json``.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.review.synth import link_staged_assets
from stacks.bundle_store import link_tree
from tests.conftest import FIXTURE_CDK_JSON
from tests.job_support import event_identity, fixture_event
from tests.lambda_loader import ROOT

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("review")]

NOVA_GRADER = "tests/fixtures/graders/gsm8k-nova.json"
TIMINGS: dict[str, float] = {}


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _tracked_files() -> list[str]:
    listing = _git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [name for name in listing.split("\0") if name and (ROOT / name).is_file()]


class Repo:
    """The temporary repository and its base commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = ""

    def cdk_json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / "cdk.json").read_text(encoding="utf-8"))
        return data

    def write_cdk_json(self, data: dict[str, Any]) -> None:
        (self.path / "cdk.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def case(self, name: str, change: Callable[[Repo], None], status: int = 0) -> dict[str, Any]:
        """Commit ``change`` on top of the base and review it; the JSON document."""
        _git(self.path, "checkout", "--quiet", "--force", "-B", name, self.base)
        change(self)
        _git(self.path, "add", "-A")
        _git(self.path, "commit", "--quiet", "-m", name)
        started = time.perf_counter()
        done = subprocess.run(
            [
                *("make", "--no-print-directory", "-o", ".venv/.installed"),
                *("-o", "node_modules/.installed", "review", f"BASE={self.base}", "FORMAT=json"),
            ],
            cwd=self.path,
            env={k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "PYTEST"))},
            capture_output=True,
            text=True,
            check=False,
        )
        TIMINGS[name] = time.perf_counter() - started
        print(f"review {name}: {TIMINGS[name]:.1f} s")
        assert done.returncode == status, done.stderr[-3000:]
        review: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return review


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    """The base commit: the project's files, the fixture config, nova-dev's own grader."""
    path = tmp_path_factory.mktemp("review-repo")
    for name in _tracked_files():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, path / name)
    cdk_json = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))
    cdk_json["context"] = json.loads(FIXTURE_CDK_JSON.read_text(encoding="utf-8"))["context"]
    cdk_json["context"]["environments"]["nova-dev"]["grader"] = NOVA_GRADER
    shutil.copyfile(ROOT / "tests/fixtures/graders/gsm8k.json", path / NOVA_GRADER)
    for name in (".venv", "node_modules"):
        (path / name).symlink_to(ROOT / name)
    for folder in ("deps", "bundles", "assets", "objects"):
        if (ROOT / ".build" / folder).is_dir():
            link_tree(ROOT / ".build" / folder, path / ".build" / folder, ignore=("*.lock", ".*"))
    # and this checkout's staged bundles, as make review gives them to the base's worktree
    link_staged_assets(ROOT / "cdk.out", path / "cdk.out")
    repository = Repo(path)
    repository.write_cdk_json(cdk_json)
    _git(path, "init", "--quiet", "-b", "main")
    # .gitignore names them as folders ('.venv/'): links to them need their own line.
    (path / ".git" / "info" / "exclude").write_text(".venv\nnode_modules\n", encoding="utf-8")
    _git(path, "config", "user.email", "review@example.com")
    _git(path, "config", "user.name", "review test")
    _git(path, "add", "-A")
    _git(path, "commit", "--quiet", "-m", "base")
    repository.base = _git(path, "rev-parse", "HEAD")
    yield repository
    print(f"review timings (s): {json.dumps({k: round(v, 1) for k, v in TIMINGS.items()})}")


def _hyperparameter(repo: Repo) -> None:
    data = repo.cdk_json()
    data["context"]["environments"]["staging"]["hyperparameters"]["n_epochs"] = 3
    repo.write_cdk_json(data)


def _grader(repo: Repo) -> None:
    path = repo.path / "tests/fixtures/graders/gsm8k.json"
    grader = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**grader, "tolerance": 0.001}, indent=2), encoding="utf-8")


def _iam_and_bucket(repo: Repo) -> None:
    data = repo.cdk_json()
    data["context"]["environments"]["staging"]["mantle"] = {"condition_on_model": False}
    repo.write_cdk_json(data)
    staging = repo.path / "stacks/staging.py"
    text = staging.read_text(encoding="utf-8")
    anchor = '            "AccessLogs",\n'
    assert anchor in text
    named = anchor + '            bucket_name=f"rft-{config.name}-access-logs",\n'
    staging.write_text(text.replace(anchor, named), encoding="utf-8")


def _readme(repo: Repo) -> None:
    readme = repo.path / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nA line.\n", encoding="utf-8")


@pytest.fixture(scope="module")
def hyperparameter(repo: Repo) -> dict[str, Any]:
    """staging trains 3 epochs instead of 2."""
    return repo.case("hyperparameter", _hyperparameter)


def test_a_hyperparameter_retrains_exactly_its_environment(hyperparameter: dict[str, Any]) -> None:
    environments = hyperparameter["environments"]
    assert {name for name, facts in environments.items() if facts["retrains"]} == {"staging"}
    staging = environments["staging"]
    assert staging["identity_changes"] == [
        {"input": "hyperparameters.n_epochs", "old": 2, "new": 3}
    ]
    assert staging["volume"]["epochs"] == 3
    assert staging["volume"]["records"] > 0
    assert staging["volume"]["cost"] is None  # no price in the config: none is invented
    assert staging["preflight"] is None  # the data and grader did not change
    assert "cancelled" in staging["old_job"]
    assert environments["dev"]["retraining"].startswith("job.start is false")
    assert hyperparameter["gates_failed"] == []


def test_a_grader_change_retrains_every_environment_using_it(repo: Repo) -> None:
    review = repo.case("grader", _grader)
    environments = review["environments"]
    assert {name for name, facts in environments.items() if facts["retrains"]} == {
        "staging",
        "prod",
    }
    assert environments["dev"]["retrains"] is False  # the same grader, but job.start false
    assert environments["nova-dev"]["retrains"] is False  # a grader of its own
    for name in ("staging", "prod"):
        inputs = {change["input"] for change in environments[name]["identity_changes"]}
        assert inputs == {"grader digest"}
        assert environments[name]["preflight"]["passed"] is True
    # prod has job.on_delete retain, which keeps jobs on stack deletion only
    assert environments["prod"]["old_job"].startswith("the previous job is cancelled")
    assert "only when the stack is deleted" in environments["prod"]["old_job"]


def test_an_iam_widening_and_a_bucket_replacement_are_listed(repo: Repo) -> None:
    review = repo.case("iam-and-bucket", _iam_and_bucket)
    staging = review["environments"]["staging"]
    assert staging["iam_changes"] > 0
    added = staging["iam"]["statements_added"]
    assert any("bedrock-mantle:CreateFineTuningJob" in s["action"] for s in added)
    for name, facts in review["environments"].items():
        replaced = [e for e in facts["replaced"] if e["type"] == "AWS::S3::Bucket"]
        assert [e["properties"] for e in replaced] == [["BucketName"]], name
        assert any("AccessLogs" in risk for risk in facts["data_loss"]), name
        if name != "staging":
            assert facts["iam_changes"] == 0, name


def test_a_readme_change_changes_nothing(repo: Repo) -> None:
    review = repo.case("readme", _readme)
    for name, facts in review["environments"].items():
        assert facts["resource_changes"] == 0, (name, facts["added"], facts["removed"])
        assert facts["iam_changes"] == 0
        assert facts["retrains"] is False
    assert review["notes"] == []


def _region_move(repo: Repo) -> None:
    data = repo.cdk_json()
    dev = data["context"]["environments"]["dev"]
    dev.update({"region": "us-east-2", "allow_unlisted_model": True})
    repo.write_cdk_json(data)


def test_a_region_move_is_a_new_stack_and_leaves_the_old_one(repo: Repo) -> None:
    review = repo.case("region-move", _region_move)
    dev = review["environments"]["dev"]
    assert dev["moved"] == {
        "from": "aws://unknown-account/us-west-2",
        "to": "aws://unknown-account/us-east-2",
    }
    # every resource is new where the stack now deploys; nothing is replaced or removed
    assert dev["replaced"] == [] and dev["removed"] == [] and dev["modified"] == 0
    assert len(dev["added"]) == dev["resource_changes"] > 0
    assert dev["old_job"] == (
        "new stack in us-east-2; the stack in us-west-2 and its job are not touched "
        "(delete it yourself)"
    )
    assert f"BedrockRft-dev: {dev['old_job']}" in review["notes"]
    assert review["environments"]["staging"]["moved"] is None


def _broken_dataset(repo: Repo) -> None:
    path = repo.path / "tests/fixtures/datasets/gsm8k/train.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(["{not json", *lines[1:]]) + "\n", encoding="utf-8")


def test_a_failing_preflight_shows_as_failing(repo: Repo) -> None:
    # the review exits 1 after its report when a gate fails (make reports that as 2)
    review = repo.case("broken-dataset", _broken_dataset, status=2)
    failing = [n for n, f in review["environments"].items() if f["gates_failed"]]
    assert failing and review["gates_failed"] == sorted(failing)
    for name in failing:
        facts = review["environments"][name]
        assert facts["preflight"]["passed"] is False
        assert facts["compliance"].startswith("**fails**: preflight")
        assert not any(str(repo.path) in finding for finding in facts["preflight"]["findings"])


# -- the identity inputs, pinned against the job handler's own identity --------------------

PERTURBED: dict[str, Callable[[Any], Any]] = {
    "Environment": lambda v: v + "x",
    "Region": lambda v: "us-east-2",
    "BaseModel": lambda v: v + "-b",
    "NamePrefix": lambda v: v + "x",
    "TrainingDataUri": lambda v: v.replace("train.jsonl", "train2.jsonl"),
    "ValidationDataUri": lambda v: v.replace("validation.jsonl", "validation2.jsonl"),
    "DatasetDigest": lambda v: "0" * 16,
    "OutputDataUri": lambda v: v + "other/",
    "GraderFunctionArn": lambda v: v.replace("RewardFunction", "RewardFunctionB"),
    "GraderDigest": lambda v: "0" * 16,
    "Hyperparameters": lambda v: json.dumps({**json.loads(v), "zz": 1}, sort_keys=True),
    "RoleArn": lambda v: v + "B",
    "KmsKeyArn": lambda v: v[:-1] + "0",
    "WaitForValidation": lambda v: "false",
    "OnDelete": lambda v: "retain",
    "ParameterName": lambda v: v + "x",
    "JobTags": lambda v: {**v, "more": "tags"},
}


@pytest.mark.parametrize("backend", ["openai", "bedrock"])
def test_identity_properties_are_the_handlers(backend: str) -> None:
    from scripts.review.retraining import IDENTITY_PROPERTIES

    event = fixture_event(backend)
    identity = event_identity(event).digest
    for key, perturb in PERTURBED.items():
        if key not in event["ResourceProperties"]:
            continue
        changed = copy.deepcopy(event)
        changed["ResourceProperties"][key] = perturb(event["ResourceProperties"][key])
        if key == "Hyperparameters" and backend == "openai":
            changed["ResourceProperties"]["SendUndocumentedFields"] = "true"
        assert (event_identity(changed).digest != identity) == (key in IDENTITY_PROPERTIES), key


# -- the volume and cost of a new job (no synthesis) ---------------------------------------


def _environment(name: str, **changes: Any) -> Any:
    from stacks.config import parse_environment
    from tests.conftest import cdk_context

    raw = {**cdk_context()["environments"][name], **changes}
    return parse_environment(name, raw, ROOT)


def test_volume_multiplies_records_samples_and_epochs_and_prices_only_what_is_given() -> None:
    from preflight.dataset import Limits, check_dataset
    from preflight.findings import Findings
    from scripts.review.retraining import volume

    nova = _environment("nova-dev", pricing={"training_per_million_tokens": 2.5})
    train = check_dataset(ROOT / nova.dataset / "train.jsonl", "train", Limits(), Findings())
    tokens = sum(record.prompt_tokens for record in train.valid)
    found = volume(nova, ROOT)
    assert (found.records, found.samples_per_prompt, found.epochs) == (len(train.valid), 4, 2)
    assert found.rollouts == len(train.valid) * 4 * 2
    assert found.prompt_tokens == tokens * 4 * 2
    assert found.cost == round(tokens * 4 * 2 / 1e6 * 2.5, 2)

    staging = volume(_environment("staging"), ROOT)  # openai: samples per prompt undocumented
    assert (staging.samples_per_prompt, staging.rollouts, staging.cost) == (None, None, None)
    assert "pricing.samples_per_prompt" in staging.note
    given = _environment(
        "staging", pricing={"training_per_million_tokens": 1.0, "samples_per_prompt": 8}
    )
    assert volume(given, ROOT).rollouts == len(train.valid) * 8 * 2


def test_a_bad_price_is_one_config_line() -> None:
    from stacks.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        _environment("staging", pricing={"training_per_million_tokens": 0})
    assert caught.value.lines == [
        "environment 'staging': pricing.training_per_million_tokens = 0: "
        "Input should be greater than 0"
    ]
