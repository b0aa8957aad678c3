"""The job custom resource under CloudFormation's failure sequences, on both backends.

Each test replays what CloudFormation sends when a deploy goes wrong (a cancelled Create and
the Delete with an id it made up, a failed update and its rollback, a clean-up Delete that
fails, ...), with the stack's status moved as CloudFormation moves it (the handler reads it),
through the real handler: the native backend against moto, the OpenAI-compatible one through
the real ``openai`` SDK against the local server. Every test ends with how many jobs still
run (cost money) and which job the record names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from tests.job_support import (
    ACCOUNT,
    Stack,
    aws_credentials,  # noqa: F401 (fixture)
    delete_event,
    deploy,
    fixture_event,
    generated_id,
    is_complete,
    job_record,
    moto_job_names,
    moto_jobs,
    on_event,
    stage_dataset,
    update_event,
    with_hyperparameter,
)
from tests.openai_server import OpenAIServer

pytestmark = pytest.mark.usefixtures("aws_credentials")


class Killed(BaseException):
    """The invocation ends here (a timeout or out-of-memory kill catches nothing)."""


class World:
    """One backend's service, seen the same way by every test."""

    backend: str
    region: str
    parameter: str
    changed_hyperparameter: str

    def create_event(self) -> dict[str, Any]:
        """The backend's fixture Create event, its data staged."""
        raise NotImplementedError

    def running(self) -> list[str]:
        """The ids of the jobs that still cost money."""
        raise NotImplementedError

    def all_jobs(self) -> list[str]:
        """Every job the service knows."""
        raise NotImplementedError

    def finish(self, job_id: str, status: str) -> None:
        """Move a job to ``status`` (one of ``succeeded``, ``failed``, ``cancelled``)."""
        raise NotImplementedError

    def refuse_stop(self, job_id: str) -> None:
        """Make stopping ``job_id`` fail with 403 from now on."""
        raise NotImplementedError

    def outage(self) -> None:
        """Make every call to the job endpoint fail from now on."""
        raise NotImplementedError

    def endpoint_calls(self) -> int:
        """How many calls reached the job endpoint so far."""
        raise NotImplementedError

    def record(self) -> dict[str, Any] | None:
        """The job record."""
        return job_record(self.region, self.parameter)

    def current(self) -> str | None:
        """The job the record names."""
        value = self.record()
        return None if value is None else str(value["job_id"])

    def deploy(self, event: dict[str, Any]) -> dict[str, Any]:
        """``on_event`` then ``is_complete`` until complete."""
        return deploy(event, polls=3)


class OpenAIWorld(World):
    backend = "openai"
    region = "us-west-2"
    parameter = "/bedrock-rft/staging/job"
    changed_hyperparameter = "n_epochs"

    def __init__(self, server: OpenAIServer) -> None:
        self.server = server

    def create_event(self) -> dict[str, Any]:
        event = fixture_event("openai")
        stage_dataset(event)
        return event

    def running(self) -> list[str]:
        jobs = self.server.fine_tuning.jobs
        return [
            k for k, v in jobs.items() if v["status"] in ("validating_files", "queued", "running")
        ]

    def all_jobs(self) -> list[str]:
        return list(self.server.fine_tuning.jobs)

    def finish(self, job_id: str, status: str) -> None:
        model = "openai.gpt-oss-20b:ft-1" if status == "succeeded" else None
        self.server.fine_tuning.set_status(job_id, status, fine_tuned_model=model)

    def refuse_stop(self, job_id: str) -> None:
        self.server.fail(
            403, 100, method="POST", path_prefix=f"/v1/fine_tuning/jobs/{job_id}/cancel"
        )

    def outage(self) -> None:
        self.server.fail(503, 10_000, path_prefix="/v1/")

    def endpoint_calls(self) -> int:
        return len(self.server.requests)


