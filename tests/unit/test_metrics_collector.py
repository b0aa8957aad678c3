"""The collector on the OpenAI-compatible path: real SDK over HTTP, moto for AWS."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from openai import OpenAI

from tests.lambda_loader import load_handler
from tests.metrics_fixtures import (
    FakeAws,
    collect_once,
    extend_run,
    fake_aws_fixture,  # noqa: F401 (fixture)
    synthetic_run,
)
from tests.openai_server import FineTuning, OpenAIServer

load_handler("metrics")  # lambda/metrics and lambda/common on sys.path, as in the bundle

from training_metrics.openai_source import OpenAISource  # noqa: E402


def run(fake: FakeAws, server: OpenAIServer, event: Any = None) -> dict[str, Any]:
    """One collector run against the test server."""
    client = OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event"}
    return collect_once(fake, "openai", OpenAISource(client), event or scheduled)


@pytest.fixture
def service(openai_server: OpenAIServer) -> FineTuning:
    """The local server's fine-tuning API, where the tests put jobs and runs (the collector
    gets its client explicitly, in ``run``)."""
    return openai_server.fine_tuning


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_one_point_per_step_across_pages_and_reruns(
    fake_aws: FakeAws,
    openai_server: OpenAIServer,
    service: FineTuning,
    order: Literal["desc", "asc"],
) -> None:
    service.order, service.max_page = order, 7
    job = synthetic_run(service, "ftjob-abc", steps=25, step_seconds=90)
    fake_aws.record_job("ftjob-abc", status="running")

    first = run(fake_aws, openai_server)
    assert first["step"] == 25
    counts = fake_aws.series("RewardMean")
    assert len(counts) == 25 and set(counts.values()) == {1.0}

    # the values are the events' own, in the events' order (one period per step)
    averages = fake_aws.series("RewardMean", stat="Average")
    in_time_order = [averages[stamp] for stamp in sorted(averages)]
    events = service.events["ftjob-abc"]
    expected = [e["data"]["critic_rewards_mean"] for e in events if e["type"] == "metrics"]
    assert in_time_order == pytest.approx(expected)

    # a re-run with nothing new publishes nothing
    again = run(fake_aws, openai_server)
    assert again["published"] == 0
    assert set(fake_aws.series("RewardMean").values()) == {1.0}

    # ten more steps: exactly those are added, still one sample per step
    start = job["created_at"] + 600
    extend_run(service, "ftjob-abc", 26, 35, total_steps=67, rng=random.Random(3), start=start)
    before = len(openai_server.requests)
    third = run(fake_aws, openai_server)
    assert third["step"] == 35
    counts = fake_aws.series("RewardMean")
    assert len(counts) == 35 and set(counts.values()) == {1.0}
    assert len(fake_aws.series("Entropy")) == 35
    assert max(fake_aws.series("Progress", stat="Maximum").values()) == pytest.approx(
        100 * 35 / 67, abs=0.01
    )
    if order == "desc":
        # newest first: paging stops at the previous run's last event (2 of 7 pages)
        event_pages = [r for r in openai_server.requests[before:] if r.path.endswith("/events")]
        assert len(event_pages) == 2


def test_validation_points_come_from_checkpoints(
    fake_aws: FakeAws, openai_server: OpenAIServer, service: FineTuning
) -> None:
    service.max_page = 5
    synthetic_run(service, "ftjob-val", steps=30)
    fake_aws.record_job("ftjob-val", status="running")
    run(fake_aws, openai_server)
    values = fake_aws.series("ValidationRewardMean", stat="Average")
    expected = sorted(c["metrics"]["val_reward_mean"] for c in service.checkpoints["ftjob-val"])
    assert sorted(values.values()) == pytest.approx(expected)
    assert len(values) == 3  # steps 10, 20, 30
    run(fake_aws, openai_server)
    assert set(fake_aws.series("ValidationRewardMean").values()) == {1.0}


def test_endpoint_without_checkpoints_is_not_an_error(
    fake_aws: FakeAws, openai_server: OpenAIServer, service: FineTuning
) -> None:
    service.serve_checkpoints = False
    synthetic_run(service, "ftjob-nock", steps=12)
    fake_aws.record_job("ftjob-nock", status="running")
    summary = run(fake_aws, openai_server)
    assert summary["step"] == 12
    assert fake_aws.series("ValidationRewardMean") == {}


def test_status_changes_notify_update_the_record_and_then_go_quiet(
    fake_aws: FakeAws, openai_server: OpenAIServer, service: FineTuning
) -> None:
    synthetic_run(service, "ftjob-life", steps=10, total_steps=10)
    fake_aws.record_job("ftjob-life", status="validating_files")

    run(fake_aws, openai_server)
    [note] = fake_aws.notifications()
    assert note["subject"] == "[bedrock-rft dev] RFT job ftjob-life: running"
    assert "is now running (was validating_files)." in note["message"]
    assert "Progress: step 10 of 10" in note["message"]
    assert fake_aws.job_record()["status"] == "running"
    assert fake_aws.series("JobRunning", stat="Maximum")

    # no change, no message
    run(fake_aws, openai_server)
    assert fake_aws.notifications() == []

    service.set_status("ftjob-life", "succeeded", fine_tuned_model="openai.gpt-oss-20b:ft-life")
    summary = run(fake_aws, openai_server)
    assert summary["status_changed"] is True
    [note] = fake_aws.notifications()
    assert "is now succeeded (was running)." in note["message"]
    assert "Fine-tuned model: openai.gpt-oss-20b:ft-life" in note["message"]
    record = fake_aws.job_record()
    assert record["status"] == "succeeded"
    assert record["fine_tuned_model"] == "openai.gpt-oss-20b:ft-life"
    assert record["region"] == "us-west-2"  # keys the collector does not own are kept
    assert list(fake_aws.series("JobSucceeded", stat="Maximum").values()) == [1.0]
    assert list(fake_aws.series("JobFailed", stat="Maximum").values()) == [0.0]

    # finished: the next run reads the record and does nothing else
    before = len(openai_server.requests)
    idle = run(fake_aws, openai_server)
    assert idle == {"action": "idle", "job_id": "ftjob-life", "status": "succeeded"}
    assert len(openai_server.requests) == before
    assert fake_aws.notifications() == []


def test_failed_job_message_carries_the_failure_text(
    fake_aws: FakeAws, openai_server: OpenAIServer, service: FineTuning
) -> None:
    synthetic_run(service, "ftjob-bad", steps=3)
    fake_aws.record_job("ftjob-bad", status="running")
    service.set_status("ftjob-bad", "failed", error="Reward function returned malformed output")
    run(fake_aws, openai_server)
    [note] = fake_aws.notifications()
    assert "Failure message: Reward function returned malformed output" in note["message"]
    assert list(fake_aws.series("JobFailed", stat="Maximum").values()) == [1.0]


def test_stall_gauge_counts_minutes_since_the_last_step(
    fake_aws: FakeAws, openai_server: OpenAIServer, service: FineTuning
) -> None:
    # last step 40 minutes ago (steps every 10 minutes)
    now = int(datetime.now(UTC).timestamp())
    synthetic_run(service, "ftjob-slow", steps=3, step_seconds=600, start=now - 4200)
    fake_aws.record_job("ftjob-slow", status="running")
    run(fake_aws, openai_server)
    [minutes] = fake_aws.series("MinutesSinceLastStep", stat="Maximum").values()
    assert 39.5 <= minutes <= 41


def test_no_job_recorded_is_idle(fake_aws: FakeAws, openai_server: OpenAIServer) -> None:
    assert run(fake_aws, openai_server) == {"action": "idle", "reason": "no job recorded"}
    assert openai_server.requests == []


def test_backfill_collects_another_job_without_touching_the_current_one(
    fake_aws: FakeAws, openai_server: OpenAIServer, service: FineTuning
) -> None:
    synthetic_run(service, "ftjob-now", steps=5)
    synthetic_run(service, "ftjob-old", steps=8, seed=11)
    service.set_status("ftjob-old", "failed")
    fake_aws.record_job("ftjob-now", status="running")

    summary = run(fake_aws, openai_server, {"job_id": "ftjob-old"})
    assert summary["action"] == "backfill" and summary["step"] == 8
    assert fake_aws.notifications() == []  # not the recorded job: no message
    assert fake_aws.job_record()["job_id"] == "ftjob-now"
    assert fake_aws.series("JobFailed") == {}  # an old failure must not fire the alarm

    again = run(fake_aws, openai_server, {"job_id": "ftjob-old"})
    assert again["published"] == 0
    # the current job's cursor is separate: it still collects all of its own steps
    assert run(fake_aws, openai_server)["step"] == 5


def test_backfill_of_a_finished_current_job_still_collects(
    fake_aws: FakeAws, openai_server: OpenAIServer, service: FineTuning
) -> None:
    synthetic_run(service, "ftjob-done", steps=6)
    service.set_status("ftjob-done", "succeeded")
    fake_aws.record_job("ftjob-done", status="succeeded")
    assert run(fake_aws, openai_server)["action"] == "idle"
    summary = run(fake_aws, openai_server, {"job_id": "ftjob-done"})
    assert summary["step"] == 6
    assert len(fake_aws.series("RewardMean")) == 6


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"job_id": ""}, "event.job_id: must be a non-empty string"),
        ({"job_id": 7}, "event.job_id: must be a non-empty string"),
        ({"job_id": "x", "backend": "sagemaker"}, "event.backend = 'sagemaker'"),
    ],
)
def test_bad_backfill_events_are_named(
    fake_aws: FakeAws, openai_server: OpenAIServer, event: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run(fake_aws, openai_server, event)


def test_unknown_job_fails_loudly(fake_aws: FakeAws, openai_server: OpenAIServer) -> None:
    import openai

    fake_aws.record_job("ftjob-gone", status="running")
    with pytest.raises(openai.NotFoundError, match="ftjob-gone"):
        run(fake_aws, openai_server)
