"""The orphaned-job reconciler (``lambda/metrics/reconcile.py``): native jobs in moto's
Bedrock, OpenAI-compatible jobs on the local server through the real openai SDK, the
record, state, metric and topic in moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.backends import get_backend

from tests.job_support import ACCOUNT, moto_job_names, moto_jobs
from tests.lambda_loader import LambdaContext, load_handler
from tests.metrics_fixtures import (
    ENVIRONMENT,
    JOB_PARAMETER,
    REGION,
    FakeAws,
    fake_aws_fixture,  # noqa: F401 (fixture)
)
from tests.openai_server import OpenAIServer

reconcile_module = load_handler("metrics")  # lambda/metrics and lambda/common on sys.path

import reconcile as reconcile_entry  # noqa: E402  (lambda/metrics/reconcile.py)
from training_metrics.orphans import (  # noqa: E402
    OrphanAws,
    OrphanSettings,
    StopFailedError,
    reconcile,
)
from training_metrics.own_jobs import BedrockJobs, OwnJob  # noqa: E402

STATE_PARAMETER = f"/bedrock-rft/{ENVIRONMENT}/orphans"
STACK = "rft-dev"
# The runs' clock: now (CloudWatch keeps data points for two weeks only), to the minute.
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
HEX16 = "0123456789abcdef"


def digest(n: int) -> str:
    """A 64-hex identity digest, distinct per ``n``."""
    return f"{n:064x}"


def settings(action: str = "stop", grace: int = 60, **extra: Any) -> OrphanSettings:
    env = {
        "RFT_ENVIRONMENT": ENVIRONMENT,
        "RFT_BACKEND": "bedrock",
        "ORPHAN_ACTION": action,
        "ORPHAN_GRACE_MINUTES": str(grace),
        "TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:rft-dev",  # the fixture's topic
        **extra,
    }
    return OrphanSettings.from_env(env)


# -- native backend in moto ----------------------------------------------------------------


def create_native_job(name: str, created: datetime, status: str = "InProgress") -> str:
    """A job in moto's Bedrock, created at ``created`` (UTC, as the service reports it)."""
    bedrock = boto3.client("bedrock", region_name=REGION)
    arn = bedrock.create_model_customization_job(
        jobName=name,
        customModelName=f"model-{name}",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/rft-service",
        baseModelIdentifier="amazon.nova-2-lite-v1:0:256k",
        customizationType="REINFORCEMENT_FINE_TUNING",
        trainingDataConfig={"s3Uri": "s3://data/train.jsonl"},
        outputDataConfig={"s3Uri": "s3://data/output/"},
    )["jobArn"]
    job = moto_jobs(REGION)[name]
    job.creation_time = created.strftime("%Y-%m-%d %H:%M:%S")
    job.status = status
    return str(arn)


def native_status(name: str) -> str:
    return str(moto_jobs(REGION)[name].status)


def record(fake: FakeAws, job_id: str, backend: str = "bedrock") -> None:
    fake.record_job(job_id, backend=backend, status="InProgress")


def aws_of(fake: FakeAws, cloudformation: Any = None) -> OrphanAws:
    return OrphanAws(
        ssm=fake.aws.ssm,
        cloudwatch=fake.aws.cloudwatch,
        sns=fake.aws.sns,
        cloudformation=cloudformation,
    )


def lister() -> BedrockJobs:
    client = boto3.client("bedrock", region_name=REGION)
    moto_job_names(client)
    return BedrockJobs(client, f"rft-{ENVIRONMENT}")


@pytest.fixture
def native(fake_aws: FakeAws) -> dict[str, str]:
    """Jobs of every kind: recorded, unrecorded and old, unrecorded and young, ended,
    another environment's with a prefix that starts like ours, and a stranger's."""
    jobs = {
        "recorded": f"rft-dev-{HEX16}-1",
        "orphan": "rft-dev-fedcba9876543210-1",
        "young": "rft-dev-00000000000000aa-2",
        "ended": "rft-dev-00000000000000bb-1",
        "other_env": f"rft-dev-2-{HEX16}-1",
        "stranger": "rft-dev-handmade",
    }
    arns = {
        key: create_native_job(
            name,
            NOW - (timedelta(minutes=5) if key == "young" else timedelta(hours=3)),
            status="Completed" if key == "ended" else "InProgress",
        )
        for key, name in jobs.items()
    }
    record(fake_aws, arns["recorded"])
    return jobs