class BedrockWorld(World):
    backend = "bedrock"
    region = "us-east-1"
    parameter = "/bedrock-rft/nova-dev/job"
    changed_hyperparameter = "epochCount"

    def __init__(self) -> None:
        from rft_job import aws

        self.client = aws.client("bedrock", self.region)
        moto_job_names(self.client)
        self.calls = 0

        def count(**_: Any) -> None:
            self.calls += 1

        self.client.meta.events.register("before-call.bedrock", count)

    def create_event(self) -> dict[str, Any]:
        return fixture_event("bedrock")

    def _jobs(self) -> dict[str, Any]:
        return {job.job_arn: job for job in moto_jobs(self.region).values()}

    def running(self) -> list[str]:
        return [arn for arn, job in self._jobs().items() if job.status == "InProgress"]

    def all_jobs(self) -> list[str]:
        return list(self._jobs())

    def finish(self, job_id: str, status: str) -> None:
        native = {"succeeded": "Completed", "failed": "Failed", "cancelled": "Stopped"}
        job = self._jobs()[job_id]
        job.status = native[status]
        if status == "succeeded":
            # moto names the job's output model '<model>-<job>' but stores the model under
            # '<model>': point the job at the model moto holds, as the service does.
            from moto.backends import get_backend

            models = get_backend("bedrock")[ACCOUNT][self.region].custom_models
            job.output_model_arn = models[job.custom_model_name].model_arn

    def refuse_stop(self, job_id: str) -> None:
        from botocore.exceptions import ClientError

        def refuse(**_: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
                "StopModelCustomizationJob",
            )

        self.client.meta.events.register(
            "before-call.bedrock.StopModelCustomizationJob", refuse, unique_id="refuse-stop"
        )

    def outage(self) -> None:
        from botocore.exceptions import EndpointConnectionError

        def down(**_: Any) -> None:
            raise EndpointConnectionError(endpoint_url="https://bedrock.us-east-1.amazonaws.com")

        self.client.meta.events.register("before-call.bedrock", down, unique_id="outage")

    def endpoint_calls(self) -> int:
        return self.calls

    def deploy(self, event: dict[str, Any]) -> dict[str, Any]:
        return deploy(event, polls=1)


