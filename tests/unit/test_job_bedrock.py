"""The job custom resource on the native backend: moto for the lifecycle (with its Bedrock
gaps worked around, see ``tests.job_support``), botocore's Stubber to validate every request
against the real service model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from tests.job_support import (
    ACCOUNT,
    Stack,
    aws_credentials,  # noqa: F401 (fixture)
    delete_event,
    deploy,
    event_identity,
    fixture_event,
    is_complete,
    job_record,
    moto_job_names,
    moto_jobs,
    on_event,
    update_event,
    with_hyperparameter,
)

pytestmark = pytest.mark.usefixtures("aws_credentials")
REGION = "us-east-1"
PARAMETER = "/bedrock-rft/nova-dev/job"
MODEL = "amazon.nova-2-lite-v1:0:256k"
# A job ARN in the real service's shape (moto's end in the job name instead).
REAL_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-customization-job/{MODEL}/a1b2c3d4e5f6"


def deploy_now(event: dict[str, Any]) -> dict[str, Any]:
    """``deploy``, complete at the first ``is_complete`` (moto reports no validation status,
    as RFT jobs may not either: accepted at once, flagged)."""
    response = deploy(event, polls=1)
    if response["Data"].get("AwaitValidation") == "true":
        assert response["Data"]["Validation"] == "not reported"
    return response


def record() -> dict[str, Any] | None:
    return job_record(REGION, PARAMETER)


@pytest.fixture
def moto_bedrock(request: pytest.FixtureRequest) -> Iterator[None]:
    """Bedrock and SSM in moto; jobs looked up by name as moto requires."""
    request.getfixturevalue("aws_credentials")
    with mock_aws():
        from rft_job import aws

        moto_job_names(aws.client("bedrock", REGION))
        yield


@pytest.fixture
def stubbed(request: pytest.FixtureRequest) -> Iterator[Stubber]:
    """The handler's Bedrock client under a Stubber (SSM stays in moto)."""
    request.getfixturevalue("aws_credentials")
    with mock_aws():
        from rft_job import aws

        with Stubber(aws.client("bedrock", REGION)) as stubber:
            yield stubber
            stubber.assert_no_pending_responses()


# -- lifecycle against moto ---------------------------------------------------------------


@pytest.mark.usefixtures("moto_bedrock")
def test_done_when_scenario() -> None:
    """Create, retried Create, Update unchanged, Update with one hyperparameter changed,
    Delete of the first job, Delete of an unknown id: two jobs, the first stopped."""
    create = fixture_event("bedrock")
    stack = Stack(create)

    first = deploy_now(create)["PhysicalResourceId"]
    assert deploy_now(create)["PhysicalResourceId"] == first
    assert deploy_now(update_event(create, first))["PhysicalResourceId"] == first
    changed = update_event(
        create, first, Hyperparameters=with_hyperparameter(create, "epochCount", 3)
    )
    second = deploy_now(changed)["PhysicalResourceId"]
    assert second != first
    stack.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    on_event(delete_event(changed, first))
    on_event(delete_event(changed, REAL_ARN))

    jobs = moto_jobs(REGION)
    assert len(jobs) == 2
    by_arn = {job.job_arn: job for job in jobs.values()}
    assert by_arn[first].status == "Stopped"
    assert by_arn[second].status == "InProgress"
    current = record()
    assert current is not None and current["job_id"] == second


@pytest.mark.usefixtures("moto_bedrock")
def test_create_names_the_job_after_its_identity_and_records_it() -> None:
    create = fixture_event("bedrock")

    response = on_event(create)

    (job,) = moto_jobs(REGION).values()
    data = response["Data"]
    assert response["PhysicalResourceId"] == job.job_arn == data["JobId"]
    assert job.job_name == f"rft-nova-dev-{data['Identity'][:16]}-1" == data["JobName"]
    assert len(job.job_name) <= 63
    assert job.client_request_token == f"{data['Identity']}-1"
    assert job.customization_type == "REINFORCEMENT_FINE_TUNING"
    assert job.custom_model_kms_key_id == create["ResourceProperties"]["KmsKeyArn"]
    assert {"key": "rft:identity", "value": data["Identity"]} in job.job_tags
    current = record()
    assert current is not None
    assert current["job_id"] == job.job_arn
    assert (current["backend"], current["region"], current["status"]) == (
        "bedrock",
        REGION,
        "InProgress",
    )


