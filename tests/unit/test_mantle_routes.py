"""The endpoint's path prefix per model: the table, the environment's override, a judge's own
``route``, against the local server serving both prefixes and refusing a model on the wrong
one with Bedrock's "isn't supported on this route"."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.lambda_loader import LAMBDA_DIR, LambdaContext
from tests.openai_server import OpenAIServer, rubric_judge
from tests.reward_support import load_reward, rollout, scores

sys.path.insert(0, str(LAMBDA_DIR / "common"))

from rft_common.mantle import base_url, openai_client, route_for

ELSEWHERE = "google.gemma-3-27b-it"  # a model the table does not know, served on /openai/v1


@pytest.fixture
def mantle(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    """The local server as Bedrock's regional endpoint: the project's clients append the
    model's route to its origin (no OPENAI_BASE_URL, which would be used verbatim)."""
    with OpenAIServer() as server:
        server.model_routes = {"openai.gpt-5.1": "/openai/v1", ELSEWHERE: "/openai/v1"}
        server.chat.behaviour = rubric_judge(lambda text: 10.0 if "Paris" in text else 0.0)
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        monkeypatch.delenv("BEDROCK_MANTLE_ROUTE", raising=False)
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_MANTLE", server.origin)
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key or "")
        monkeypatch.setenv("AWS_REGION", "us-west-2")
        yield server


def test_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BEDROCK_MANTLE_ROUTE", raising=False)
    assert route_for("openai.gpt-oss-20b") == "/v1"
    assert route_for("openai.gpt-oss-120b") == "/v1"
    assert route_for("qwen.qwen3-32b") == "/v1"
    assert route_for("openai.gpt-5.1") == "/openai/v1"
    assert route_for(ELSEWHERE) == "/v1"  # unknown: the documented default
    assert route_for(None) == "/v1"  # files and fine-tuning jobs
    assert route_for("openai.gpt-5.1", "/v1") == "/v1"  # the caller's own route wins
    monkeypatch.setenv("BEDROCK_MANTLE_ROUTE", "/openai/v1")
    assert route_for("qwen.qwen3-32b") == "/openai/v1"
    assert route_for("qwen.qwen3-32b", "/v1") == "/v1"
    assert route_for(None) == "/openai/v1"  # the job handler's and collector's calls
    monkeypatch.setenv("BEDROCK_MANTLE_ROUTE", "/v2")
    with pytest.raises(ValueError, match="BEDROCK_MANTLE_ROUTE = '/v2': must be one of"):
        route_for("qwen.qwen3-32b")


def test_regional_endpoint_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "BEDROCK_MANTLE_ROUTE", "AWS_ENDPOINT_URL_BEDROCK_MANTLE"):
        monkeypatch.delenv(name, raising=False)
    host = "https://bedrock-mantle.us-west-2.api.aws"
    assert base_url("us-west-2", model="openai.gpt-5.1") == f"{host}/openai/v1"
    assert base_url("us-west-2", model="openai.gpt-oss-20b") == f"{host}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # used as is
    assert base_url("us-west-2", model="openai.gpt-5.1") == "http://127.0.0.1:9/v1"


def test_the_wrong_route_is_refused(mantle: OpenAIServer) -> None:
    client = openai_client(model="openai.gpt-5.1", route="/v1", max_retries=0)
    refused = r"model openai\.gpt-5\.1 isn't supported on this route"
    with pytest.raises(openai.BadRequestError, match=refused):
        client.chat.completions.create(
            model="openai.gpt-5.1", messages=[{"role": "user", "content": "hi"}]
        )
    right = openai_client(model="openai.gpt-5.1", max_retries=0)
    right.chat.completions.create(
        model="openai.gpt-5.1", messages=[{"role": "user", "content": "<response-1>Paris"}]
    )
    assert [r.path for r in mantle.requests] == [
        "/v1/chat/completions",
        "/openai/v1/chat/completions",
    ]


def judged(monkeypatch: pytest.MonkeyPatch, model: str, **extra: Any) -> list[float]:
    definition = {
        "type": "score_model",
        "name": "capital",
        "model": model,
        "input": [
            {"role": "user", "content": "Score 10 if it names Paris: {{ sample.output_text }}"}
        ],
        "range": [0, 10],
        "max_retries": 0,
        **extra,
    }
    module = load_reward(monkeypatch, definition)
    outputs = module.handler([rollout("s0", "Paris", "Paris")], LambdaContext())
    return scores(outputs)


@pytest.mark.parametrize(
    ("model", "path"),
    [("openai.gpt-5.1", "/openai/v1"), ("openai.gpt-oss-120b", "/v1")],
)
def test_judges_follow_the_table(
    monkeypatch: pytest.MonkeyPatch, mantle: OpenAIServer, model: str, path: str
) -> None:
    assert judged(monkeypatch, model) == [1.0]
    assert [r.path for r in mantle.requests] == [f"{path}/chat/completions"]


def test_a_judge_route_and_the_environment_route_override_the_table(
    monkeypatch: pytest.MonkeyPatch, mantle: OpenAIServer
) -> None:
    assert judged(monkeypatch, ELSEWHERE) == [0.0]  # refused on /v1: the fallback score
    assert judged(monkeypatch, ELSEWHERE, route="/openai/v1") == [1.0]
    monkeypatch.setenv("BEDROCK_MANTLE_ROUTE", "/openai/v1")  # the environment's mantle.route
    assert judged(monkeypatch, ELSEWHERE) == [1.0]
    assert judged(monkeypatch, "openai.gpt-oss-120b", route="/v1") == [1.0]
    assert [r.path for r in mantle.requests] == [
        "/v1/chat/completions",
        "/openai/v1/chat/completions",
        "/openai/v1/chat/completions",
        "/v1/chat/completions",
    ]


def test_preflight_samples_under_the_model_route(mantle: OpenAIServer) -> None:
    from preflight.baseline import make_client

    client = make_client("us-west-2", model="openai.gpt-5.1")
    client.chat.completions.create(
        model="openai.gpt-5.1", messages=[{"role": "user", "content": "<response-1>Paris"}]
    )
    client = make_client("us-west-2", model="openai.gpt-5.1", route="/v1")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="openai.gpt-5.1", messages=[{"role": "user", "content": "x"}]
        )
    assert [r.path for r in mantle.requests][:2] == [
        "/openai/v1/chat/completions",
        "/v1/chat/completions",
    ]
