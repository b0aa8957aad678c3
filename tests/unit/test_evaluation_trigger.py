"""The evaluation trigger (``handler.start``): which events start an evaluation, the execution
named after the job, and a re-delivered trigger that must not start a second one (moto's Step
Functions, and botocore's Stubber against the real service model)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tests.conftest import fake_credentials
from tests.lambda_loader import LambdaContext, load_handler

handler = load_handler("evaluation")  # lambda/evaluation and lambda/common on sys.path

from rft_eval.ids import prompt_id, safe_job_id  # noqa: E402
from rft_eval.trigger import JobDone, TriggerError, parse_trigger, start_evaluation  # noqa: E402

REGION = "us-east-1"
JOB_ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/"
    "rft-nova-dev-0123456789abcdef-1/ab12cd34ef56"
)
MODEL_ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-2-lite-v1:0:256k/xyz789"
)


def job_event(status: str = "Completed", **detail: Any) -> dict[str, Any]:
    """A native job state change as EventBridge delivers it (bedrock-rft.md §6)."""
    return {
        "version": "0",
        "id": "5b7e2c1a-0000-4000-8000-000000000001",
        "detail-type": "Model Customization Job State Change",
        "source": "aws.bedrock",
        "account": "123456789012",
        "time": "2026-11-30T06:00:00Z",
        "region": REGION,
        "resources": [JOB_ARN],
        "detail": {
            "jobName": "rft-nova-dev-0123456789abcdef-1",
            "jobArn": JOB_ARN,
            "outputModelName": "rft-nova-dev-0123456789abcdef-1",
            "outputModelArn": MODEL_ARN,
            "jobStatus": status,
            "outputDataConfig": {"s3Uri": "s3://artifacts/output/"},
            **detail,
        },
    }


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """moto's Step Functions with a state machine; the handler's clients point at it."""
    fake_credentials(monkeypatch, REGION)
    handler._client.cache_clear()
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(
            name="bedrock-rft-nova-dev-evaluation",
            definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/evaluation",
        )["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", arn)
        monkeypatch.setenv("RFT_BACKEND", "bedrock")
        yield sfn, arn
    handler._client.cache_clear()


def executions(sfn: Any, arn: str) -> list[dict[str, Any]]:
    return list(sfn.list_executions(stateMachineArn=arn)["executions"])


# -- ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_id", "safe"),
    [
        ("ftjob-abc123", "ftjob-abc123"),
        (JOB_ARN, "ab12cd34ef56"),
        ("job:with/odd.chars", "job-with-odd-chars"),
        ("x" * 80, "x" * 64),
    ],
)
def test_safe_job_ids(job_id: str, safe: str) -> None:
    assert safe_job_id(job_id) == safe


def test_prompt_ids_are_the_rows_id_or_a_digest_of_its_canonical_json() -> None:
    assert prompt_id({"id": "q-7", "messages": []}) == "q-7"
    row = {"messages": [{"role": "user", "content": "2+2?"}], "reference_answer": "4"}
    reordered = {"reference_answer": "4", "messages": [{"role": "user", "content": "2+2?"}]}
    assert prompt_id(row) == prompt_id(reordered)
    assert len(prompt_id(row)) == 16 and int(prompt_id(row), 16) >= 0
    assert prompt_id({**row, "id": 7}) != prompt_id(row)  # a non-string id is content


# -- parsing -----------------------------------------------------------------------------------


def test_a_completed_native_job_event_names_the_job_and_its_model() -> None:
    job = parse_trigger(job_event(), default_backend="bedrock")
    assert job == JobDone(
        job_id=JOB_ARN, backend="bedrock", fine_tuned_model=MODEL_ARN, custom_model_arn=MODEL_ARN
    )


def test_the_collectors_request_names_the_openai_job_and_model() -> None:
    event = {"job_id": "ftjob-abc", "backend": "openai", "fine_tuned_model": "ft:m:1"}
    job = parse_trigger(event, default_backend="openai")
    assert job == JobDone(job_id="ftjob-abc", backend="openai", fine_tuned_model="ft:m:1")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (job_event("Failed"), "jobStatus = 'Failed': only Completed jobs are evaluated"),
        (job_event(jobArn=""), "event.detail.jobArn: missing"),
        ({"job_id": "  "}, "neither a job state change event"),
        ({"job_id": "j", "backend": "sagemaker"}, "event.backend = 'sagemaker'"),
        ([], "event: must be an object"),
    ],
)
def test_other_events_are_refused_in_one_line(event: Any, message: str) -> None:
    with pytest.raises(TriggerError, match=message) as raised:
        parse_trigger(event, default_backend="openai")
    assert "\n" not in str(raised.value)


# -- starting ----------------------------------------------------------------------------------


def test_start_names_the_execution_after_the_job(machine: tuple[Any, str]) -> None:
    sfn, arn = machine
    result = handler.start(job_event(), LambdaContext())
    assert result["started"] is True
    assert result["execution_name"] == "ab12cd34ef56"
    [execution] = executions(sfn, arn)
    assert execution["name"] == "ab12cd34ef56"
    sent = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert sent == {
        "job_id": JOB_ARN,
        "backend": "bedrock",
        "fine_tuned_model": MODEL_ARN,
        "custom_model_arn": MODEL_ARN,
    }


def test_a_redelivered_trigger_starts_no_second_evaluation(machine: tuple[Any, str]) -> None:
    sfn, arn = machine
    first = handler.start(job_event(), LambdaContext())
    # EventBridge delivers the same event again, and the collector's backstop request for the
    # same job and model follows: the same name and input give the same execution back
    again = handler.start(job_event(), LambdaContext())
    backstop = handler.start(
        {"job_id": JOB_ARN, "backend": "bedrock", "fine_tuned_model": MODEL_ARN}, LambdaContext()
    )
    assert again == first and backstop == first
    # a request that differs (no model named) under the same name: refused, not run again
    other = handler.start({"job_id": JOB_ARN, "backend": "bedrock"}, LambdaContext())
    assert other == {
        "started": False,
        "execution_name": "ab12cd34ef56",
        "reason": "already evaluated",
    }
    assert len(executions(sfn, arn)) == 1


def test_a_closed_execution_means_already_evaluated_against_the_service_model() -> None:
    """The request as the real service model checks it, and ExecutionAlreadyExists handled."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:bedrock-rft-nova-dev-evaluation"
    job = JobDone(job_id="ftjob-abc", backend="openai", fine_tuned_model="ft:m:1")
    expected = {"stateMachineArn": arn, "name": "ftjob-abc", "input": job.execution_input()}
    with Stubber(sfn) as stub:
        stub.add_response(
            "start_execution",
            {
                "executionArn": f"{arn.replace('stateMachine', 'execution')}:ftjob-abc",
                "startDate": "2026-11-30T06:00:00Z",
            },
            expected,
        )
        stub.add_client_error(
            "start_execution",
            service_error_code="ExecutionAlreadyExists",
            http_status_code=400,
            expected_params=expected,
        )
        assert start_evaluation(sfn, arn, job)["started"] is True
        assert start_evaluation(sfn, arn, job) == {
            "started": False,
            "execution_name": "ftjob-abc",
            "reason": "already evaluated",
        }
        stub.assert_no_pending_responses()


def test_the_execution_input_is_the_same_text_for_the_same_job() -> None:
    one = JobDone(job_id="j", backend="openai", fine_tuned_model="ft:m:1")
    two = parse_trigger({"fine_tuned_model": "ft:m:1", "job_id": "j"}, default_backend="openai")
    assert one.execution_input() == two.execution_input()
