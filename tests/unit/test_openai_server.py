"""The local OpenAI-compatible server (tests/openai_server/) speaks the documented shapes, read
through the real openai SDK; other tests build on it (the job custom resource on its files and
jobs, the metrics collector on its events and checkpoints, the judge on its chat completions).
"""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.job_support import gsm8k_records, jsonl
from tests.openai_server import OpenAIServer, Reply

GRADER = "arn:aws:lambda:us-west-2:123456789012:function:BedrockRft-staging-Reward:3"
METHOD: dict[str, Any] = {
    "type": "reinforcement",
    "reinforcement": {
        "grader": {"type": "lambda", "lambda": {"function": GRADER}},
        "hyperparameters": {"n_epochs": 1},
    },
}


@pytest.fixture
def client(openai_server: OpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=openai_server.base_url, api_key=openai_server.api_key, max_retries=3
    )


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


def test_a_job_moves_from_validating_to_queued(
    openai_server: OpenAIServer, client: openai.OpenAI
) -> None:
    job_id = start_job(client)
    assert openai_server.fine_tuning.jobs[job_id]["status"] == "validating_files"
    job = client.fine_tuning.jobs.retrieve(job_id)
    assert job.status == "queued"
    assert job.metadata == {"rft_identity": "abc"}
    assert job.method is not None and job.method.type == "reinforcement"


def test_too_few_examples_fail_validation_with_an_error(client: openai.OpenAI) -> None:
    job = client.fine_tuning.jobs.retrieve(start_job(client, records=10))
    assert job.status == "failed"
    assert job.error is not None and job.error.code == "invalid_training_file"


def test_events_page_newest_first_with_after_limit_and_has_more(
    openai_server: OpenAIServer, client: openai.OpenAI
) -> None:
    job_id = start_job(client)
    client.fine_tuning.jobs.retrieve(job_id)
    for step in range(1, 8):
        openai_server.fine_tuning.add_metrics(
            job_id, step=step, total_steps=7, critic_rewards_mean=step / 10, actor_entropy=0.9
        )
    everything = [e["id"] for e in openai_server.fine_tuning.events[job_id]]

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


def test_checkpoints_carry_their_metrics(
    openai_server: OpenAIServer, client: openai.OpenAI
) -> None:
    job_id = start_job(client)
    openai_server.fine_tuning.add_checkpoint(job_id, step=10, metrics={"valid_loss": 0.25})
    openai_server.fine_tuning.add_checkpoint(job_id, step=20, metrics={"valid_loss": 0.2})

    page = client.fine_tuning.jobs.checkpoints.list(job_id, limit=1)

    assert page.has_more
    [latest] = page.data
    assert latest.step_number == 20
    assert latest.metrics.valid_loss == 0.2
    assert latest.fine_tuning_job_id == job_id


def test_a_finished_job_cannot_be_cancelled(
    openai_server: OpenAIServer, client: openai.OpenAI
) -> None:
    job_id = start_job(client)
    openai_server.fine_tuning.set_status(
        job_id, "succeeded", fine_tuned_model="openai.gpt-oss-20b:ft-1"
    )

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


def test_a_wrong_key_is_refused(openai_server: OpenAIServer) -> None:
    wrong = openai.OpenAI(base_url=openai_server.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.fine_tuning.jobs.list()


def test_throttled_requests_get_429_until_the_budget_is_spent(
    openai_server: OpenAIServer, client: openai.OpenAI
) -> None:
    openai_server.throttle(2, method="GET")
    assert list(client.fine_tuning.jobs.list()) == []  # the SDK retried twice
    assert [r.method for r in openai_server.requests] == ["GET", "GET", "GET"]


# -- chat completions, embeddings and what all endpoints share ------------------------------


def test_chat_and_embeddings_answer_with_the_behaviour(
    openai_server: OpenAIServer, client: openai.OpenAI
) -> None:
    def behaviour(body: dict[str, Any], number: int) -> Reply:
        if "input" in body:
            return Reply(embeddings=[[float(len(text)), 1.0] for text in body["input"]])
        return Reply(content=f"request {number}: {body['messages'][-1]['content']}")

    openai_server.chat.behaviour = behaviour
    chat = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hello"}]
    )
    vectors = client.embeddings.create(model="e", input=["ab", "abc"])

    assert chat.choices[0].message.content == "request 0: hello"
    assert chat.model == "m"
    assert [item.embedding for item in vectors.data] == [[2.0, 1.0], [3.0, 1.0]]
    assert [(r.method, r.path) for r in openai_server.requests] == [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/embeddings"),
    ]
    assert openai_server.requests[0].headers["authorization"] == "Bearer test-key"


def test_an_error_reply_carries_its_status_and_headers(
    openai_server: OpenAIServer, client: openai.OpenAI
) -> None:
    openai_server.chat.behaviour = lambda body, number: Reply(
        status=404, error="model m not found", headers={"x-test": "1"}
    )
    with pytest.raises(openai.NotFoundError, match="model m not found") as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.response.headers["x-test"] == "1"