def test_native_stop_stops_only_the_old_unrecorded_job(
    fake_aws: FakeAws, native: dict[str, str]
) -> None:
    summary = reconcile(settings=settings("stop"), aws=aws_of(fake_aws), lister=lister(), now=NOW)

    assert native_status(native["orphan"]) == "Stopped"
    for key in ("recorded", "young", "other_env", "stranger"):
        assert native_status(native[key]) == "InProgress", key
    assert [arn.rsplit("/", 1)[-1] for arn in summary["stopped"]] == [native["orphan"]]
    assert [arn.rsplit("/", 1)[-1] for arn in summary["within_grace"]] == [native["young"]]
    assert list(fake_aws.series("OrphanedJobs", stat="Maximum").values()) == [1.0]
    (note,) = fake_aws.notifications()
    assert note["subject"] == "[bedrock-rft dev] 1 orphaned RFT job, 1 stopped"
    assert native["orphan"] in note["message"] and "stopped now" in note["message"]
    assert native["young"] not in note["message"]


def test_native_alarm_never_stops_and_reports_once(
    fake_aws: FakeAws, native: dict[str, str]
) -> None:
    for minutes in (0, 15, 59):
        reconcile(
            settings=settings("alarm"),
            aws=aws_of(fake_aws),
            lister=lister(),
            now=NOW + timedelta(minutes=minutes),
        )
    assert native_status(native["orphan"]) == "InProgress"
    notes = fake_aws.notifications()
    # the orphan once; the young job once it passed the grace period (64 minutes old)
    assert [n["subject"] for n in notes] == [
        "[bedrock-rft dev] 1 orphaned RFT job",
        "[bedrock-rft dev] 2 orphaned RFT jobs",
    ]
    assert "left running" in notes[0]["message"]
    # each message lists what is new: the second one only the job that just came of age
    assert native["orphan"] not in notes[1]["message"] and native["young"] in notes[1]["message"]
    assert sorted(fake_aws.series("OrphanedJobs", stat="Maximum").values())[-1] == 2.0


def test_native_alarm_then_stop_waits_one_grace_period_after_the_report(
    fake_aws: FakeAws, native: dict[str, str]
) -> None:
    run = settings("alarm_then_stop", grace=60)
    first = reconcile(settings=run, aws=aws_of(fake_aws), lister=lister(), now=NOW)
    assert first["stopped"] == [] and native_status(native["orphan"]) == "InProgress"
    (reported,) = fake_aws.notifications()
    due = (NOW + timedelta(hours=1)).isoformat(timespec="minutes")
    assert f"will be stopped after {due}" in reported["message"]
    state = json.loads(fake_aws.aws.ssm.get_parameter(Name=STATE_PARAMETER)["Parameter"]["Value"])
    assert list(state["jobs"]) == [first["orphans"][0]]

    # 50 minutes on: the orphan is not due, the young job (55 minutes old) not yet of age
    reconcile(settings=run, aws=aws_of(fake_aws), lister=lister(), now=NOW + timedelta(minutes=50))
    assert native_status(native["orphan"]) == "InProgress"
    assert fake_aws.notifications() == []  # reported once, not on every run

    reconcile(settings=run, aws=aws_of(fake_aws), lister=lister(), now=NOW + timedelta(minutes=60))
    assert native_status(native["orphan"]) == "Stopped"
    assert native_status(native["young"]) == "InProgress"  # 65 minutes old: just reported
    (stopped,) = fake_aws.notifications()
    assert "stopped now" in stopped["message"] and native["young"] in stopped["message"]


def test_a_job_recorded_after_being_reported_is_forgotten_and_kept(
    fake_aws: FakeAws, native: dict[str, str]
) -> None:
    run = settings("alarm_then_stop", grace=60)
    first = reconcile(settings=run, aws=aws_of(fake_aws), lister=lister(), now=NOW)
    (orphan,) = first["orphans"]
    record(fake_aws, orphan)  # e.g. a rollback adopted it
    later = reconcile(
        settings=run, aws=aws_of(fake_aws), lister=lister(), now=NOW + timedelta(hours=5)
    )
    assert native_status(native["orphan"]) == "InProgress"
    # the previously recorded job is now the unrecorded one: reported, not stopped at once
    assert later["stopped"] == [] and later["orphans"] != [orphan]


def test_no_record_makes_every_old_running_job_an_orphan(fake_aws: FakeAws) -> None:
    arn = create_native_job(f"rft-dev-{HEX16}-3", NOW - timedelta(hours=2))
    summary = reconcile(settings=settings("stop"), aws=aws_of(fake_aws), lister=lister(), now=NOW)
    assert summary["recorded_job"] is None and summary["stopped"] == [arn]
    assert "no job is recorded" in fake_aws.notifications()[0]["message"]


