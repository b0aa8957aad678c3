"""Helpers for the reward Lambda's tests: loading the handler with a definition, building
rollouts in the documented shape, and reading what the handler printed."""

from __future__ import annotations

import importlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.session
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from tests.lambda_loader import LAMBDA_DIR, ROOT, load_handler

FIXTURES = ROOT / "tests" / "fixtures" / "reward"
# The example graders as the tests own them (graders/ is the user's to change or delete).
GRADERS = ROOT / "tests" / "fixtures" / "graders"


def reward_module(name: str = "grading") -> ModuleType:
    """A module of the reward Lambda's own package (``grading``, ``grading.answers``, ...),
    imported as the deployed bundle imports it."""
    for folder in (LAMBDA_DIR / "common", LAMBDA_DIR / "reward"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    return importlib.import_module(name)


class _CurrentStdout:
    """A stream that writes to whatever ``sys.stdout`` is at the time of writing."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def load_reward(
    monkeypatch: pytest.MonkeyPatch, config: str | Path | dict[str, Any], environment: str = "test"
) -> ModuleType:
    """The reward handler freshly imported (a cold start) with ``config`` as GRADER_CONFIG."""
    value = json.dumps(config) if isinstance(config, dict) else str(config)
    monkeypatch.setenv("GRADER_CONFIG", value)
    monkeypatch.setenv("RFT_ENVIRONMENT", environment)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "reward")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "BedrockRft/Grader")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    module = load_handler("reward", fresh=True)
    # Powertools' handler keeps the stdout of its creation; make it follow the current one so
    # that pytest's capsys sees the log lines as it sees the EMF records.
    for handler in logging.getLogger("reward").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = _CurrentStdout()  # not setStream: it would flush a closed stream
    return module


def definition_error(monkeypatch: pytest.MonkeyPatch, config: Any) -> str:
    """The message of the ``DefinitionError`` that loading the handler with ``config`` raises
    (failing the test if it loads)."""
    grading = reward_module()
    with pytest.raises(grading.DefinitionError) as caught:
        load_reward(monkeypatch, config)
    return str(caught.value)


def rollout(
    sample_id: str,
    response: str,
    reference: Any = None,
    *,
    prompt: str = "What is the answer?",
    **metadata: Any,
) -> dict[str, Any]:
    """One rollout in the documented shape (reference under ``metadata``)."""
    meta = dict(metadata)
    if reference is not None:
        meta["reference_answer"] = reference
    return {
        "id": sample_id,
        "messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": response},
        ],
        "metadata": meta,
    }


def printed_json(text: str) -> list[dict[str, Any]]:
    """Every JSON object line the handler printed (structured logs and EMF records)."""
    records = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("{"):
            records.append(json.loads(stripped))
    return records


def emf_records(text: str) -> list[dict[str, Any]]:
    """The EMF records among the printed lines."""
    return [record for record in printed_json(text) if "_aws" in record]


def log_records(text: str) -> list[dict[str, Any]]:
    """The structured log lines among the printed lines."""
    return [record for record in printed_json(text) if "level" in record]


def fixture(name: str) -> dict[str, Any]:
    """A JSON fixture of tests/fixtures/reward."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def scores(outputs: list[dict[str, Any]]) -> list[float]:
    """The aggregate rewards of a handler response."""
    return [output["aggregate_reward_score"] for output in outputs]


def rollouts(event: Any) -> list[Any]:
    """The rollouts an event of one of the accepted shapes carries (the tests' own reading):
    a bare list, ``{"trajectories": [...]}``, or one rollout object."""
    if isinstance(event, list):
        return event
    wrapped: list[Any] = event.get("trajectories", [event])
    return wrapped


def check_contract(event: list[Any], outputs: list[dict[str, Any]]) -> None:
    """Assert the response answers every rollout once, in order, in the documented shape."""
    assert isinstance(outputs, list)
    assert len(outputs) == len(event)
    for raw, output in zip(event, outputs, strict=True):
        expected_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            json.dumps(expected_id, allow_nan=False)
        except ValueError:  # strict JSON cannot carry it: its text comes back
            expected_id = str(expected_id)
        assert output["id"] == expected_id
        assert set(output) == {"id", "aggregate_reward_score", "metrics_list"}
        score = output["aggregate_reward_score"]
        assert isinstance(score, float)
        assert 0.0 <= score <= 1.0
        assert output["metrics_list"], "the reward itself is always listed"
        for metric in output["metrics_list"]:
            assert set(metric) == {"name", "value", "type"}
            assert metric["type"] in {"Reward", "Metric"}
            assert isinstance(metric["name"], str)
            assert metric["name"]
            assert isinstance(metric["value"], float)
    json.dumps(outputs, allow_nan=False)  # the response must be strict JSON


@contextmanager
def runtime_stubber(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """A Stubber on a real bedrock-runtime client (us-west-2), which the reward Lambda's
    embeddings endpoint uses instead of its own; every queued response must be consumed."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    client = botocore.session.get_session().create_client(
        "bedrock-runtime",
        region_name="us-west-2",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    endpoint = reward_module("grading.runtime_endpoint")
    monkeypatch.setattr(endpoint, "_make_client", lambda region, timeout, concurrency: client)
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def expect_embedding(
    stub: Stubber, model: str, text: str, vector: list[float], tokens: int = 3
) -> None:
    """One InvokeModel with the Titan request body for ``text``, answered with ``vector``."""
    raw = json.dumps({"embedding": vector, "inputTextTokenCount": tokens}).encode()
    stub.add_response(
        "invoke_model",
        {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"},
        {
            "modelId": model,
            "body": json.dumps({"inputText": text}).encode(),
            "contentType": "application/json",
            "accept": "application/json",
        },
    )