@pytest.mark.usefixtures("moto_bedrock")
def test_create_after_a_stopped_job_of_the_same_inputs_uses_the_next_name() -> None:
    create = fixture_event("bedrock")
    first = on_event(create)
    on_event(delete_event(create, first["PhysicalResourceId"]))

    second = on_event(create)

    assert second["PhysicalResourceId"] != first["PhysicalResourceId"]
    assert second["Data"]["JobName"].endswith("-2")


@pytest.mark.usefixtures("moto_bedrock")
def test_update_of_an_operational_property_keeps_the_job() -> None:
    create = fixture_event("bedrock")
    first = deploy_now(create)["PhysicalResourceId"]

    kept = deploy_now(
        update_event(
            create,
            first,
            OnDelete="retain",
            OutputDataUri="s3://bedrockrft-nova-dev-artifacts-9c0d1e2f/elsewhere/",
        )
    )

    assert kept["PhysicalResourceId"] == first
    assert len(moto_jobs(REGION)) == 1


@pytest.mark.usefixtures("moto_bedrock")
def test_delete_with_retain_leaves_the_job_running() -> None:
    create = fixture_event("bedrock")
    create["ResourceProperties"]["OnDelete"] = "retain"
    stack = Stack(create)
    job_arn = deploy_now(create)["PhysicalResourceId"]

    stack.status = "DELETE_IN_PROGRESS"
    on_event(delete_event(create, job_arn))

    (job,) = moto_jobs(REGION).values()
    assert job.status == "InProgress"
    assert record() is not None


@pytest.mark.usefixtures("moto_bedrock")
@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_delete_of_a_finished_job_is_success(status: str) -> None:
    create = fixture_event("bedrock")
    job_arn = deploy_now(create)["PhysicalResourceId"]
    (job,) = moto_jobs(REGION).values()
    job.status = status

    assert on_event(delete_event(create, job_arn)) == {"PhysicalResourceId": job_arn}

    assert job.status == status
    assert record() is None


@pytest.mark.usefixtures("moto_bedrock")
@pytest.mark.parametrize("job_id", [REAL_ARN, "not a job id", ""])
def test_delete_of_an_unknown_job_is_success(job_id: str) -> None:
    assert on_event(delete_event(fixture_event("bedrock"), job_id)) == {
        "PhysicalResourceId": job_id
    }


@pytest.mark.usefixtures("moto_bedrock")
def test_a_failed_validation_fails_the_deploy_with_the_service_message() -> None:
    create = fixture_event("bedrock")
    response = on_event(create)
    (job,) = moto_jobs(REGION).values()
    job.status = "Failed"
    job.failure_message = "Training data row 7 is missing 'messages'"
    from rft_job.model import JobError

    with pytest.raises(JobError) as caught:
        is_complete(create, response)

    assert job.job_arn in str(caught.value)
    assert "Training data row 7 is missing 'messages'" in str(caught.value)
    assert record() is None


