"""The cosine grader's embeddings through bedrock-runtime InvokeModel: requests and replies
checked by botocore's Stubber against the real bedrock-runtime service model, the Titan Text
Embeddings body ({"inputText"} in, {"embedding", "inputTextTokenCount"} out), retries."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from tests.lambda_loader import ROOT, LambdaContext
from tests.reward_support import (
    expect_embedding,
    load_reward,
    rollout,
    runtime_stubber,
    scores,
)

MODEL = "amazon.titan-embed-text-v2:0"
DEFINITION = json.loads((ROOT / "tests" / "fixtures" / "mantle" / "cosine.json").read_text())
VECTORS = {
    "Paris": [1.0, 0.0],
    "The capital is Paris": [1.0, 0.0],
    "Pari": [0.6, 0.8],
    "Lyon": [0.0, 1.0],
}


@pytest.fixture
def stubber(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """A Stubber on a real bedrock-runtime client, used by the grader instead of its own."""
    with runtime_stubber(monkeypatch) as stub:
        yield stub


def expect(stub: Stubber, text: str) -> None:
    """One InvokeModel with the Titan request body, answered with the text's vector."""
    expect_embedding(stub, MODEL, text, VECTORS[text])


def event(responses: list[str]) -> list[dict[str, Any]]:
    return [rollout(f"s{i}", text, "Paris") for i, text in enumerate(responses)]


def load(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> Any:
    # One call at a time: the Stubber answers in the order the requests were queued.
    return load_reward(monkeypatch, {**DEFINITION, "concurrency": 1, **extra})


def test_each_distinct_text_is_embedded_once(
    monkeypatch: pytest.MonkeyPatch, stubber: Stubber
) -> None:
    for text in ("The capital is Paris", "Paris", "Pari", "Lyon"):  # the reference once
        expect(stubber, text)
    module = load(monkeypatch)
    outputs = module.handler(event(["The capital is Paris", "Pari", "Lyon", ""]), LambdaContext())
    assert scores(outputs) == [pytest.approx(1.0), pytest.approx(0.6), 0.0, 0.0]


def test_throttling_is_retried(monkeypatch: pytest.MonkeyPatch, stubber: Stubber) -> None:
    stubber.add_client_error(
        "invoke_model", service_error_code="ThrottlingException", http_status_code=429
    )
    stubber.add_client_error(
        "invoke_model", service_error_code="ServiceUnavailableException", http_status_code=503
    )
    expect(stubber, "Pari")
    expect(stubber, "Paris")
    module = load(monkeypatch)
    outputs = module.handler(event(["Pari"]), LambdaContext())
    assert scores(outputs) == [pytest.approx(0.6)]


@pytest.mark.parametrize(
    ("code", "status"), [("ValidationException", 400), ("AccessDeniedException", 403)]
)
def test_a_refusal_scores_the_fallback(
    monkeypatch: pytest.MonkeyPatch, stubber: Stubber, code: str, status: int
) -> None:
    stubber.add_client_error("invoke_model", service_error_code=code, http_status_code=status)
    expect(stubber, "Paris")
    module = load(monkeypatch, fallback_score=0.25)
    [output] = module.handler(event(["Pari"]), LambdaContext())
    assert output["aggregate_reward_score"] == 0.25
    flags = {m["name"]: m["value"] for m in output["metrics_list"]}
    assert flags["judge_error"] == 1.0


def test_a_reply_without_an_embedding_is_an_error(
    monkeypatch: pytest.MonkeyPatch, stubber: Stubber
) -> None:
    for _ in range(3):  # the first try and max_retries (2) more
        raw = json.dumps({"inputTextTokenCount": 3}).encode()
        stubber.add_response(
            "invoke_model",
            {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"},
        )
    expect(stubber, "Paris")
    module = load(monkeypatch)
    [output] = module.handler(event(["Pari"]), LambdaContext())
    assert output["aggregate_reward_score"] == 0.0
