"""``make chat``'s script: which model answers (base, the job's tuned model, the promoted one,
the native backend's Active deployment), through the real openai SDK against the local server,
botocore's Stubber for Bedrock (``Converse`` and the deployment listing), moto for SSM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from scripts import chat
from tests.conftest import cdk_context, write_fixture_cdk_json
from tests.openai_server import OpenAIServer, Reply

ACCOUNT = "123456789012"
NOVA = "us-east-1"
MODEL_ARN = (
    f"arn:aws:bedrock:{NOVA}:{ACCOUNT}:custom-model/amazon.nova-2-lite-v1:0:256k/f6e5d4c3b2a1"
)
JOB_ARN = (
    f"arn:aws:bedrock:{NOVA}:{ACCOUNT}:model-customization-job/"
    "amazon.nova-2-lite-v1:0:256k/a1b2c3d4e5f6"
)
CURRENT = f"arn:aws:bedrock:{NOVA}:{ACCOUNT}:custom-model-deployment/abcdefghijkl"
OLDER = f"arn:aws:bedrock:{NOVA}:{ACCOUNT}:custom-model-deployment/mnopqrstuvwx"


@pytest.fixture
def cdk_json(tmp_path: Path) -> Path:
    return write_fixture_cdk_json(tmp_path)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials, SSM in moto."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def put(region: str, name: str, value: dict[str, Any]) -> None:
    ssm = boto3.client("ssm", region_name=region)
    ssm.put_parameter(Name=name, Value=json.dumps(value), Type="String", Overwrite=True)


def answer_with_model(body: dict[str, Any], number: int) -> Reply:
    return Reply(content=f"answered by {body['model']}")


def run(cdk_json: Path, *args: str) -> None:
    assert chat.main(["--cdk-json", str(cdk_json), *args]) == 0


def settings(env: str) -> dict[str, Any]:
    return dict(cdk_context()["environments"][env].get("evaluation", {}))


# -- openai backend ----------------------------------------------------------------------------


@pytest.mark.usefixtures("aws")
def test_base_model_on_the_openai_backend(
    openai_server: OpenAIServer, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    openai_server.chat.behaviour = answer_with_model
    run(cdk_json, "--env", "staging", "--prompt", "What is 2+2?", "--model", "base")
    out, err = capsys.readouterr()
    base = cdk_context()["environments"]["staging"]["base_model"]
    assert out == f"answered by {base}\n"
    assert err == f"chat: staging (openai): base model {base}\n"
    [request] = [r for r in openai_server.requests if r.path.endswith("/chat/completions")]
    assert request.body["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    # the evaluation's sampling settings (the defaults unless the fixture sets them)
    assert request.body["temperature"] == settings("staging").get("temperature", 0.0)
    assert request.body["max_tokens"] == settings("staging").get("max_tokens", 4096)


@pytest.mark.usefixtures("aws")
def test_tuned_is_the_jobs_model_until_one_is_promoted(
    openai_server: OpenAIServer, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    openai_server.chat.behaviour = answer_with_model
    region = cdk_context()["environments"]["staging"]["region"]
    put(region, "/bedrock-rft/staging/job", {"job_id": "ftjob-1", "fine_tuned_model": "ft:tuned"})
    run(cdk_json, "--env", "staging", "--prompt", "hi")  # MODEL defaults to tuned
    out, err = capsys.readouterr()
    assert out == "answered by ft:tuned\n"
    assert "tuned model of job ftjob-1" in err
    put(region, "/bedrock-rft/staging/model", {"model_id": "ft:promoted", "job_id": "ftjob-0"})
    run(cdk_json, "--env", "staging", "--prompt", "hi", "--model", "tuned")
    out, err = capsys.readouterr()
    assert out == "answered by ft:promoted\n"
    assert "promoted model (job ftjob-0)" in err


@pytest.mark.usefixtures("aws")
def test_any_other_model_id_is_used_as_given(
    openai_server: OpenAIServer, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    openai_server.chat.behaviour = answer_with_model
    run(cdk_json, "--env", "staging", "--prompt", "hi", "--model", "ft:checkpoint-7")
    assert capsys.readouterr().out == "answered by ft:checkpoint-7\n"


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, "chat: MODEL=tuned: environment staging has no job yet (SSM /bedrock-rft/staging"),
        (
            {"job_id": "ftjob-2", "status": "running"},
            "chat: MODEL=tuned: job ftjob-2 has no fine-tuned model yet (status running)",
        ),
    ],
)
def test_tuned_without_a_model_is_one_line(
    openai_server: OpenAIServer, cdk_json: Path, record: dict[str, Any] | None, expected: str
) -> None:
    if record is not None:
        region = cdk_context()["environments"]["staging"]["region"]
        put(region, "/bedrock-rft/staging/job", record)
    with pytest.raises(SystemExit) as raised:
        run(cdk_json, "--env", "staging", "--prompt", "hi")
    assert str(raised.value).startswith(expected)
    assert openai_server.requests == []  # nothing was called


@pytest.mark.usefixtures("aws")
def test_an_endpoint_error_is_one_line(openai_server: OpenAIServer, cdk_json: Path) -> None:
    openai_server.chat.behaviour = lambda body, n: Reply(status=400, error="unknown model")
    with pytest.raises(SystemExit) as raised:
        run(cdk_json, "--env", "staging", "--prompt", "hi", "--model", "nope")
    line = str(raised.value)
    assert line.startswith(f"chat: {openai_server.base_url} answered HTTP 400 for model nope: ")
    assert line.endswith("unknown model") and "\n" not in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--env", "", "--prompt", "hi"), "chat: set ENV=<environment>"),
        (("--env", "nope", "--prompt", "hi"), "chat: ENV=nope: no such environment; defined: "),
        (("--env", "staging", "--prompt", "  "), 'chat: set PROMPT="<what to ask the model>"'),
    ],
)
def test_bad_arguments_are_one_line(cdk_json: Path, args: tuple[str, ...], expected: str) -> None:
    with pytest.raises(SystemExit) as raised:
        run(cdk_json, *args)
    assert str(raised.value).startswith(expected)


# -- bedrock backend ---------------------------------------------------------------------------


def deployment(arn: str, name: str, created: datetime) -> dict[str, Any]:
    return {
        "customModelDeploymentArn": arn,
        "customModelDeploymentName": name,
        "modelArn": MODEL_ARN,
        "createdAt": created,
        "status": "Active",
    }


def expect_deployments(stub: Stubber, current_job: str = "a1b2c3d4e5f6") -> None:
    """An older job's Active deployment (newer) and the current job's."""
    stub.add_response(
        "list_custom_model_deployments",
        {
            "modelDeploymentSummaries": [
                deployment(OLDER, "rft-nova-dev-000000000000", datetime(2026, 11, 2, tzinfo=UTC)),
                deployment(CURRENT, "rft-nova-dev-a1b2c3d4e5f6", datetime(2026, 11, 1, tzinfo=UTC)),
            ]
        },
        {},
    )
    for arn, job in ((OLDER, "000000000000"), (CURRENT, current_job)):
        stub.add_response(
            "list_tags_for_resource",
            {
                "tags": [
                    {"key": "bedrock-rft:environment", "value": "nova-dev"},
                    {"key": "bedrock-rft:job", "value": job},
                ]
            },
            {"resourceARN": arn},
        )


def converse_reply(text: str) -> dict[str, Any]:
    return {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "think"}}},
                    {"text": text},
                ],
            }
        },
        "stopReason": "end_turn",
        "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
        "metrics": {"latencyMs": 10},
    }


@pytest.mark.usefixtures("aws")
def test_tuned_on_the_native_backend_is_the_jobs_active_deployment(
    cdk_json: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    put(NOVA, "/bedrock-rft/nova-dev/job", {"job_id": JOB_ARN, "status": "Completed"})
    bedrock = boto3.client("bedrock", region_name=NOVA)
    runtime = boto3.client("bedrock-runtime", region_name=NOVA)
    clients = {"ssm": boto3.client("ssm", region_name=NOVA), "bedrock": bedrock}
    clients["bedrock-runtime"] = runtime
    monkeypatch.setattr(chat, "aws_client", lambda service, region: clients[service])
    with Stubber(bedrock) as control, Stubber(runtime) as inference:
        expect_deployments(control)
        evaluation = settings("nova-dev")
        inference.add_response(
            "converse",
            converse_reply("42"),
            {
                "modelId": CURRENT,
                "messages": [{"role": "user", "content": [{"text": "6*7?"}]}],
                "inferenceConfig": {
                    "maxTokens": evaluation.get("max_tokens", 4096),
                    "temperature": evaluation.get("temperature", 0.0),
                },
            },
        )
        run(cdk_json, "--env", "nova-dev", "--prompt", "6*7?")
        control.assert_no_pending_responses()
        inference.assert_no_pending_responses()
    out, err = capsys.readouterr()
    assert out == "42\n"  # the reasoning block is not the reply
    assert "deployment rft-nova-dev-a1b2c3d4e5f6 of job a1b2c3d4e5f6" in err


@pytest.mark.usefixtures("aws")
def test_without_the_jobs_deployment_the_newest_active_one_answers(cdk_json: Path) -> None:
    put(NOVA, "/bedrock-rft/nova-dev/job", {"job_id": JOB_ARN, "status": "Completed"})
    config = chat.environment("nova-dev", cdk_json)
    bedrock = boto3.client("bedrock", region_name=NOVA)
    with Stubber(bedrock) as control:
        expect_deployments(control, current_job="999999999999")
        model, what = chat.tuned_model(config, boto3.client("ssm", region_name=NOVA), bedrock)
    assert model == OLDER
    assert what == "deployment rft-nova-dev-000000000000 of job 000000000000"
    with Stubber(bedrock) as control:
        control.add_response("list_custom_model_deployments", {"modelDeploymentSummaries": []}, {})
        with pytest.raises(chat.ChatError, match="no Active on-demand deployment of environment"):
            chat.tuned_model(config, boto3.client("ssm", region_name=NOVA), bedrock)


def test_the_native_base_model_is_called_through_its_inference_profile(cdk_json: Path) -> None:
    config = chat.environment("nova-dev", cdk_json)
    assert config.base_model == "amazon.nova-2-lite-v1:0:256k"
    from rft_eval import serving

    assert serving.base_inference_model(config.base_model) == "us.amazon.nova-2-lite-v1:0"
    assert serving.base_inference_model("amazon.nova-micro-v1:0") == "amazon.nova-micro-v1:0"