@pytest.mark.usefixtures("moto_bedrock")
def test_throttling_is_retried() -> None:
    from botocore.awsrequest import AWSResponse
    from rft_job import aws

    client = aws.client("bedrock", REGION)
    attempts: list[str] = []

    def throttle_once(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(request.url)
        if len(attempts) > 1:
            return None  # on to moto
        body = json.dumps({"message": "Rate exceeded"}).encode()
        headers = {"x-amzn-ErrorType": "ThrottlingException", "content-type": "application/json"}
        return AWSResponse(request.url, 429, headers, _Raw(body))

    client.meta.events.register_first(
        "before-send.bedrock.ListModelCustomizationJobs", throttle_once
    )

    on_event(fixture_event("bedrock"))

    assert len(attempts) == 2
    assert len(moto_jobs(REGION)) == 1


class _Raw:
    """The raw body botocore reads from a response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


# -- requests validated against the service model (Stubber) -------------------------------


def _summary(name: str, status: str, arn: str = REAL_ARN) -> dict[str, Any]:
    return {
        "jobArn": arn,
        "baseModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{MODEL}",
        "jobName": name,
        "status": status,
        "creationTime": datetime(2026, 11, 1, tzinfo=UTC),
    }


def _job(name: str, status: str, **extra: Any) -> dict[str, Any]:
    props = fixture_event("bedrock")["ResourceProperties"]
    return {
        "jobArn": REAL_ARN,
        "jobName": name,
        "outputModelName": name,
        "roleArn": props["RoleArn"],
        "creationTime": datetime(2026, 11, 1, tzinfo=UTC),
        "baseModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{MODEL}",
        "trainingDataConfig": {"s3Uri": props["TrainingDataUri"]},
        "validationDataConfig": {"validators": [{"s3Uri": props["ValidationDataUri"]}]},
        "outputDataConfig": {"s3Uri": props["OutputDataUri"]},
        "status": status,
        **extra,
    }


def _list_params(identity: Any) -> dict[str, Any]:
    return {
        "nameContains": identity.name_stem,
        "sortBy": "CreationTime",
        "sortOrder": "Descending",
    }


def test_the_create_request_matches_the_service_model(stubbed: Stubber) -> None:
    create = fixture_event("bedrock")
    props = create["ResourceProperties"]
    props["VpcConfig"] = {"SubnetIds": ["subnet-0a1b2c3d"], "SecurityGroupIds": ["sg-0a1b2c3d"]}
    identity = event_identity(create)
    name = f"{identity.name_stem}-1"
    tags = [
        {"key": "environment", "value": "nova-dev"},
        {"key": "project", "value": "bedrock-rft"},
        {"key": "rft:environment", "value": "nova-dev"},
        {"key": "rft:identity", "value": identity.digest},
    ]
    stubbed.add_response(
        "list_model_customization_jobs",
        {"modelCustomizationJobSummaries": []},
        _list_params(identity),
    )
    stubbed.add_response(
        "create_model_customization_job",
        {"jobArn": REAL_ARN},
        {
            "jobName": name,
            "customModelName": name,
            "roleArn": props["RoleArn"],
            "clientRequestToken": f"{identity.digest}-1",
            "baseModelIdentifier": f"arn:aws:bedrock:{REGION}::foundation-model/{MODEL}",
            "customizationType": "REINFORCEMENT_FINE_TUNING",
            "trainingDataConfig": {"s3Uri": props["TrainingDataUri"]},
            "validationDataConfig": {"validators": [{"s3Uri": props["ValidationDataUri"]}]},
            "outputDataConfig": {"s3Uri": props["OutputDataUri"]},
            "customizationConfig": {
                "rftConfig": {
                    "graderConfig": {"lambdaGrader": {"lambdaArn": props["GraderFunctionArn"]}},
                    "hyperParameters": {
                        "batchSize": 64,
                        "epochCount": 2,
                        "inferenceMaxTokens": 8192,
                        "learningRate": 1e-05,
                        "maxPromptLength": 4096,
                        "reasoningEffort": "high",
                        "trainingSamplePerPrompt": 4,
                    },
                }
            },
            "customModelKmsKeyId": props["KmsKeyArn"],
            "vpcConfig": {"subnetIds": ["subnet-0a1b2c3d"], "securityGroupIds": ["sg-0a1b2c3d"]},
            "jobTags": tags,
            "customModelTags": tags,
        },
    )
    stubbed.add_response(
        "get_model_customization_job",
        _job(
            name,
            "InProgress",
            statusDetails={"validationDetails": {"status": "InProgress"}},
        ),
        {"jobIdentifier": REAL_ARN},
    )

    response = on_event(create)

    assert response["PhysicalResourceId"] == REAL_ARN
    assert response["Data"]["AwaitValidation"] == "true"


def _awaiting() -> dict[str, Any]:
    """What ``on_event`` answered for a job whose data is being checked."""
    return {
        "PhysicalResourceId": REAL_ARN,
        "Data": {"AwaitValidation": "true", "StartedAt": str(int(datetime.now(UTC).timestamp()))},
    }


def _poll(stubbed: Stubber, create: dict[str, Any], status: str, **extra: Any) -> dict[str, Any]:
    """``is_complete`` after the service answered one Get with ``status`` (and ``extra``)."""
    name = f"{event_identity(create).name_stem}-1"
    stubbed.add_response(
        "get_model_customization_job",
        _job(name, status, **extra),
        {"jobIdentifier": REAL_ARN},
    )
    return is_complete(create, _awaiting())


@pytest.mark.parametrize(
    ("validation", "complete"),
    [("NotStarted", False), ("InProgress", False), ("Completed", True)],
)
def test_with_status_details_is_complete_waits_for_the_validation_sub_status(
    stubbed: Stubber, validation: str, complete: bool
) -> None:
    create = fixture_event("bedrock")
    details = {"validationDetails": {"status": validation}}

    result = _poll(stubbed, create, "InProgress", statusDetails=details)

    assert result["IsComplete"] is complete
    if complete:
        assert result["Data"] == {"Status": "InProgress"}  # validation reported
        current = record()
        assert current is not None and current["job_id"] == REAL_ARN


def test_with_status_details_a_failed_validation_fails_the_deploy(stubbed: Stubber) -> None:
    create = fixture_event("bedrock")
    details = {"validationDetails": {"status": "Failed"}}
    from rft_job.model import JobError

    with pytest.raises(JobError, match="failed before training started: Row 3: no messages"):
        _poll(
            stubbed,
            create,
            "InProgress",
            statusDetails=details,
            failureMessage="Row 3: no messages",
        )
    assert record() is None


def test_a_later_sub_task_status_means_the_data_was_accepted(stubbed: Stubber) -> None:
    create = fixture_event("bedrock")
    details = {"trainingDetails": {"status": "InProgress"}}

    result = _poll(stubbed, create, "InProgress", statusDetails=details)

    assert result == {"IsComplete": True, "Data": {"Status": "InProgress"}}


def test_without_status_details_an_in_progress_job_is_accepted_and_flagged(
    stubbed: Stubber, caplog: pytest.LogCaptureFixture
) -> None:
    """RFT jobs may not fill statusDetails [open]: the deploy cannot tell more than "the
    service runs the job and has not failed it", and says so."""
    create = fixture_event("bedrock")

    result = _poll(stubbed, create, "InProgress")

    assert result == {
        "IsComplete": True,
        "Data": {"Status": "InProgress", "Validation": "not reported"},
    }
    assert "reports no validation status" in caplog.text
    current = record()
    assert current is not None and current["status"] == "InProgress"


def test_without_status_details_a_failed_job_fails_the_deploy(stubbed: Stubber) -> None:
    create = fixture_event("bedrock")
    from rft_job.model import JobError

    with pytest.raises(JobError, match="failed before training started: Invalid data format"):
        _poll(stubbed, create, "Failed", failureMessage="Invalid data format")


def test_a_failed_create_stops_the_half_created_job(stubbed: Stubber) -> None:
    """The create call failed after the service had started the job (e.g. a lost
    response): the job of this identity is stopped before the error is raised."""
    create = fixture_event("bedrock")
    identity = event_identity(create)
    name = f"{identity.name_stem}-1"
    stubbed.add_response(
        "list_model_customization_jobs",
        {"modelCustomizationJobSummaries": []},
        _list_params(identity),
    )
    stubbed.add_client_error(
        "create_model_customization_job",
        service_error_code="InternalServerException",
        service_message="Internal failure",
        http_status_code=500,
    )
    stubbed.add_response(
        "list_model_customization_jobs",
        {"modelCustomizationJobSummaries": [_summary(name, "InProgress")]},
        _list_params(identity),
    )
    stubbed.add_response(
        "get_model_customization_job", _job(name, "InProgress"), {"jobIdentifier": REAL_ARN}
    )
    stubbed.add_response("stop_model_customization_job", {}, {"jobIdentifier": REAL_ARN})
    from rft_job.model import JobError

    with pytest.raises(JobError) as caught:
        on_event(create)

    message = str(caught.value)
    assert "Internal failure" in message
    assert f"the half-created job {REAL_ARN} was cancelled" in message


def test_a_rejected_create_raises_the_service_message(stubbed: Stubber) -> None:
    create = fixture_event("bedrock")
    identity = event_identity(create)
    no_jobs: dict[str, Any] = {"modelCustomizationJobSummaries": []}
    stubbed.add_response("list_model_customization_jobs", no_jobs, _list_params(identity))
    stubbed.add_client_error(
        "create_model_customization_job",
        service_error_code="ValidationException",
        service_message="batchSize 64 exceeds the quota for this account",
        http_status_code=400,
    )
    # the check for a half-created job finds none
    stubbed.add_response("list_model_customization_jobs", no_jobs, _list_params(identity))
    from rft_job.model import JobError

    with pytest.raises(JobError, match="batchSize 64 exceeds the quota for this account"):
        on_event(create)


def test_retried_create_adopts_the_job_of_itsevent_identity(stubbed: Stubber) -> None:
    create = fixture_event("bedrock")
    identity = event_identity(create)
    name = f"{identity.name_stem}-1"
    stubbed.add_response(
        "list_model_customization_jobs",
        {
            "modelCustomizationJobSummaries": [
                _summary(name, "InProgress"),
                _summary("rft-nova-dev-someone-else-1", "InProgress", arn=REAL_ARN + "0"),
            ]
        },
        _list_params(identity),
    )
    stubbed.add_response(
        "get_model_customization_job", _job(name, "InProgress"), {"jobIdentifier": REAL_ARN}
    )

    response = on_event(create)

    assert response["PhysicalResourceId"] == REAL_ARN


def test_destroy_deletes_the_model_only_when_opted_in(stubbed: Stubber) -> None:
    create = fixture_event("bedrock")
    name = f"{event_identity(create).name_stem}-1"
    model_arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/{MODEL}/abcdef012345"
    finished = _job(name, "Completed", outputModelArn=model_arn)
    stubbed.add_response("get_model_customization_job", finished, {"jobIdentifier": REAL_ARN})
    on_event(delete_event(create, REAL_ARN))  # kept: no delete_custom_model call

    create["ResourceProperties"]["DeleteModelOnDestroy"] = "true"
    stubbed.add_response("get_model_customization_job", finished, {"jobIdentifier": REAL_ARN})
    stubbed.add_response("delete_custom_model", {}, {"modelIdentifier": model_arn})
    on_event(delete_event(create, REAL_ARN))


def test_an_update_replacing_a_succeeded_job_keeps_its_model(stubbed: Stubber) -> None:
    """The clean-up Delete after an Update is not a destroy: the newer job is recorded."""
    create = fixture_event("bedrock")
    create["ResourceProperties"]["DeleteModelOnDestroy"] = "true"
    name = f"{event_identity(create).name_stem}-1"
    model_arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/{MODEL}/abcdef012345"
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=PARAMETER, Type="String", Value=json.dumps({"job_id": REAL_ARN + "-newer"})
    )
    stubbed.add_response(
        "get_model_customization_job",
        _job(name, "Completed", outputModelArn=model_arn),
        {"jobIdentifier": REAL_ARN},
    )

    on_event(delete_event(create, REAL_ARN))  # no delete_custom_model expected

    assert record() == {"job_id": REAL_ARN + "-newer"}