@pytest.fixture(params=["openai", "bedrock"])
def world(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Each backend in turn, its service and S3, SSM and CloudFormation in moto."""
    request.getfixturevalue("aws_credentials")
    if request.param == "openai":
        server: OpenAIServer = request.getfixturevalue("openai_server")
        from rft_job import lifecycle, openai_backend

        monkeypatch.setattr(openai_backend, "POLL_SECONDS", 0.01)
        monkeypatch.setattr(openai_backend, "RETRY_PAUSE_SECONDS", 0.01)
        monkeypatch.setattr(openai_backend, "CONFIRM_SECONDS", 0.05)
        monkeypatch.setattr(lifecycle, "AMBIGUOUS_GRACE_SECONDS", -1)
        server.fine_tuning.strict = True
        with mock_aws():
            yield OpenAIWorld(server)
    else:
        with mock_aws():
            yield BedrockWorld()


def changed(world: World, event: dict[str, Any], physical_id: str) -> dict[str, Any]:
    """An Update changing one hyperparameter (a new identity: a new job)."""
    value = with_hyperparameter(event, world.changed_hyperparameter, 3)
    return update_event(event, physical_id, Hyperparameters=value)


def rollback_of(update: dict[str, Any], physical_id: str) -> dict[str, Any]:
    """CloudFormation's Update back to ``update``'s old properties."""
    return update_event(update, physical_id, **update["OldResourceProperties"])


# -- a cancelled Create -----------------------------------------------------------------------


@pytest.mark.parametrize("on_delete", ["cancel", "retain"])
def test_a_cancelled_create_is_stopped_by_the_delete_with_a_generated_id(
    world: World, on_delete: str
) -> None:
    """Another resource fails while the job validates: CloudFormation cancels the Create and
    deletes the resource under an id it made up. ``retain`` does not apply to a rollback."""
    create = world.create_event()
    create["ResourceProperties"]["OnDelete"] = on_delete
    stack = Stack(create)
    started = on_event(create)["PhysicalResourceId"]
    assert world.running() == [started]

    stack.status = "ROLLBACK_IN_PROGRESS"
    made_up = generated_id(create)
    assert on_event(delete_event(create, made_up)) == {"PhysicalResourceId": made_up}

    assert world.running() == []
    assert world.current() is None


def test_a_generated_id_delete_during_a_deletion_also_stops_the_job(world: World) -> None:
    """ROLLBACK_FAILED, then delete-stack: the job never deployed is stopped even with retain."""
    create = world.create_event()
    create["ResourceProperties"]["OnDelete"] = "retain"
    stack = Stack(create)
    on_event(create)

    stack.status = "DELETE_IN_PROGRESS"
    on_event(delete_event(create, generated_id(create)))

    assert world.running() == []
    assert world.current() is None


def test_without_the_stack_status_a_generated_id_delete_stops_the_job(world: World) -> None:
    """DescribeStacks fails (here: the stack is unknown): the Delete takes the safe side."""
    create = world.create_event()
    on_event(create)

    on_event(delete_event(create, generated_id(create)))

    assert world.running() == []
    assert world.current() is None


# -- a failed update and its rollback ---------------------------------------------------------


def test_a_cancelled_update_is_rolled_back_to_the_old_job_and_the_new_one_stopped(
    world: World,
) -> None:
    """The update's new job never reached CloudFormation (the update was cancelled): the
    rollback Update, still on the old id, returns to the old job and stops the new one."""
    create = world.create_event()
    stack = Stack(create)
    first = world.deploy(create)["PhysicalResourceId"]
    stack.status = "UPDATE_IN_PROGRESS"
    update = changed(world, create, first)
    second = on_event(update)["PhysicalResourceId"]
    assert sorted(world.running()) == sorted([first, second])
    assert world.current() == second

    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    response = world.deploy(rollback_of(update, first))

    assert response["PhysicalResourceId"] == first
    assert "returned to job" in response["Data"]["Reason"]
    assert second in response["Data"]["Reason"]
    assert world.running() == [first]
    assert world.current() == first


def test_a_failed_update_then_rollback_then_clean_up(world: World) -> None:
    """The update of the job succeeded, another resource failed: rollback Update (on the new
    id) back to the old job, then the clean-up Delete of the new id."""
    create = world.create_event()
    stack = Stack(create)
    first = world.deploy(create)["PhysicalResourceId"]
    stack.status = "UPDATE_IN_PROGRESS"
    update = changed(world, create, first)
    second = world.deploy(update)["PhysicalResourceId"]

    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    rollback = rollback_of(update, second)
    assert world.deploy(rollback)["PhysicalResourceId"] == first
    stack.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
    on_event(delete_event(rollback, second))

    assert len(world.all_jobs()) == 2
    assert world.running() == [first]
    assert world.current() == first


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_a_rollback_after_the_old_job_ended_starts_no_job(world: World, status: str) -> None:
    create = world.create_event()
    stack = Stack(create)
    first = world.deploy(create)["PhysicalResourceId"]
    world.finish(first, status)
    stack.status = "UPDATE_IN_PROGRESS"
    update = changed(world, create, first)
    second = world.deploy(update)["PhysicalResourceId"]

    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    response = world.deploy(rollback_of(update, second))

    assert response["PhysicalResourceId"] == first
    assert "a rollback starts no job" in response["Data"]["Reason"]
    assert len(world.all_jobs()) == 2  # no third job
    assert world.running() == []
    assert world.current() is None


def test_a_rollback_after_the_old_job_succeeded_returns_to_it(world: World) -> None:
    """A succeeded job is still useful (its model): the rollback re-adopts it."""
    create = world.create_event()
    stack = Stack(create)
    first = world.deploy(create)["PhysicalResourceId"]
    world.finish(first, "succeeded")
    stack.status = "UPDATE_IN_PROGRESS"
    update = changed(world, create, first)
    second = world.deploy(update)["PhysicalResourceId"]

    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    assert world.deploy(rollback_of(update, second))["PhysicalResourceId"] == first

    assert len(world.all_jobs()) == 2
    assert world.running() == []
    assert world.current() == first


def test_retain_does_not_keep_the_job_of_a_failed_first_deploy(world: World) -> None:
    """The job's Create succeeded, another resource's failed: the rollback deletes the job
    resource (its real id) while it deletes the reward function it calls; retain keeps
    jobs only when the stack is deleted on purpose."""
    create = world.create_event()
    create["ResourceProperties"]["OnDelete"] = "retain"
    stack = Stack(create)
    first = world.deploy(create)["PhysicalResourceId"]
    stack.status = "ROLLBACK_IN_PROGRESS"

    on_event(delete_event(create, first))

    assert world.running() == []
    assert world.current() is None


def test_retain_keeps_the_job_when_the_stack_is_deleted(world: World) -> None:
    create = world.create_event()
    create["ResourceProperties"]["OnDelete"] = "retain"
    stack = Stack(create)
    first = world.deploy(create)["PhysicalResourceId"]
    stack.status = "DELETE_IN_PROGRESS"

    on_event(delete_event(create, first))

    assert world.running() == [first]
    assert world.current() == first


# -- a clean-up Delete that fails ---------------------------------------------------------------


def test_a_failed_clean_up_delete_notes_the_orphan_candidate_and_fails(world: World) -> None:
    """After a successful update, stopping the replaced job is refused (403): CloudFormation
    ignores a failed clean-up, so the failure is logged, noted in the record and raised."""
    create = world.create_event()
    stack = Stack(create)
    first = world.deploy(create)["PhysicalResourceId"]
    update = changed(world, create, first)
    second = world.deploy(update)["PhysicalResourceId"]
    stack.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    world.refuse_stop(first)
    from rft_job.model import JobError

    with pytest.raises(JobError, match=f"could not stop RFT job {first}.*orphan candidate"):
        on_event(delete_event(update, first))

    assert sorted(world.running()) == sorted([first, second])
    record = world.record()
    assert record is not None and record["job_id"] == second
    (orphan,) = record["orphan_candidates"]
    assert orphan["job_id"] == first and orphan["backend"] == world.backend
    # the note survives the next write of the record (is_complete records the job again)
    from rft_job import record as record_module
    from rft_job.model import JobView, Phase

    job = JobView(second, world.backend, world.region, "running", Phase.RUNNING)
    record_module.write(world.parameter, world.region, job, record["identity"])
    kept = world.record()
    assert kept is not None and [o["job_id"] for o in kept["orphan_candidates"]] == [first]
    assert world.current() == second


# -- on_event killed after the create ---------------------------------------------------------


def _killed_after_create(world: World, create: dict[str, Any], monkeypatch: Any) -> str:
    from rft_job import record as record_module

    def killed(*_: Any, **__: Any) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(record_module, "write", killed)
        with pytest.raises(Killed):
            on_event(create)
    (started,) = world.running()
    assert world.current() is None
    return started


def test_on_event_killed_after_create_then_the_rollback_delete_stops_the_job(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = world.create_event()
    stack = Stack(create)
    _killed_after_create(world, create, monkeypatch)

    stack.status = "ROLLBACK_IN_PROGRESS"
    on_event(delete_event(create, generated_id(create)))

    assert world.running() == []
    assert world.current() is None


def test_on_event_killed_after_create_then_a_retry_adopts_the_job(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = world.create_event()
    Stack(create)
    started = _killed_after_create(world, create, monkeypatch)

    assert world.deploy(create)["PhysicalResourceId"] == started

    assert world.running() == [started]
    assert world.current() == started


# -- an ambiguous create ----------------------------------------------------------------------


def test_a_lost_create_response_adopts_the_job_it_started(world: World) -> None:
    """The create reached the service, its answer did not: exactly one job, recorded."""
    create = world.create_event()
    Stack(create)
    if isinstance(world, OpenAIWorld):
        world.server.fail(500, method="POST", path_prefix="/v1/fine_tuning/jobs", after=True)
        job_id = world.deploy(create)["PhysicalResourceId"]
        creates = [r for r in world.server.requests if r.path == "/v1/fine_tuning/jobs"]
        assert len([r for r in creates if r.method == "POST"]) == 1
    else:
        # botocore resends on 5xx with the same idempotency token: one job.
        first_try: list[bool] = []

        def lost(**kwargs: Any) -> None:
            if not first_try:
                first_try.append(True)
                from botocore.exceptions import ReadTimeoutError

                raise ReadTimeoutError(endpoint_url="https://bedrock.us-east-1.amazonaws.com")

        assert isinstance(world, BedrockWorld)
        world.client.meta.events.register(
            "before-send.bedrock.CreateModelCustomizationJob", lost, unique_id="lost"
        )
        job_id = world.deploy(create)["PhysicalResourceId"]

    assert world.running() == [job_id]
    assert world.current() == job_id


def test_an_unanswered_create_is_never_resent(world: World) -> None:
    """A 5xx (OpenAI-compatible: no idempotency) and no job in the listing: is_complete goes on
    looking for it, never creates again, and fails after its grace period; the rollback's
    Delete of the provisional id then stops a job that shows late."""
    create = world.create_event()
    stack = Stack(create)
    if isinstance(world, BedrockWorld):
        # The native create is idempotent (clientRequestToken); its exhausted retries fail
        # the Create, after stopping any job the failed call left.
        from botocore.exceptions import EndpointConnectionError
        from rft_job.model import JobError

        def down(**_: Any) -> None:
            raise EndpointConnectionError(endpoint_url="https://bedrock.us-east-1.amazonaws.com")

        world.client.meta.events.register(
            "before-call.bedrock.CreateModelCustomizationJob", down, unique_id="create-down"
        )

        with pytest.raises(JobError, match="could not be started"):
            on_event(create)
        assert world.all_jobs() == []
        assert world.current() is None
        return
    assert isinstance(world, OpenAIWorld)
    world.server.fail(500, method="POST", path_prefix="/v1/fine_tuning/jobs")
    response = on_event(create)
    assert response["PhysicalResourceId"].endswith("-pending")
    assert response["Data"]["CreateSent"] == "true"
    from rft_job.model import JobError

    with pytest.raises(JobError, match="not resent"):
        is_complete(create, response)
    creates = [
        r for r in world.server.requests if r.method == "POST" and r.path == "/v1/fine_tuning/jobs"
    ]
    assert len(creates) == 1
    assert world.server.fine_tuning.files  # kept: a late job is still found by their name

    # the job shows late; the rollback's Delete of the provisional id finds and stops it
    (training,) = world.server.fine_tuning.files
    late = world.server.fine_tuning.add_job(status="validating_files", training_file=training)
    stack.status = "ROLLBACK_IN_PROGRESS"
    on_event(delete_event(create, response["PhysicalResourceId"]))

    assert world.server.fine_tuning.jobs[late["id"]]["status"] == "cancelled"
    assert world.running() == []
    assert world.current() is None


# -- a tags-only update during an outage ------------------------------------------------------


def test_a_tags_only_update_during_an_outage_makes_no_endpoint_call(world: World) -> None:
    create = world.create_event()
    stack = Stack(create)
    first = world.deploy(create)["PhysicalResourceId"]
    world.outage()
    before = world.endpoint_calls()

    stack.status = "UPDATE_IN_PROGRESS"
    tags = {**create["ResourceProperties"]["JobTags"], "team": "research"}
    update = update_event(create, first, JobTags=tags)
    assert world.deploy(update)["PhysicalResourceId"] == first
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    assert world.deploy(rollback_of(update, first))["PhysicalResourceId"] == first

    assert world.endpoint_calls() == before
    assert world.running() == [first]
    assert world.current() == first


def test_a_generated_id_delete_that_cannot_look_fails_clearly(world: World) -> None:
    """Endpoint down during the rollback's Delete: it fails (the stack shows it) rather
    than leave a job of that identity running with no owner."""
    create = world.create_event()
    stack = Stack(create)
    started = on_event(create)["PhysicalResourceId"]
    world.outage()
    stack.status = "ROLLBACK_IN_PROGRESS"
    from rft_job.model import JobError

    with pytest.raises(JobError, match="fails rather than leave"):
        on_event(delete_event(create, generated_id(create)))

    assert world.running() == [started]
    assert world.current() == started


# -- the stack's status -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("CREATE_IN_PROGRESS", "deploying"),
        ("UPDATE_IN_PROGRESS", "deploying"),
        ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "cleanup"),
        ("ROLLBACK_IN_PROGRESS", "rollback"),
        ("UPDATE_ROLLBACK_IN_PROGRESS", "rollback"),
        ("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "rollback"),
        ("UPDATE_ROLLBACK_FAILED", "rollback"),
        ("IMPORT_ROLLBACK_IN_PROGRESS", "rollback"),
        ("DELETE_IN_PROGRESS", "deleting"),
    ],
)
def test_stack_statuses_map_to_phases(status: str, phase: str) -> None:
    from tests.job_support import job_modules

    job_modules()
    from rft_job.stack import phase_of_status

    assert phase_of_status(status).value == phase


def test_the_stack_status_request_matches_the_service_model() -> None:
    """DescribeStacks names the stack by its ARN (the only resource the role allows)."""
    from botocore.stub import Stubber
    from rft_job import aws
    from rft_job.stack import StackPhase, stack_phase

    stack_id = fixture_event("openai")["StackId"]
    client = aws.client("cloudformation", "us-west-2")
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackId": stack_id,
                        "StackName": "BedrockRft-staging",
                        "CreationTime": "2026-12-01T00:00:00Z",
                        "StackStatus": "UPDATE_ROLLBACK_IN_PROGRESS",
                    }
                ]
            },
            {"StackName": stack_id},
        )
        stubber.add_client_error("describe_stacks", "AccessDenied", http_status_code=403)
        assert stack_phase(stack_id) is StackPhase.ROLLBACK
        assert stack_phase(stack_id) is StackPhase.UNKNOWN
    assert stack_phase("not-a-stack-arn") is StackPhase.UNKNOWN


# -- deadlines --------------------------------------------------------------------------------


@pytest.mark.parametrize("world", ["openai"], indirect=True)
def test_files_still_processing_are_handed_to_is_complete(world: World) -> None:
    """on_event does not wait for file processing: is_complete creates the job once the files
    are processed, under the same identity, and answers with the job's id."""
    assert isinstance(world, OpenAIWorld)  # the native backend uploads nothing
    world.server.fine_tuning.file_processing_polls = 3
    create = world.create_event()
    Stack(create)
    response = on_event(create)
    assert response["PhysicalResourceId"].endswith("-pending")
    assert world.all_jobs() == []

    polls = [is_complete(create, response) for _ in range(4)]

    assert polls[0] == {"IsComplete": False}  # still processing: no job yet
    done = next(p for p in polls if p["IsComplete"])
    (job_id,) = world.all_jobs()
    assert done["PhysicalResourceId"] == job_id == done["Data"]["JobId"]
    assert world.running() == [job_id]
    assert world.current() == job_id


@pytest.mark.parametrize("world", ["openai"], indirect=True)
@pytest.mark.parametrize("wait", ["true", "false"])
def test_a_pending_create_whose_job_is_rejected_fails_the_deploy(world: World, wait: str) -> None:
    """The files are processed late and the job is then rejected (too few examples): the
    deploy fails with the service's message whether or not it waits for validation."""
    assert isinstance(world, OpenAIWorld)
    world.server.fine_tuning.file_processing_polls = 2
    world.server.fine_tuning.validation_polls = 0
    create = fixture_event("openai")
    create["ResourceProperties"]["WaitForValidation"] = wait
    from tests.job_support import gsm8k_records, jsonl

    stage_dataset(create, train=jsonl(gsm8k_records(40)))
    Stack(create)
    response = on_event(create)
    assert response["PhysicalResourceId"].endswith("-pending")
    from rft_job.model import JobError

    with pytest.raises(JobError, match="at least 100 are required"):
        for _ in range(4):
            is_complete(create, response)

    assert len(world.all_jobs()) == 1
    assert world.running() == []
    assert world.current() is None


@pytest.mark.parametrize("world", ["openai"], indirect=True)
def test_on_event_stops_before_its_timeout(world: World) -> None:
    """Too little time left for an upload: a clear error, nothing left behind."""
    assert isinstance(world, OpenAIWorld)  # the native create is one request
    from rft_job.model import JobError

    from tests.job_support import job_modules
    from tests.lambda_loader import LambdaContext

    create = world.create_event()
    with pytest.raises(JobError, match=r"only .* s are left in this invocation"):
        job_modules().on_event(create, LambdaContext("JobHandler", remaining_ms=60_000))

    assert world.server.fine_tuning.files == {}
    assert world.running() == []
    assert world.current() is None


def test_the_provider_timeouts_nest() -> None:
    """on_event's longest path (two uploads, one create and its confirmation) fits its
    timeout; is_complete's create fits its own."""
    from rft_job import deadline, openai_backend

    from stacks.job import IS_COMPLETE_TIMEOUT, ON_EVENT_TIMEOUT

    longest = 2 * openai_backend.UPLOAD_SECONDS + openai_backend.CREATE_SECONDS
    assert longest + openai_backend.CONFIRM_SECONDS + deadline.RESERVE_SECONDS < (
        ON_EVENT_TIMEOUT.to_seconds()
    )
    assert (
        IS_COMPLETE_TIMEOUT.to_seconds()
        > openai_backend.CREATE_SECONDS + openai_backend.CONFIRM_SECONDS + deadline.RESERVE_SECONDS
    )