def _raw_chat_request(server: OpenAIServer) -> socket.socket:
    """A connection that has sent one chat request (and waits for its answer)."""
    host, port = server.base_url.removeprefix("http://").removesuffix("/v1").split(":")
    connection = socket.create_connection((host, int(port)), timeout=10)
    body = json.dumps({"model": "m", "messages": []}).encode()
    connection.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\n"
        b"Authorization: Bearer test-key\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return connection


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the server did not get there within 10 s"
        time.sleep(0.01)


def test_a_client_hanging_up_is_counted_not_printed(
    openai_server: OpenAIServer, capfd: pytest.CaptureFixture[str]
) -> None:
    hung_up = threading.Event()

    def answer_once_the_client_is_gone(body: dict[str, Any], number: int) -> Reply:
        hung_up.wait(10)
        return Reply(content="too late")

    openai_server.chat.behaviour = answer_once_the_client_is_gone
    connection = _raw_chat_request(openai_server)
    _wait_for(lambda: openai_server.in_flight == 1)
    # linger 0: close() resets the connection at once, as a client that gives up does
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()
    hung_up.set()
    _wait_for(lambda: openai_server.hang_ups > 0)

    assert openai_server.hang_ups == 1
    assert openai_server.errors == []
    assert "Traceback" not in capfd.readouterr().err


def test_a_reply_still_delayed_when_the_server_stops_is_dropped() -> None:
    with OpenAIServer() as server:
        server.chat.behaviour = lambda body, number: Reply(content="late", delay=60)
        connection = _raw_chat_request(server)
        _wait_for(lambda: server.in_flight == 1)
    with connection:
        assert connection.recv(1024) == b""  # closed without an answer, not after 60 s
    _wait_for(lambda: server.in_flight == 0)
    assert server.hang_ups == 0


def test_a_failing_behaviour_fails_the_test_when_the_server_stops() -> None:
    def broken(body: dict[str, Any], number: int) -> Reply:
        raise KeyError("a bug in the behaviour")

    server = OpenAIServer()
    with pytest.raises(AssertionError, match="KeyError: 'a bug in the behaviour'"), server:
        server.chat.behaviour = broken
        client = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        with pytest.raises(openai.InternalServerError, match="the test server failed"):
            client.chat.completions.create(model="m", messages=[])
        assert len(server.errors) == 1


def test_requests_to_unknown_routes_get_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="Unknown route GET /v1/models"):
        client.models.list()


def reinforcement(**settings: Any) -> dict[str, Any]:
    """``METHOD`` with some of its reinforcement settings replaced."""
    return {**METHOD, "reinforcement": {**METHOD["reinforcement"], **settings}}


def training_file(client: openai.OpenAI) -> str:
    """The id of a processed upload of 120 GSM8K records."""
    upload = io.BytesIO(jsonl(gsm8k_records(120)))
    return str(client.files.create(file=("t.jsonl", upload), purpose="fine-tune").id)


def test_a_strict_server_accepts_exactly_the_documented_create(
    openai_server: OpenAIServer, client: openai.OpenAI
) -> None:
    openai_server.fine_tuning.strict = True
    documented = {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 0.5}

    job = client.fine_tuning.jobs.create(
        model="openai.gpt-oss-20b",
        training_file=training_file(client),
        extra_body={"method": reinforcement(hyperparameters=documented)},
    )

    assert job.status == "validating_files"


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"metadata": {"k": "v"}}, "metadata"),
        ({"seed": 7}, "seed"),
        ({"validation_file": "file-x"}, "validation_file"),
        (
            {"method": reinforcement(hyperparameters={"eval_interval": 2})},
            "method.reinforcement.hyperparameters.eval_interval",
        ),
        ({"method": reinforcement(response_format={})}, "method.reinforcement.response_format"),
    ],
)
def test_a_strict_server_refuses_any_other_field_with_400(
    openai_server: OpenAIServer, client: openai.OpenAI, extra: dict[str, Any], where: str
) -> None:
    openai_server.fine_tuning.strict = True
    file_id = training_file(client)

    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.jobs.create(
            model="openai.gpt-oss-20b",
            training_file=file_id,
            extra_body={"method": METHOD, **extra},
        )

    assert caught.value.message.endswith(f"Unrecognized request argument supplied: {where}")
    assert openai_server.fine_tuning.jobs == {}


def test_files_keep_their_name_and_list_newest_first_by_purpose_with_paging(
    openai_server: OpenAIServer, client: openai.OpenAI
) -> None:
    openai_server.fine_tuning.max_page = 2
    names = [f"f{n}.jsonl" for n in range(5)]
    for name in names:
        client.files.create(file=(name, io.BytesIO(b'{"a": 1}\n')), purpose="fine-tune")

    listed = list(client.files.list(purpose="fine-tune"))  # three pages

    assert [f.filename for f in listed] == list(reversed(names))
    assert list(client.files.list(purpose="batch")) == []
    openai_server.fine_tuning.store_filenames = False
    renamed = client.files.create(file=("mine.jsonl", io.BytesIO(b"{}\n")), purpose="fine-tune")
    assert renamed.filename == f"{renamed.id}.jsonl"