def test_stopping_a_job_that_just_ended_is_success(stubbed: Stubber) -> None:
    create = fixture_event("bedrock")
    name = f"{event_identity(create).name_stem}-1"
    stubbed.add_response(
        "get_model_customization_job", _job(name, "InProgress"), {"jobIdentifier": REAL_ARN}
    )
    stubbed.add_client_error(
        "stop_model_customization_job",
        service_error_code="ConflictException",
        service_message="Job is not in a stoppable state",
        http_status_code=409,
        expected_params={"jobIdentifier": REAL_ARN},
    )
    stubbed.add_response(
        "get_model_customization_job", _job(name, "Completed"), {"jobIdentifier": ANY}
    )

    assert on_event(delete_event(create, REAL_ARN)) == {"PhysicalResourceId": REAL_ARN}


def _completed_first_attempt(stubbed: Stubber, create: dict[str, Any]) -> tuple[Any, str]:
    """A first attempt of ``create``'s identity that Completed with a model."""
    identity = event_identity(create)
    name = f"{identity.name_stem}-1"
    model_arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/{MODEL}/abcdef012345"
    stubbed.add_response(
        "list_model_customization_jobs",
        {"modelCustomizationJobSummaries": [_summary(name, "Completed")]},
        _list_params(identity),
    )
    stubbed.add_response(
        "get_model_customization_job",
        _job(name, "Completed", outputModelArn=model_arn),
        {"jobIdentifier": REAL_ARN},
    )
    return identity, model_arn


