"""The evaluation's first state (``handler.prepare``): the job record in SSM (moto) and the
stack's settings become the context; the reward version the job trained with wins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import fake_credentials
from tests.lambda_loader import LambdaContext, load_handler

handler = load_handler("evaluation")

from rft_eval.prepare import CONTEXT_KEYS, PrepareError, Settings, prepare  # noqa: E402

REGION = "us-west-2"
RECORD = "/bedrock-rft/staging/job"
REWARD = "arn:aws:lambda:us-west-2:123456789012:function:reward"
SETTINGS = {
    "samples_per_prompt": 2,
    "temperature": 0.7,
    "max_tokens": 1024,
    "pass_threshold": 0.5,
    "limit": 40,
    "bootstrap_resamples": 2000,
    "seed": 3,
    "promote_when": {"min_improvement": 0.05, "require_ci_above_zero": True},
}


def environment(backend: str = "openai", **overrides: str) -> dict[str, str]:
    """The variables the evaluation construct sets on the prepare function."""
    return {
        "RFT_ENVIRONMENT": "staging",
        "RFT_BACKEND": backend,
        "AWS_REGION": REGION,
        "BASE_MODEL": "openai.gpt-oss-20b" if backend == "openai" else "us.amazon.nova-2-lite-v1:0",
        "JOB_PARAMETER": RECORD,
        "REWARD_FUNCTION_ARN": f"{REWARD}:9",
        "VALIDATION_BUCKET": "datasets-bucket",
        "VALIDATION_KEY": "datasets/gsm8k/58627ea91df1a691/validation.jsonl",
        "ARTIFACTS_BUCKET": "artifacts-bucket",
        "EVALUATIONS_PREFIX": "evaluations/",
        "EVALUATION_SETTINGS": json.dumps(SETTINGS),
        "MODEL_PARAMETER": "/bedrock-rft/staging/model",
        "TOPIC_ARN": "arn:aws:sns:us-west-2:123456789012:rft-staging",
        "METRICS_NAMESPACE": "BedrockRft/Evaluation",
        **overrides,
    }


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    fake_credentials(monkeypatch, REGION)
    monkeypatch.delenv("BEDROCK_MANTLE_ROUTE", raising=False)
    handler._client.cache_clear()
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION)
    handler._client.cache_clear()


def record(ssm: Any, **fields: Any) -> None:
    """The job record as the job custom resource (and the collector) write it."""
    value = {
        "job_id": "ftjob-abc",
        "backend": "openai",
        "region": REGION,
        "status": "succeeded",
        "fine_tuned_model": "ft:openai.gpt-oss-20b:acme::abc",
        "identity": "0" * 64,
        "reward_function_arn": f"{REWARD}:7",
        "updated_at": "2026-11-30T06:00:00+00:00",
        **fields,
    }
    ssm.put_parameter(Name=RECORD, Value=json.dumps(value), Type="String", Overwrite=True)


def test_the_openai_context(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    record(ssm)
    for key, value in environment().items():
        monkeypatch.setenv(key, value)
    context = handler.prepare({"job_id": "ftjob-abc", "backend": "openai"}, LambdaContext())
    assert tuple(context) == CONTEXT_KEYS
    assert context == {
        "environment": "staging",
        "region": REGION,
        "backend": "openai",
        "job_id": "ftjob-abc",
        "base_model": "openai.gpt-oss-20b",
        "tuned_model": "ft:openai.gpt-oss-20b:acme::abc",
        "custom_model_arn": None,
        # the version the job trained with (the record), not the one the stack deploys now
        "reward_function_arn": f"{REWARD}:7",
        "validation": {
            "bucket": "datasets-bucket",
            "key": "datasets/gsm8k/58627ea91df1a691/validation.jsonl",
        },
        "artifacts": {"bucket": "artifacts-bucket", "prefix": "evaluations/ftjob-abc/"},
        "settings": SETTINGS,
        "model_parameter": "/bedrock-rft/staging/model",
        "topic_arn": "arn:aws:sns:us-west-2:123456789012:rft-staging",
        "metrics_namespace": "BedrockRft/Evaluation",
        "mantle_route": "/v1",
    }


def test_the_native_context_waits_for_the_deployment(ssm: Any) -> None:
    job = "arn:aws:bedrock:us-west-2:123456789012:model-customization-job/rft-staging-x-1/abc123"
    model = "arn:aws:bedrock:us-west-2:123456789012:custom-model/amazon.nova-2-lite-v1:0:256k/m1"
    record(ssm, job_id=job, backend="bedrock", fine_tuned_model=model)
    settings = Settings.from_env(environment("bedrock"))
    context = prepare({"job_id": job, "backend": "bedrock"}, settings, ssm)
    assert context["tuned_model"] is None  # the deployment ARN, after the Serve states
    assert context["custom_model_arn"] == model  # from the record when the trigger has none
    assert context["base_model"] == "us.amazon.nova-2-lite-v1:0"
    assert context["artifacts"]["prefix"] == "evaluations/abc123/"


def test_the_triggers_model_wins_over_a_record_not_yet_updated(ssm: Any) -> None:
    record(ssm, fine_tuned_model=None, status="running")
    settings = Settings.from_env(environment())
    event = {"job_id": "ftjob-abc", "fine_tuned_model": "ft:openai.gpt-oss-20b:acme::new"}
    assert prepare(event, settings, ssm)["tuned_model"] == "ft:openai.gpt-oss-20b:acme::new"


def test_a_record_without_the_reward_version_falls_back_to_the_stacks(ssm: Any) -> None:
    record(ssm, reward_function_arn=None)
    context = prepare({"job_id": "ftjob-abc"}, Settings.from_env(environment()), ssm)
    assert context["reward_function_arn"] == f"{REWARD}:9"


@pytest.mark.parametrize("current", ["ftjob-newer", None])
def test_a_job_that_is_not_the_current_one_is_skipped(ssm: Any, current: str | None) -> None:
    if current:
        record(ssm, job_id=current)
    result = prepare({"job_id": "ftjob-abc"}, Settings.from_env(environment()), ssm)
    assert set(result) == {"skip"}
    assert "ftjob-abc is not the current job" in result["skip"]
    assert (current or "no job") in result["skip"]


@pytest.mark.parametrize(
    ("event", "fields", "message"),
    [
        ({}, {}, "execution input: must be"),
        ({"job_id": "ftjob-abc", "backend": "bedrock"}, {}, "runs backend openai"),
        ({"job_id": "ftjob-abc"}, {"fine_tuned_model": None}, "no fine_tuned_model"),
    ],
)
def test_what_cannot_be_evaluated_is_one_line(
    ssm: Any, event: dict[str, Any], fields: dict[str, Any], message: str
) -> None:
    record(ssm, **fields)
    with pytest.raises(PrepareError, match=message) as raised:
        prepare(event, Settings.from_env(environment()), ssm)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"VALIDATION_KEY": ""}, "VALIDATION_KEY is not set"),
        ({"EVALUATION_SETTINGS": "{"}, "EVALUATION_SETTINGS: not JSON"),
        ({"EVALUATION_SETTINGS": "[]"}, "must be a JSON object"),
        ({"EVALUATION_SETTINGS": '{"seed": 0}'}, "lacks samples_per_prompt"),
    ],
)
def test_missing_settings_name_the_variable(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(PrepareError, match=message):
        Settings.from_env(environment(**overrides))


def test_the_environments_mantle_route_is_the_contexts(
    ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(ssm)
    monkeypatch.setenv("BEDROCK_MANTLE_ROUTE", "/openai/v1")
    context = prepare({"job_id": "ftjob-abc"}, Settings.from_env(environment()), ssm)
    assert context["mantle_route"] == "/openai/v1"


@pytest.mark.parametrize("backend", ["openai", "bedrock"])
def test_the_context_is_what_the_workers_and_the_aggregation_parse(ssm: Any, backend: str) -> None:
    """The contract between the first state and the later ones: prepare's context (with the
    Serve states' deployment ARN on the native backend) parses as the workers' Context."""
    from rft_eval.settings import parse_context

    job = (
        "ftjob-abc"
        if backend == "openai"
        else (
            "arn:aws:bedrock:us-west-2:123456789012:model-customization-job/"
            "amazon.nova-2-lite-v1:0:256k/a1b2c3d4e5f6"
        )
    )
    model = (
        "ft:openai.gpt-oss-20b:acme::abc"
        if backend == "openai"
        else "arn:aws:bedrock:us-west-2:123456789012:custom-model/amazon.nova-2-lite-v1:0:256k/m1"
    )
    record(ssm, job_id=job, backend=backend, fine_tuned_model=model)
    context = prepare(
        {"job_id": job, "backend": backend}, Settings.from_env(environment(backend)), ssm
    )
    if backend == "bedrock":
        context["tuned_model"] = "arn:aws:bedrock:us-west-2:123456789012:custom-model-deployment/d1"

    parsed = parse_context(context)

    assert parsed.job_id == job
    assert parsed.reward_function_arn == f"{REWARD}:7"
    assert parsed.tuned_model == context["tuned_model"]
    assert parsed.validation.key.endswith("/validation.jsonl")
    assert (
        parsed.artifacts.key == "evaluations/" + context["artifacts"]["prefix"].split("/")[1] + "/"
    )
    assert parsed.settings.samples_per_prompt == SETTINGS["samples_per_prompt"]
    assert parsed.settings.promote_when.min_improvement == 0.05
