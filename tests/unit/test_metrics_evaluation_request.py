"""The collector asks for the evaluation when the recorded job succeeds: one asynchronous
invocation of the start function (botocore's Stubber checks it against Lambda's service
model), before the record moves on; no request for other transitions."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from tests.lambda_loader import load_handler
from tests.metrics_fixtures import (
    REGION,
    FakeAws,
    fake_aws_fixture,  # noqa: F401 (fixture)
    synthetic_run,
)
from tests.openai_server import FineTuning, OpenAIServer
from tests.unit.test_metrics_collector import run

load_handler("metrics")  # lambda/metrics and lambda/common on sys.path, as in the bundle

from training_metrics.collector import Settings  # noqa: E402

START = "bedrock-rft-dev-evaluation-start"
MODEL = "ft:openai.gpt-oss-20b:acme::done"


@pytest.fixture
def requests(fake_aws: FakeAws) -> Iterator[Stubber]:
    """The collector's Lambda client, stubbed: every expected invocation must be queued."""
    client = boto3.client("lambda", region_name=REGION)
    fake_aws.aws = dataclasses.replace(fake_aws.aws, lambda_client=client)
    fake_aws.settings = dataclasses.replace(fake_aws.settings, evaluation_function=START)
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def expect_request(stub: Stubber, job_id: str, model: str | None) -> None:
    payload = {"job_id": job_id, "backend": "openai", "fine_tuned_model": model}
    stub.add_response(
        "invoke",
        {"StatusCode": 202},
        {
            "FunctionName": START,
            "InvocationType": "Event",
            "Payload": json.dumps(payload, sort_keys=True).encode(),
        },
    )


def test_a_succeeded_job_is_sent_for_evaluation_once(
    fake_aws: FakeAws, openai_server: OpenAIServer, requests: Stubber
) -> None:
    service: FineTuning = openai_server.fine_tuning
    synthetic_run(service, "ftjob-done", steps=5, total_steps=5)
    fake_aws.record_job("ftjob-done", status="running")
    assert not run(fake_aws, openai_server).get("evaluation_requested")  # unchanged status

    service.set_status("ftjob-done", "succeeded", fine_tuned_model=MODEL)
    expect_request(requests, "ftjob-done", MODEL)
    summary = run(fake_aws, openai_server)
    assert summary["evaluation_requested"] is True
    assert fake_aws.job_record()["status"] == "succeeded"
    # the next runs are idle: no second request (the Stubber has none queued)
    assert run(fake_aws, openai_server)["action"] == "idle"


def test_a_run_that_fails_after_the_request_repeats_it(
    fake_aws: FakeAws, openai_server: OpenAIServer, requests: Stubber
) -> None:
    """The request goes out before the record is updated: a run that dies in between asks
    again next time (the start function turns that into "already evaluated")."""
    service: FineTuning = openai_server.fine_tuning
    synthetic_run(service, "ftjob-retry", steps=3, total_steps=3)
    fake_aws.record_job("ftjob-retry", status="running")
    service.set_status("ftjob-retry", "succeeded", fine_tuned_model=MODEL)
    expect_request(requests, "ftjob-retry", MODEL)
    broken_sns = dataclasses.replace(fake_aws.aws, sns=None)  # notify fails after the request
    healthy = fake_aws.aws
    fake_aws.aws = broken_sns
    with pytest.raises(AttributeError):
        run(fake_aws, openai_server)
    assert fake_aws.job_record()["status"] == "running"
    fake_aws.aws = healthy
    expect_request(requests, "ftjob-retry", MODEL)
    assert run(fake_aws, openai_server)["evaluation_requested"] is True


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_other_endings_request_nothing(
    fake_aws: FakeAws, openai_server: OpenAIServer, requests: Stubber, status: str
) -> None:
    service: FineTuning = openai_server.fine_tuning
    synthetic_run(service, "ftjob-end", steps=3, total_steps=3)
    fake_aws.record_job("ftjob-end", status="running")
    service.set_status("ftjob-end", status)
    assert run(fake_aws, openai_server)["evaluation_requested"] is False


def test_without_an_evaluation_nothing_is_requested(
    fake_aws: FakeAws, openai_server: OpenAIServer
) -> None:
    service: FineTuning = openai_server.fine_tuning
    synthetic_run(service, "ftjob-plain", steps=3, total_steps=3)
    fake_aws.record_job("ftjob-plain", status="running")
    service.set_status("ftjob-plain", "succeeded", fine_tuned_model=MODEL)
    assert fake_aws.aws.lambda_client is None  # a call would fail loudly
    assert run(fake_aws, openai_server)["evaluation_requested"] is False


def test_the_start_function_comes_from_the_environment() -> None:
    env = {"RFT_ENVIRONMENT": "dev", "EVALUATION_START_FUNCTION": START}
    assert Settings.from_env(env).evaluation_function == START
    assert Settings.from_env({"RFT_ENVIRONMENT": "dev"}).evaluation_function is None
