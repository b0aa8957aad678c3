"""The job identity, pinned: its inputs by name, its digest for the fixture properties, and the
names derived from it.

A changed digest for unchanged inputs would make every environment start a new, billable job
on the next deploy after an upgrade (and lose track of the running one), so the digests of the
two fixture resources are golden values: change them only together with ``IDENTITY_VERSION``.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from tests.job_support import fixture_event, job_modules

job_modules()
from rft_job.identity import (  # noqa: E402 (after the loader put lambda/job on sys.path)
    IDENTITY_VERSION,
    MAX_NAME,
    Identity,
    attempt_of,
    identity_inputs,
    identity_of,
)
from rft_job.spec import JobSpec, VpcConfig, parse_spec  # noqa: E402

FUNCTION = (
    "arn:aws:lambda:us-west-2:123456789012:function:BedrockRft-staging-RewardFunction-9Zy8Xw7Vu6Ts"
)
GOLDEN = {
    "openai": "347808e32a7a057aa8adffa018d5f713061197f4ec2f164ca3a40edf476d96a4",
    "bedrock": "5f33cb2cc19dcc8f9cec5b95ceaa2ceae04b7f5a44ca12f46aeb21bd56d1fa65",
}


def spec(backend: str = "openai") -> JobSpec:
    properties = copy.deepcopy(fixture_event(backend)["ResourceProperties"])
    return parse_spec(properties)


def test_the_inputs_are_named_and_valued_as_the_digest_has_always_read_them() -> None:
    assert identity_inputs(spec()) == {
        "version": IDENTITY_VERSION,
        "environment": "staging",
        "backend": "openai",
        "region": "us-west-2",
        "base_model": "openai.gpt-oss-20b",
        "dataset": "5f0c2e9a7b1d3c4e",
        "training_data": "s3://bedrockrft-staging-datasets-1a2b3c4d/datasets/gsm8k/"
        "5f0c2e9a7b1d3c4e/train.jsonl",
        "validation_data": None,
        "grader": {"function": FUNCTION, "digest": "7c9e4b1a2d3f5e60"},
        "hyperparameters": {"batch_size": 8, "learning_rate_multiplier": 0.5, "n_epochs": 2},
        "kms_key": None,
        "vpc": None,
    }
    assert IDENTITY_VERSION == 1


@pytest.mark.parametrize("backend", sorted(GOLDEN))
def test_the_digest_of_the_fixture_resources_is_stable(backend: str) -> None:
    assert identity_of(spec(backend)).digest == GOLDEN[backend]


def test_a_configuration_only_version_keeps_the_grader_part() -> None:
    # With a grader digest, the version qualifier is dropped: a memory change keeps the job.
    for qualifier in ("3", "4", "$LATEST"):
        changed = dataclasses.replace(spec(), grader_function_arn=f"{FUNCTION}:{qualifier}")
        assert identity_inputs(changed)["grader"] == {
            "function": FUNCTION,
            "digest": "7c9e4b1a2d3f5e60",
        }
        assert identity_of(changed).digest == GOLDEN["openai"]
    # An unqualified ARN is kept whole.
    unqualified = dataclasses.replace(spec(), grader_function_arn=FUNCTION)
    assert identity_inputs(unqualified)["grader"]["function"] == FUNCTION
    # Without a digest, the published version stands for the grader's content.
    versioned = dataclasses.replace(spec(), grader_digest=None)
    assert identity_inputs(versioned)["grader"] == {"function": f"{FUNCTION}:3"}
    other = dataclasses.replace(versioned, grader_function_arn=f"{FUNCTION}:4")
    assert identity_of(other).digest != identity_of(versioned).digest


def test_the_vpc_is_read_as_sets() -> None:
    first = dataclasses.replace(
        spec("bedrock"),
        vpc=VpcConfig(subnet_ids=("subnet-b", "subnet-a"), security_group_ids=("sg-2", "sg-1")),
    )
    second = dataclasses.replace(
        first,
        vpc=VpcConfig(subnet_ids=("subnet-a", "subnet-b"), security_group_ids=("sg-1", "sg-2")),
    )
    assert identity_inputs(first)["vpc"] == {
        "subnets": ["subnet-a", "subnet-b"],
        "security_groups": ["sg-1", "sg-2"],
    }
    assert identity_of(first).digest == identity_of(second).digest
    assert identity_of(first).digest != GOLDEN["bedrock"]


def test_the_names_derived_from_an_identity() -> None:
    identity = Identity(digest="0123456789abcdef" + "f" * 48, name_prefix="rft-dev")
    assert identity.name_stem == "rft-dev-0123456789abcdef"
    assert identity.job_name(1) == "rft-dev-0123456789abcdef-1"
    assert identity.model_name(12) == "rft-dev-0123456789abcdef-12"
    assert identity.request_token(2) == f"{identity.digest}-2"
    assert identity.file_name("train") == f"rft-dev-{identity.digest}-train.jsonl"
    assert identity.file_name("validation") == f"rft-dev-{identity.digest}-validation.jsonl"
    with pytest.raises(ValueError, match="split 'test': must be one of train, validation"):
        identity.file_name("test")


def test_a_name_of_the_longest_allowed_length_passes_and_one_more_fails() -> None:
    stem_length = len("-0123456789abcdef-1")
    fits = Identity(digest="0123456789abcdef" * 4, name_prefix="r" * (MAX_NAME - stem_length))
    assert len(fits.job_name(1)) == MAX_NAME
    assert len(fits.model_name(1)) == MAX_NAME
    over = Identity(digest=fits.digest, name_prefix="r" * (MAX_NAME - stem_length + 1))
    with pytest.raises(ValueError, match=r"^job name 'r+-0123456789abcdef-1' is longer than 63"):
        over.job_name(1)
    with pytest.raises(ValueError, match=r"^custom model name "):
        over.model_name(1)
    malformed = Identity(digest=fits.digest, name_prefix="-rft")
    with pytest.raises(ValueError, match="malformed"):
        malformed.job_name(1)
    with pytest.raises(ValueError, match="client request token"):
        Identity(digest="bad digest", name_prefix="rft").request_token(1)


@pytest.mark.parametrize(
    ("name", "attempt"),
    [
        ("rft-dev-0123456789abcdef-1", 1),
        ("rft-dev-0123456789abcdef-27", 27),
        ("rft-dev-0123456789abcdef-x", None),
        ("rft-dev-0123456789abcdef-", None),
        ("rft-dev-0123456789abcdef1", None),
        ("rft-qa-0123456789abcdef-1", None),
    ],
)
def test_the_attempt_is_read_back_from_a_job_name_of_this_identity(name: str, attempt: Any) -> None:
    identity = Identity(digest="0123456789abcdef" * 4, name_prefix="rft-dev")
    assert attempt_of(name, identity) == attempt
