"""The local Mantle server speaks the documented shapes, read through the real openai SDK
(other tests, e.g. the metrics collector's, build on its events and checkpoints)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import openai
import pytest

from tests.job_support import gsm8k_records, jsonl
from tests.mantle_server import MantleServer

GRADER = "arn:aws:lambda:us-west-2:123456789012:function:BedrockRft-staging-Reward:3"
METHOD = {
    "type": "reinforcement",
    "reinforcement": {
        "grader": {"type": "lambda", "lambda": {"function": GRADER}},
        "hyperparameters": {"n_epochs": 1},
    },
}


@pytest.fixture
def server() -> Iterator[MantleServer]:
    with MantleServer() as mantle:
        yield mantle


@pytest.fixture
def client(server: MantleServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=3)


def start_job(client: openai.OpenAI, records: int = 120) -> str:
    upload = io.BytesIO(jsonl(gsm8k_records(records)))
    file = client.files.create(file=("train.jsonl", upload), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model="openai.gpt-oss-20b",
        training_file=file.id,
        metadata={"rft_identity": "abc"},
        extra_body={"method": METHOD},
    )
    return str(job.id)


def test_a_job_moves_from_validating_to_queued(server: MantleServer, client: openai.OpenAI) -> None:
    job_id = start_job(client)
    assert server.state.jobs[job_id]["status"] == "validating_files"
    job = client.fine_tuning.jobs.retrieve(job_id)
    assert job.status == "queued"
    assert job.metadata == {"rft_identity": "abc"}
    assert job.method is not None and job.method.type == "reinforcement"


def test_too_few_examples_fail_validation_with_an_error(client: openai.OpenAI) -> None:
    job = client.fine_tuning.jobs.retrieve(start_job(client, records=10))
    assert job.status == "failed"
    assert job.error is not None and job.error.code == "invalid_training_file"


def test_events_page_newest_first_with_after_limit_and_has_more(
    server: MantleServer, client: openai.OpenAI
) -> None:
    job_id = start_job(client)
    client.fine_tuning.jobs.retrieve(job_id)
    for step in range(1, 8):
        server.state.add_metrics(
            job_id, step=step, total_steps=7, critic_rewards_mean=step / 10, actor_entropy=0.9
        )
    everything = [e["id"] for e in server.state.events[job_id]]

    first = client.fine_tuning.jobs.list_events(job_id, limit=3)
    assert first.has_more
    assert [e.id for e in first.data] == everything[::-1][:3]
    second = client.fine_tuning.jobs.list_events(job_id, limit=3, after=first.data[-1].id)
    assert [e.id for e in second.data] == everything[::-1][3:6]
    paged = [e.id for e in client.fine_tuning.jobs.list_events(job_id, limit=2)]
    assert paged == everything[::-1]  # the SDK's auto-paging follows has_more to the end

    newest = first.data[0]
    assert newest.type == "metrics"
    assert newest.message == "Step 7/7: training metrics"
    assert newest.data == {
        "step": 7,
        "total_steps": 7,
        "critic_rewards_mean": 0.7,
        "actor_entropy": 0.9,
    }


def test_checkpoints_carry_their_metrics(server: MantleServer, client: openai.OpenAI) -> None:
    job_id = start_job(client)
    server.state.add_checkpoint(job_id, step=10, metrics={"valid_loss": 0.25})
    server.state.add_checkpoint(job_id, step=20, metrics={"valid_loss": 0.2})

    page = client.fine_tuning.jobs.checkpoints.list(job_id, limit=1)

    assert page.has_more
    [latest] = page.data
    assert latest.step_number == 20
    assert latest.metrics.valid_loss == 0.2
    assert latest.fine_tuning_job_id == job_id


def test_a_finished_job_cannot_be_cancelled(server: MantleServer, client: openai.OpenAI) -> None:
    job_id = start_job(client)
    server.state.set_status(job_id, "succeeded", fine_tuned_model="openai.gpt-oss-20b:ft-1")

    assert client.fine_tuning.jobs.retrieve(job_id).fine_tuned_model == "openai.gpt-oss-20b:ft-1"
    with pytest.raises(openai.BadRequestError, match="already finished with status succeeded"):
        client.fine_tuning.jobs.cancel(job_id)


def test_list_filters_on_metadata(client: openai.OpenAI) -> None:
    job_id = start_job(client)
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"rft_identity": "abc"})] == [
        job_id
    ]
    assert list(client.fine_tuning.jobs.list(metadata={"rft_identity": "other"})) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"suffix": "x"}, "suffix is not supported"),
        ({"model": "gpt-4o"}, "is not available for fine-tuning"),
        ({"training_file": "file-missing"}, "File file-missing not found"),
    ],
)
def test_bad_job_requests_are_refused(
    client: openai.OpenAI, change: dict[str, str], message: str
) -> None:
    file = client.files.create(
        file=("t.jsonl", io.BytesIO(jsonl(gsm8k_records(1)))), purpose="fine-tune"
    )
    body = {"model": "openai.gpt-oss-20b", "training_file": file.id, "method": METHOD, **change}
    with pytest.raises(openai.BadRequestError, match=message):
        client.post("/fine_tuning/jobs", body=body, cast_to=object)


def test_a_wrong_key_is_refused(server: MantleServer) -> None:
    wrong = openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.fine_tuning.jobs.list()


def test_throttled_requests_get_429_until_the_budget_is_spent(
    server: MantleServer, client: openai.OpenAI
) -> None:
    server.state.throttle(2, method="GET")
    assert list(client.fine_tuning.jobs.list()) == []  # the SDK retried twice
    assert [r.method for r in server.state.requests] == ["GET", "GET", "GET"]