def test_nothing_is_counted_or_stopped_while_the_stack_deploys(
    fake_aws: FakeAws, native: dict[str, str]
) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
    )
    stacks = get_backend("cloudformation")[ACCOUNT][REGION].stacks
    (stack,) = stacks.values()
    stack.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    run = settings("stop", STACK_NAME=STACK)

    during = reconcile(settings=run, aws=aws_of(fake_aws, cloudformation), lister=lister(), now=NOW)
    assert during["stack_status"] == "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    assert during["orphans"] == [] and len(during["deferred_for_deploy"]) == 1
    assert native_status(native["orphan"]) == "InProgress"
    assert list(fake_aws.series("OrphanedJobs", stat="Maximum").values()) == [0.0]
    assert fake_aws.notifications() == []

    stack.status = "UPDATE_ROLLBACK_FAILED"  # stuck, not deploying: the net applies
    after = reconcile(settings=run, aws=aws_of(fake_aws, cloudformation), lister=lister(), now=NOW)
    assert after["stack_status"] is None and len(after["stopped"]) == 1
    assert native_status(native["orphan"]) == "Stopped"


class _Refusing(BedrockJobs):
    def stop(self, job: OwnJob) -> bool:
        raise RuntimeError("AccessDenied")


def test_a_failed_stop_is_reported_once_and_fails_every_run(
    fake_aws: FakeAws, native: dict[str, str]
) -> None:
    client = boto3.client("bedrock", region_name=REGION)
    refusing = _Refusing(client, "rft-dev")
    for minutes in (0, 15):
        with pytest.raises(StopFailedError, match="could not stop orphaned jobs"):
            reconcile(
                settings=settings("stop"),
                aws=aws_of(fake_aws),
                lister=refusing,
                now=NOW + timedelta(minutes=minutes),
            )
    (note,) = fake_aws.notifications()
    assert "stopping it FAILED (AccessDenied)" in note["message"]
    assert list(fake_aws.series("OrphanedJobs", stat="Maximum").values()) == [1.0, 1.0]


class _RecordedMeanwhile(BedrockJobs):
    """A deploy records the orphan right after this run listed the jobs."""

    def __init__(self, client: Any, fake: FakeAws) -> None:
        super().__init__(client, "rft-dev")
        self._fake = fake

    def running(self) -> list[OwnJob]:
        jobs = super().running()
        orphan = next(j for j in jobs if j.label == "rft-dev-fedcba9876543210-1")
        record(self._fake, orphan.job_id)
        return jobs


def test_a_job_recorded_while_the_run_lists_is_not_stopped(
    fake_aws: FakeAws, native: dict[str, str]
) -> None:
    client = boto3.client("bedrock", region_name=REGION)
    moto_job_names(client)
    summary = reconcile(
        settings=settings("stop"),
        aws=aws_of(fake_aws),
        lister=_RecordedMeanwhile(client, fake_aws),
        now=NOW,
    )
    assert summary["stopped"] == [] and native_status(native["orphan"]) == "InProgress"
    assert fake_aws.notifications() == []


def test_native_run_through_the_handler(fake_aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC)
    recorded = create_native_job(f"rft-dev-{HEX16}-1", now - timedelta(hours=3))
    orphan = create_native_job(f"rft-dev-{HEX16}-2", now - timedelta(hours=2))
    young = create_native_job(f"rft-dev-{HEX16}-3", now - timedelta(minutes=10))
    record(fake_aws, recorded)
    monkeypatch.setenv("RFT_ENVIRONMENT", ENVIRONMENT)
    monkeypatch.setenv("RFT_BACKEND", "bedrock")
    monkeypatch.setenv("ORPHAN_ACTION", "stop")
    monkeypatch.setenv("TOPIC_ARN", fake_aws.topic_arn)
    reconcile_entry._aws.cache_clear()
    reconcile_entry.bedrock_client.cache_clear()
    moto_job_names(reconcile_entry.bedrock_client())
    summary = reconcile_entry.handler({}, LambdaContext("rft-dev-reconciler"))
    reconcile_entry._aws.cache_clear()
    reconcile_entry.bedrock_client.cache_clear()
    assert summary["stopped"] == [orphan] and summary["within_grace"] == [young]
    assert [native_status(f"rft-dev-{HEX16}-{n}") for n in (1, 2, 3)] == [
        "InProgress",
        "Stopped",
        "InProgress",
    ]


# -- OpenAI-compatible backend on the local server --------------------------------------------


def upload(server: OpenAIServer, filename: str) -> str:
    """A file as the job custom resource uploads it (name only; content is irrelevant)."""
    with server.fine_tuning.lock:
        file_id = server.fine_tuning.new_id("file")
        server.fine_tuning.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": 1,
            "created_at": server.fine_tuning.now(),
            "filename": filename,
            "purpose": "fine-tune",
            "status": "processed",
            "status_details": None,
        }
    return file_id


