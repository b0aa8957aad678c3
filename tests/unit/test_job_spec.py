"""The job custom resource's properties and the job identity derived from them."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.job_support import fixture_event, job_modules

job_modules()
from rft_job.identity import (  # noqa: E402 (after the loader put lambda/job on sys.path)
    JOB_NAME,
    MODEL_NAME,
    REQUEST_TOKEN,
    Identity,
    attempt_of,
    identity_of,
)
from rft_job.spec import (  # noqa: E402
    NAME_PREFIX,
    NAME_PREFIX_MAX,
    PropertyError,
    delete_policy,
    parse_s3_uri,
    parse_spec,
)


def props(backend: str, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = copy.deepcopy(fixture_event(backend)["ResourceProperties"])
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def digest(properties: dict[str, Any]) -> str:
    return identity_of(parse_spec(properties)).digest


@pytest.mark.parametrize("backend", ["openai", "bedrock"])
def test_the_fixtures_parse(backend: str) -> None:
    spec = parse_spec(props(backend))
    assert spec.backend == backend
    assert spec.wait_for_validation is True
    assert spec.on_delete == "cancel"
    assert spec.delete_model_on_destroy is False
    assert isinstance(spec.hyperparameters, dict) and spec.hyperparameters
    assert spec.job_tags == {
        "environment": spec.environment,
        "project": "bedrock-rft",
        "rft:environment": spec.environment,
    }


def test_hyperparameters_keep_their_json_types() -> None:
    spec = parse_spec(props("bedrock"))
    assert spec.hyperparameters["batchSize"] == 64
    assert spec.hyperparameters["learningRate"] == pytest.approx(1e-5)
    assert spec.hyperparameters["reasoningEffort"] == "high"


JOB_DEFINING = [
    ("BaseModel", "qwen.qwen3-32b"),
    ("DatasetDigest", "0123456789abcdef"),
    (
        "TrainingDataUri",
        "s3://bedrockrft-dev-datasets-1a2b3c4d/datasets/gsm8k/0123456789abcdef/train.jsonl",
    ),
    ("GraderDigest", "0000000000000000"),
    (
        "GraderFunctionArn",
        "arn:aws:lambda:us-west-2:123456789012:function:BedrockRft-dev-OtherFunction-1a2B:3",
    ),
    (
        "Hyperparameters",
        json.dumps({"batch_size": 4, "learning_rate_multiplier": 1.0, "n_epochs": 3}),
    ),
    ("KmsKeyArn", "arn:aws:kms:us-west-2:123456789012:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
    ("VpcConfig", {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}),
    ("Region", "us-east-1"),
    ("Environment", "prod"),
]
OPERATIONAL = [
    ("OnDelete", "retain"),
    ("WaitForValidation", "false"),
    ("SendUndocumentedFields", "true"),
    ("DeleteModelOnDestroy", "true"),
    ("JobTags", {"owner": "ml-platform"}),
    ("ParameterName", "/bedrock-rft/dev/other"),
    ("OutputDataUri", "s3://bedrockrft-dev-artifacts-1a2b3c4d/output/"),
    ("RoleArn", "arn:aws:iam::123456789012:role/Other"),
    ("ServiceToken", "arn:aws:lambda:us-west-2:123456789012:function:Other"),
    ("ServiceTimeout", "1800"),
    ("NamePrefix", "rft-dev2"),
    # a new version of the same grader code (e.g. after a memory change): same grading
    (
        "GraderFunctionArn",
        "arn:aws:lambda:us-west-2:123456789012:function:BedrockRft-staging-RewardFunction-9Zy8Xw7Vu6Ts:4",
    ),
]


@pytest.mark.parametrize(("key", "value"), JOB_DEFINING)
def test_every_job_defining_input_changes_the_identity(key: str, value: Any) -> None:
    assert digest(props("openai", **{key: value})) != digest(props("openai"))


@pytest.mark.parametrize(("key", "value"), OPERATIONAL)
def test_operational_settings_keep_the_identity(key: str, value: Any) -> None:
    assert digest(props("openai", **{key: value})) == digest(props("openai"))


def test_without_a_grader_digest_the_version_stands_for_the_grader() -> None:
    bare = props("openai", GraderDigest=None)
    newer = {**bare, "GraderFunctionArn": bare["GraderFunctionArn"].rsplit(":", 1)[0] + ":4"}
    assert digest(newer) != digest(bare)


def test_the_backend_is_part_of_the_identity() -> None:
    native = props("bedrock")
    assert digest({**native, "Backend": "openai", "SendUndocumentedFields": "true"}) != digest(
        native
    )


def test_a_validation_split_sent_is_part_of_the_identity() -> None:
    native = props("bedrock")
    assert digest(props("bedrock", ValidationDataUri=None)) != digest(native)
    opted_in = props("openai", SendUndocumentedFields="true")
    with_split = {**opted_in, "ValidationDataUri": native["ValidationDataUri"]}
    assert digest(with_split) != digest(opted_in)


def test_uploads_are_named_after_the_whole_identity() -> None:
    identity = identity_of(parse_spec(props("openai")))
    assert identity.file_name("train") == f"rft-staging-{identity.digest}-train.jsonl"
    assert identity.file_name("validation") == f"rft-staging-{identity.digest}-validation.jsonl"
    with pytest.raises(ValueError, match="split 'test': must be one of train, validation"):
        identity.file_name("test")


def test_the_identity_ignores_ordering() -> None:
    base = props("bedrock", VpcConfig={"SubnetIds": ["a", "b"], "SecurityGroupIds": ["x", "y"]})
    reordered_hp = json.dumps(dict(reversed(json.loads(base["Hyperparameters"]).items())))
    reordered = {
        **base,
        "Hyperparameters": reordered_hp,
        "VpcConfig": {"SubnetIds": ["b", "a"], "SecurityGroupIds": ["y", "x"]},
    }
    assert digest(reordered) == digest(base)


def test_names_and_token_follow_the_api_limits() -> None:
    identity = identity_of(parse_spec(props("bedrock")))
    assert identity.job_name(1) == f"rft-nova-dev-{identity.digest[:16]}-1"
    assert identity.model_name(12) == f"rft-nova-dev-{identity.digest[:16]}-12"
    assert identity.request_token(3) == f"{identity.digest}-3"
    assert attempt_of(identity.job_name(7), identity) == 7
    assert attempt_of("rft-nova-dev-0000000000000000-1", identity) is None


@given(
    prefix=st.from_regex(NAME_PREFIX, fullmatch=True).filter(lambda p: len(p) <= NAME_PREFIX_MAX),
    digest_hex=st.from_regex(re.compile(r"^[0-9a-f]{64}$"), fullmatch=True),
    attempt=st.integers(min_value=1, max_value=99_999),
)
def test_any_valid_prefix_gives_valid_names(prefix: str, digest_hex: str, attempt: int) -> None:
    identity = Identity(digest=digest_hex, name_prefix=prefix)
    for name in (identity.job_name(attempt), identity.model_name(attempt)):
        assert len(name) <= 63
        assert JOB_NAME.match(name) and MODEL_NAME.match(name)
    assert REQUEST_TOKEN.match(identity.request_token(attempt))


BAD = [
    ({"Environment": None}, r"ResourceProperties\.Environment: required property is missing"),
    ({"Backend": "sagemaker"}, r"ResourceProperties\.Backend = \"sagemaker\": must be one of"),
    ({"Region": "west"}, r"ResourceProperties\.Region = \"west\": must be an AWS region"),
    ({"TrainingDataUri": "https://x/y"}, r"ResourceProperties\.TrainingDataUri = .*s3://"),
    ({"GraderFunctionArn": "my-grader"}, r"ResourceProperties\.GraderFunctionArn = .*Lambda"),
    ({"Hyperparameters": "{n_epochs: 1}"}, r"ResourceProperties\.Hyperparameters: not valid JSON"),
    ({"Hyperparameters": "[1]"}, r"ResourceProperties\.Hyperparameters: must be a JSON object"),
    (
        {"Hyperparameters": '{"n_epochs": true}'},
        r"ResourceProperties\.Hyperparameters\.n_epochs = true: must be a number or a string",
    ),
    ({"WaitForValidation": "yes"}, r"ResourceProperties\.WaitForValidation = \"yes\": must be"),
    ({"OnDelete": "delete"}, r"ResourceProperties\.OnDelete = \"delete\": must be one of"),
    ({"NamePrefix": "rft_dev"}, r"ResourceProperties\.NamePrefix = \"rft_dev\": must be"),
    ({"NamePrefix": "r" * 41}, r"ResourceProperties\.NamePrefix = .*at most 40 characters"),
    ({"ParameterName": "bedrock-rft"}, r"ResourceProperties\.ParameterName = .*starting with '/'"),
    ({"VpcConfig": {"SubnetIds": []}}, r"ResourceProperties\.VpcConfig\.SubnetIds: must be"),
    ({"JobTags": {"a": 1}}, r"ResourceProperties\.JobTags: must be an object of string values"),
    ({"Surprise": "x"}, r"ResourceProperties\.Surprise: unknown property"),
    (
        {"Hyperparameters": '{"n_epochs": 1, "eval_interval": 5}'},
        r"ResourceProperties\.Hyperparameters\.eval_interval: not documented by Bedrock's "
        r"OpenAI-compatible API; sent only with SendUndocumentedFields 'true'",
    ),
    (
        {"ValidationDataUri": "s3://bedrockrft-staging-datasets-1a2b3c4d/d/validation.jsonl"},
        r"ResourceProperties\.ValidationDataUri: validation_file is not documented .* "
        r"SendUndocumentedFields 'true'",
    ),
    ({"SendUndocumentedFields": "1"}, r"ResourceProperties\.SendUndocumentedFields = \"1\""),
]


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_bad_properties_are_named_in_one_line(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(PropertyError, match=message) as caught:
        parse_spec(props("openai", **changes))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("key", ["RoleArn", "OutputDataUri"])
def test_the_native_backend_needs_its_role_and_output(key: str) -> None:
    with pytest.raises(PropertyError, match=rf"{key}: required for backend 'bedrock'"):
        parse_spec(props("bedrock", **{key: None}))


def test_delete_reads_its_policy_leniently() -> None:
    policy = delete_policy({"OnDelete": "explode", "DeleteModelOnDestroy": "maybe", "Region": 3})
    assert policy.on_delete == "cancel"  # a running job costs money
    assert policy.delete_model_on_destroy is False  # a trained model is never lost by doubt
    assert policy.region is None and policy.backend is None and policy.parameter_name is None
    assert delete_policy(None).on_delete == "cancel"
    retained = delete_policy(props("openai", OnDelete="retain"))
    assert retained.on_delete == "retain" and retained.parameter_name == "/bedrock-rft/staging/job"


def test_s3_uris_split_into_bucket_and_key() -> None:
    assert parse_s3_uri("s3://my-bucket/a/b.jsonl") == ("my-bucket", "a/b.jsonl")
    with pytest.raises(PropertyError, match="not an s3://bucket/key URI"):
        parse_s3_uri("s3://Bad_Bucket/x")