def test_a_completed_job_whose_model_exists_is_adopted(stubbed: Stubber) -> None:
    create = fixture_event("bedrock")
    _, model_arn = _completed_first_attempt(stubbed, create)
    stubbed.add_response(
        "get_custom_model",
        {
            "modelArn": model_arn,
            "modelName": "m",
            "creationTime": datetime(2026, 11, 2, tzinfo=UTC),
        },
        {"modelIdentifier": model_arn},
    )

    response = on_event(create)

    assert response["PhysicalResourceId"] == REAL_ARN
    assert (record() or {})["fine_tuned_model"] == model_arn


def test_a_completed_job_whose_model_was_deleted_is_not_adopted(stubbed: Stubber) -> None:
    """Adopting it would record a model nobody can call: the next attempt is started."""
    create = fixture_event("bedrock")
    create["ResourceProperties"]["WaitForValidation"] = "false"
    identity, model_arn = _completed_first_attempt(stubbed, create)
    stubbed.add_client_error(
        "get_custom_model",
        service_error_code="ResourceNotFoundException",
        service_message="Could not find model",
        http_status_code=404,
        expected_params={"modelIdentifier": model_arn},
    )
    second = f"{identity.name_stem}-2"
    new_arn = REAL_ARN[:-1] + "9"
    fields = (
        "customModelName roleArn clientRequestToken baseModelIdentifier customizationType "
        "trainingDataConfig validationDataConfig outputDataConfig customizationConfig jobTags "
        "customModelTags customModelKmsKeyId"
    )
    stubbed.add_response(
        "create_model_customization_job",
        {"jobArn": new_arn},
        {"jobName": second, **{field: ANY for field in fields.split()}},
    )
    stubbed.add_response(
        "get_model_customization_job",
        {**_job(second, "InProgress"), "jobArn": new_arn},
        {"jobIdentifier": new_arn},
    )

    response = on_event(create)

    assert response["PhysicalResourceId"] == new_arn
    assert (record() or {})["job_id"] == new_arn