@pytest.fixture
def deployed(
    fake_aws: FakeAws, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OpenAIServer]:
    """The reconciler's environment as the construct sets it, pointed at the test server."""
    reconcile_entry._aws.cache_clear()
    for key, value in {
        "RFT_ENVIRONMENT": ENVIRONMENT,
        "RFT_BACKEND": "openai",
        "JOB_NAME_PREFIX": "rft-dev",
        "JOB_PARAMETER": JOB_PARAMETER,
        "ORPHANS_PARAMETER": STATE_PARAMETER,
        "ORPHAN_ACTION": "stop",
        "ORPHAN_GRACE_MINUTES": "60",
        "TOPIC_ARN": fake_aws.topic_arn,
    }.items():
        monkeypatch.setenv(key, value)
    yield openai_server
    reconcile_entry._aws.cache_clear()


def test_openai_stop_cancels_only_the_old_unrecorded_job(
    fake_aws: FakeAws, deployed: OpenAIServer
) -> None:
    service = deployed.fine_tuning
    now = service.now()
    ours = [upload(deployed, f"rft-dev-{digest(n)}-train.jsonl") for n in range(4)]
    other_env = upload(deployed, f"rft-dev-2-{digest(9)}-train.jsonl")
    validation = upload(deployed, f"rft-dev-{digest(5)}-validation.jsonl")
    hours_ago = now - 3 * 3600
    recorded = service.add_job("ftjob-recorded", training_file=ours[0], created_at=hours_ago)
    orphan = service.add_job("ftjob-orphan", training_file=ours[1], created_at=hours_ago)
    young = service.add_job(
        "ftjob-young", status="validating_files", training_file=ours[2], created_at=now - 300
    )
    ended = service.add_job(
        "ftjob-ended", status="succeeded", training_file=ours[3], created_at=hours_ago
    )
    foreign = service.add_job("ftjob-other", training_file=other_env, created_at=hours_ago)
    by_validation = service.add_job(
        "ftjob-validation-named", training_file=validation, created_at=hours_ago
    )
    fake_aws.record_job(recorded["id"], status="running")

    summary = reconcile_entry.handler({}, LambdaContext("rft-dev-reconciler"))

    statuses = {job_id: job["status"] for job_id, job in service.jobs.items()}
    assert statuses == {
        recorded["id"]: "running",
        orphan["id"]: "cancelled",
        young["id"]: "validating_files",
        ended["id"]: "succeeded",
        foreign["id"]: "running",
        by_validation["id"]: "running",
    }
    assert summary["stopped"] == [orphan["id"]]
    assert summary["within_grace"] == [young["id"]]
    (note,) = fake_aws.notifications()
    assert f"rft-dev-{digest(1)}-train.jsonl" in note["message"]
    assert "the record names ftjob-recorded" in note["message"]


def test_openai_listing_pages_through_files_and_jobs(
    fake_aws: FakeAws, deployed: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = deployed.fine_tuning
    service.max_page = 3  # force several pages of each list
    hours_ago = service.now() - 3 * 3600
    old_file = upload(deployed, f"rft-dev-{digest(1)}-train.jsonl")
    orphan = service.add_job("ftjob-old-orphan", training_file=old_file, created_at=hours_ago)
    for n in range(10):
        upload(deployed, f"someone-else-{n}.jsonl")
        service.add_job(f"ftjob-noise-{n}", status="succeeded", created_at=hours_ago)
    monkeypatch.setenv("ORPHAN_ACTION", "alarm")
    summary = reconcile_entry.handler({}, LambdaContext("rft-dev-reconciler"))
    assert summary["orphans"] == [orphan["id"]] and summary["stopped"] == []
    assert service.jobs[orphan["id"]]["status"] == "running"


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ORPHAN_ACTION", "kill", "ORPHAN_ACTION = 'kill'; allowed: alarm, stop, alarm_then_stop"),
        ("ORPHAN_GRACE_MINUTES", "0", "ORPHAN_GRACE_MINUTES = '0': must be a whole number"),
        ("ORPHAN_GRACE_MINUTES", "ten", "ORPHAN_GRACE_MINUTES = 'ten': must be a whole number"),
        ("RFT_BACKEND", "sagemaker", "RFT_BACKEND = 'sagemaker'; allowed: openai, bedrock"),
    ],
)
def test_bad_settings_are_named(key: str, value: str, message: str) -> None:
    env = {"RFT_ENVIRONMENT": "dev", key: value}
    with pytest.raises(ValueError, match=message):
        OrphanSettings.from_env(env)


def test_settings_defaults_follow_the_environment() -> None:
    found = OrphanSettings.from_env({"RFT_ENVIRONMENT": "prod"})
    assert (found.name_prefix, found.job_parameter, found.state_parameter) == (
        "rft-prod",
        "/bedrock-rft/prod/job",
        "/bedrock-rft/prod/orphans",
    )
    assert (found.action, found.grace) == ("alarm_then_stop", timedelta(minutes=60))
