"""The job custom resource on the OpenAI-compatible backend: the real ``openai`` SDK over HTTP
against the local Mantle server, S3 and SSM in moto, events from the CloudFormation fixture.

The server runs in strict mode unless a test says otherwise: like an endpoint that rejects
every field Bedrock does not document, so the default create must do without them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.job_support import (
    Stack,
    aws_credentials,  # noqa: F401 (fixture)
    delete_event,
    deploy,
    event_identity,
    fixture_event,
    gsm8k_records,
    is_complete,
    job_modules,
    job_record,
    jsonl,
    on_event,
    stage_dataset,
    update_event,
    with_hyperparameter,
)
from tests.openai_server import OpenAIServer

pytestmark = pytest.mark.usefixtures("aws_credentials")
REGION = "us-west-2"
PARAMETER = "/bedrock-rft/staging/job"


@pytest.fixture
def server(openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    """The local OpenAI-compatible server (the SDK pointed at it, after ``aws_credentials``
    has cleared the environment: the module's ``usefixtures`` sets that up first), with S3 and
    SSM mocked."""
    from rft_job import openai_backend

    monkeypatch.setattr(openai_backend, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(openai_backend, "RETRY_PAUSE_SECONDS", 0.01)
    openai_server.fine_tuning.strict = True
    with mock_aws():
        yield openai_server


@pytest.fixture
def create(server: OpenAIServer) -> dict[str, Any]:
    """The fixture's Create event, with its dataset (real GSM8K records) staged in S3."""
    event = fixture_event("openai")
    stage_dataset(event)
    return event


def record() -> dict[str, Any] | None:
    return job_record(REGION, PARAMETER)


def job_creates(server: OpenAIServer) -> list[Any]:
    return [r for r in server.requests if r.method == "POST" and r.path == "/v1/fine_tuning/jobs"]


def test_done_when_scenario(server: OpenAIServer, create: dict[str, Any]) -> None:
    """Create, retried Create, Update unchanged, Update with one hyperparameter changed,
    Delete of the first job, Delete of an unknown id: two jobs, the first cancelled."""
    stack = Stack(create)
    first = deploy(create)["PhysicalResourceId"]
    assert deploy(create)["PhysicalResourceId"] == first
    unchanged = update_event(create, first)
    assert deploy(unchanged)["PhysicalResourceId"] == first
    changed = update_event(
        create, first, Hyperparameters=with_hyperparameter(create, "n_epochs", 3)
    )
    second = deploy(changed)["PhysicalResourceId"]
    assert second != first
    stack.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    on_event(delete_event(changed, first))
    on_event(delete_event(changed, "ftjob-never-existed"))

    jobs = server.fine_tuning.jobs
    assert sorted(jobs) == sorted([first, second])
    assert jobs[first]["status"] == "cancelled"
    assert jobs[second]["status"] == "queued"
    assert jobs[second]["method"]["reinforcement"]["hyperparameters"]["n_epochs"] == 3
    current = record()
    assert current is not None and current["job_id"] == second


def test_create_uploads_the_staged_dataset_and_starts_a_reinforcement_job(
    server: OpenAIServer,
) -> None:
    create = fixture_event("openai")
    train = jsonl(gsm8k_records(120))
    stage_dataset(create, train)

    response = on_event(create)

    job_id = response["PhysicalResourceId"]
    job = server.fine_tuning.jobs[job_id]
    assert server.fine_tuning.contents[job["training_file"]] == train
    assert job["validation_file"] is None
    assert all(f["purpose"] == "fine-tune" for f in server.fine_tuning.files.values())
    props = create["ResourceProperties"]
    assert job["model"] == "openai.gpt-oss-20b"
    assert job["method"] == {
        "type": "reinforcement",
        "reinforcement": {
            "grader": {"type": "lambda", "lambda": {"function": props["GraderFunctionArn"]}},
            "hyperparameters": {"batch_size": 8, "learning_rate_multiplier": 0.5, "n_epochs": 2},
        },
    }
    # exactly the documented body: no metadata, no suffix, no validation_file
    (sent,) = job_creates(server)
    assert set(sent.body) == {"model", "training_file", "method"}
    # the identity travels in the training file's name
    identity = response["Data"]["Identity"]
    filename = server.fine_tuning.files[job["training_file"]]["filename"]
    assert filename == f"rft-staging-{identity}-train.jsonl"
    assert response["Data"]["AwaitValidation"] == "true"
    assert response["Data"]["Backend"] == "openai"
    assert response["Data"]["Status"] == "validating_files"
    # the handover record, in the contract's shape
    current = record()
    assert current is not None
    assert {"job_id", "backend", "region", "status", "updated_at"} <= set(current)
    assert current["job_id"] == job_id and current["backend"] == "openai"
    assert current["region"] == REGION and current["status"] == "validating_files"


def opted_in(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with the undocumented fields opted in: a validation split and OpenAI's
    ``eval_interval``."""
    props = event["ResourceProperties"]
    props["SendUndocumentedFields"] = "true"
    props["ValidationDataUri"] = props["TrainingDataUri"].replace("train.jsonl", "validation.jsonl")
    props["Hyperparameters"] = with_hyperparameter(event, "eval_interval", 5)
    return event


def test_opting_in_sends_the_validation_file_and_undocumented_hyperparameters(
    server: OpenAIServer,
) -> None:
    server.fine_tuning.strict = False
    create = opted_in(fixture_event("openai"))
    validation = jsonl(gsm8k_records(15, offset=300))
    stage_dataset(create, validation=validation)

    job_id = deploy(create)["PhysicalResourceId"]

    job = server.fine_tuning.jobs[job_id]
    assert server.fine_tuning.contents[job["validation_file"]] == validation
    assert job["method"]["reinforcement"]["hyperparameters"]["eval_interval"] == 5
    identity = event_identity(create).digest
    assert server.fine_tuning.files[job["validation_file"]]["filename"] == (
        f"rft-staging-{identity}-validation.jsonl"
    )


def test_opting_in_against_a_strict_endpoint_fails_with_its_message(
    server: OpenAIServer,
) -> None:
    create = opted_in(fixture_event("openai"))
    stage_dataset(create)
    from rft_job.model import JobError

    with pytest.raises(JobError) as caught:
        on_event(create)

    message = str(caught.value)
    assert message.startswith("RFT job for environment 'staging'")
    assert "was rejected (400)" in message
    assert message.endswith(
        "Unrecognized request argument supplied: method.reinforcement.hyperparameters.eval_interval"
    )
    assert server.fine_tuning.files == {}  # the uploads were removed before raising
    assert server.fine_tuning.jobs == {}


def test_is_complete_waits_for_validation_then_records_the_status(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    server.fine_tuning.validation_polls = 2
    response = on_event(create)

    assert is_complete(create, response) == {"IsComplete": False}
    done = is_complete(create, response)

    assert done == {"IsComplete": True, "Data": {"Status": "queued"}}
    current = record()
    assert current is not None and current["status"] == "queued"


def test_not_waiting_for_validation_completes_at_once(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    server.fine_tuning.validation_polls = 100
    create["ResourceProperties"]["WaitForValidation"] = "false"
    response = on_event(create)

    assert response["Data"]["AwaitValidation"] == "false"
    assert is_complete(create, response) == {"IsComplete": True}


def test_retried_create_adopts_the_running_job(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    first = on_event(create)
    server.fine_tuning.set_status(first["PhysicalResourceId"], "running")

    again = on_event(create)

    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert len(job_creates(server)) == 1
    assert len(server.fine_tuning.files) == 1  # nothing uploaded twice


def test_retried_create_finds_the_job_through_the_record_when_file_names_are_not_kept(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    """A service that renames uploads [open] still gets no second job: the SSM record."""
    server.fine_tuning.store_filenames = False
    first = on_event(create)["PhysicalResourceId"]

    assert on_event(create)["PhysicalResourceId"] == first
    assert len(server.fine_tuning.jobs) == 1


def test_a_create_that_died_before_recording_its_job_is_adopted_on_retry(
    server: OpenAIServer, create: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Lambda is killed between the job create and the SSM write (no record, no job
    metadata): the retried Create finds the job through its training file's name."""
    from rft_job import record as job_record_module

    class Killed(BaseException):
        """The invocation ends here (a timeout or out-of-memory kill catches nothing)."""

    def killed(*_: Any, **__: Any) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(job_record_module, "write", killed)
        with pytest.raises(Killed):
            on_event(create)
    (first,) = server.fine_tuning.jobs
    assert record() is None

    assert on_event(create)["PhysicalResourceId"] == first
    assert len(job_creates(server)) == 1
    assert len(server.fine_tuning.files) == 1  # nothing uploaded twice
    current = record()
    assert current is not None and current["job_id"] == first


def test_create_after_a_cancelled_job_of_the_same_inputs_starts_a_new_one(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    first = on_event(create)["PhysicalResourceId"]
    server.fine_tuning.set_status(first, "cancelled")

    second = on_event(create)["PhysicalResourceId"]

    assert second != first
    assert len(server.fine_tuning.jobs) == 2


def test_update_of_an_operational_property_keeps_the_job(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    first = deploy(create)["PhysicalResourceId"]

    update = update_event(create, first, OnDelete="retain", WaitForValidation="false")
    response = deploy(update)

    assert response["PhysicalResourceId"] == first
    assert len(job_creates(server)) == 1


def test_update_moving_the_record_parameter_moves_the_record(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    first = deploy(create)["PhysicalResourceId"]

    deploy(update_event(create, first, ParameterName="/bedrock-rft/staging/current-job"))

    assert record() is None
    moved = boto3.client("ssm", region_name=REGION).get_parameter(
        Name="/bedrock-rft/staging/current-job"
    )
    assert json.loads(moved["Parameter"]["Value"])["job_id"] == first


def test_rollback_of_a_changed_update_returns_to_the_first_job(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    first = deploy(create)["PhysicalResourceId"]
    changed = update_event(
        create, first, Hyperparameters=with_hyperparameter(create, "batch_size", 16)
    )
    second = deploy(changed)["PhysicalResourceId"]

    # CloudFormation's rollback: an Update back to the old inputs, then Delete of the new id.
    rollback = update_event(changed, second, **create["ResourceProperties"])
    restored = deploy(rollback)["PhysicalResourceId"]
    on_event(delete_event(rollback, second))

    assert restored == first
    assert server.fine_tuning.jobs[first]["status"] == "queued"
    assert server.fine_tuning.jobs[second]["status"] == "cancelled"
    current = record()
    assert current is not None and current["job_id"] == first


def test_delete_of_an_active_job_cancels_it_and_deletes_its_files(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    job_id = deploy(create)["PhysicalResourceId"]

    response = on_event(delete_event(create, job_id))

    assert response == {"PhysicalResourceId": job_id}
    assert server.fine_tuning.jobs[job_id]["status"] == "cancelled"
    assert server.fine_tuning.files == {}
    assert record() is None


def test_delete_with_retain_leaves_the_job_running(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    create["ResourceProperties"]["OnDelete"] = "retain"
    stack = Stack(create)
    job_id = deploy(create)["PhysicalResourceId"]
    server.fine_tuning.set_status(job_id, "running")

    stack.status = "DELETE_IN_PROGRESS"
    on_event(delete_event(create, job_id))

    assert server.fine_tuning.jobs[job_id]["status"] == "running"
    assert len(server.fine_tuning.files) == 1
    current = record()
    assert current is not None and current["job_id"] == job_id


def test_delete_of_a_finished_job_is_success_and_keeps_the_model(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    job_id = deploy(create)["PhysicalResourceId"]
    server.fine_tuning.set_status(job_id, "succeeded", fine_tuned_model="openai.gpt-oss-20b:ft-1")
    before = len(server.requests)

    on_event(delete_event(create, job_id))

    assert server.fine_tuning.jobs[job_id]["status"] == "succeeded"
    later = server.requests[before:]
    assert not any(r.path.endswith("/cancel") for r in later)
    assert not any(r.path.startswith("/v1/models") for r in later)
    assert record() is None
    # its training file stays: a later deploy of the same inputs adopts the trained model
    assert on_event(create)["PhysicalResourceId"] == job_id
    assert len(job_creates(server)) == 1


@pytest.mark.parametrize("job_id", ["ftjob-unknown", "not-a-job-id"])
def test_delete_of_an_unknown_job_is_success(server: OpenAIServer, job_id: str) -> None:
    assert on_event(delete_event(fixture_event("openai"), job_id)) == {"PhysicalResourceId": job_id}


def test_validation_failure_fails_the_deploy_with_the_service_message(server: OpenAIServer) -> None:
    create = fixture_event("openai")
    stage_dataset(create, train=jsonl(gsm8k_records(40)))
    response = on_event(create)
    job_id = response["PhysicalResourceId"]
    handler = job_modules()
    from rft_job.model import JobError

    with pytest.raises(JobError) as caught:
        is_complete(create, response)

    message = str(caught.value)
    assert job_id in message
    assert "has 40 examples; at least 100 are required" in message
    assert server.fine_tuning.files == {}  # no Delete follows a failed Create: cleaned up here
    assert record() is None
    assert handler is job_modules()


def test_a_job_still_validating_at_the_deadline_is_cancelled(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, create: dict[str, Any]
) -> None:
    server.fine_tuning.validation_polls = 1000
    monkeypatch.setenv("JOB_WAIT_TIMEOUT_SECONDS", "-1")
    response = on_event(create)
    from rft_job.model import JobError

    with pytest.raises(JobError, match="still validating its data"):
        is_complete(create, response)

    assert server.fine_tuning.jobs[response["PhysicalResourceId"]]["status"] == "cancelled"
    assert server.fine_tuning.files == {}
    assert record() is None


def test_a_rejected_create_deletes_the_uploaded_files(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    server.fine_tuning.models = frozenset({"qwen.qwen3-32b"})
    from rft_job.model import JobError

    with pytest.raises(JobError) as caught:
        on_event(create)

    assert "environment 'staging'" in str(caught.value)
    assert "'openai.gpt-oss-20b' is not available for fine-tuning" in str(caught.value)
    assert server.fine_tuning.files == {}
    assert server.fine_tuning.jobs == {}


def test_a_file_the_service_rejects_fails_the_create_with_its_details(server: OpenAIServer) -> None:
    create = fixture_event("openai")
    stage_dataset(create, train=b'{"messages": []}\nnot json\n')
    from rft_job.model import JobError

    with pytest.raises(JobError, match=r"rejected by the service: Line 2: invalid JSON"):
        on_event(create)

    assert server.fine_tuning.files == {}
    assert server.fine_tuning.jobs == {}


def test_a_job_that_cannot_be_recorded_is_cancelled(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    from botocore.exceptions import ClientError
    from rft_job import aws
    from rft_job.model import JobError

    def refuse(**kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
            "PutParameter",
        )

    aws.client("ssm", REGION).meta.events.register("before-call.ssm.PutParameter", refuse)

    with pytest.raises(JobError, match=r"could not be recorded.*the job was cancelled"):
        on_event(create)

    (job,) = server.fine_tuning.jobs.values()
    assert job["status"] == "cancelled"
    assert server.fine_tuning.files == {}


def test_throttled_requests_are_retried(server: OpenAIServer, create: dict[str, Any]) -> None:
    server.throttle(2, method="POST", path_prefix="/v1/files")
    server.throttle(2, method="POST", path_prefix="/v1/fine_tuning/jobs")
    server.throttle(2, method="GET", path_prefix="/v1/fine_tuning/jobs")

    deploy(create)

    assert len(server.fine_tuning.jobs) == 1
    assert len(job_creates(server)) == 3  # two refused with 429, one accepted


def test_a_lost_create_response_does_not_start_a_second_job(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    server.fail(500, method="POST", path_prefix="/v1/fine_tuning/jobs", after=True)

    response = on_event(create)

    assert list(server.fine_tuning.jobs) == [response["PhysicalResourceId"]]


def test_without_an_api_key_a_short_term_bedrock_key_is_minted(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, create: dict[str, Any]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    server.api_key = None
    server.api_key_prefix = "bedrock-api-key-"

    deploy(create)

    assert len(server.fine_tuning.jobs) == 1
    tokens = {r.headers["authorization"] for r in server.requests}
    assert all(t.startswith("Bearer bedrock-api-key-") for t in tokens)


def test_a_missing_property_is_named(server: OpenAIServer) -> None:
    create = fixture_event("openai")
    del create["ResourceProperties"]["GraderFunctionArn"]
    from rft_job.spec import PropertyError

    with pytest.raises(PropertyError, match=r"ResourceProperties\.GraderFunctionArn: required"):
        on_event(create)
    assert server.requests == []


def test_the_record_names_the_reward_version_the_job_grades_with(
    server: OpenAIServer, create: dict[str, Any]
) -> None:
    """The evaluation grades with this version; a configuration-only change that publishes a
    new version keeps the job and so keeps the recorded version."""
    from rft_job import record as job_record_module
    from rft_job.model import JobView, Phase

    job_id = on_event(create)["PhysicalResourceId"]
    current = record()
    assert current is not None
    version = create["ResourceProperties"]["GraderFunctionArn"]
    assert current["reward_function_arn"] == version

    job = JobView(
        job_id=job_id, backend="openai", region=REGION, status="running", phase=Phase.RUNNING
    )
    newer = version.rsplit(":", 1)[0] + ":99"
    job_record_module.write(PARAMETER, REGION, job, current["identity"], newer)
    kept = record()
    assert kept is not None and kept["reward_function_arn"] == version
    other = JobView(
        job_id="ftjob-other", backend="openai", region=REGION, status="queued", phase=Phase.RUNNING
    )
    job_record_module.write(PARAMETER, REGION, other, current["identity"], newer)
    replaced = record()
    assert replaced is not None and replaced["reward_function_arn"] == newer
