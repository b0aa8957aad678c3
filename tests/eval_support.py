"""Helpers for the evaluation tests: the ``rft_eval`` package as bundled, the fixture GSM8K
validation rows, a context in the state machine's shape, and the local reward grader."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.lambda_loader import LAMBDA_DIR, ROOT
from tests.openai_server import OpenAIServer, Students

VALIDATION = ROOT / "tests" / "fixtures" / "datasets" / "gsm8k" / "validation.jsonl"
GRADER = ROOT / "tests" / "fixtures" / "graders" / "gsm8k.json"
REGION = "us-west-2"
ACCOUNT = "123456789012"
REWARD_VERSION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rft-dev-reward:7"
BUCKET = "rft-dev-artifacts"
STAGING = "rft-dev-staging"
JOB_ID = "ftjob-abc123"


def ensure_paths() -> None:
    """Put ``lambda/common`` and ``lambda/evaluation`` on ``sys.path``, as in the bundle (call
    it before importing ``rft_eval``)."""
    for folder in (LAMBDA_DIR / "common", LAMBDA_DIR / "evaluation"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


ensure_paths()


def validation_rows(limit: int | None = None) -> list[dict[str, Any]]:
    """The fixture GSM8K validation rows (the first ``limit``)."""
    lines = VALIDATION.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return rows[:limit] if limit is not None else rows


def context(**changes: Any) -> dict[str, Any]:
    """An ``openai``-backend context as ``prepare`` returns it; ``settings`` merge into the
    defaults, other keys replace."""
    settings = {"bootstrap_resamples": 200, **changes.pop("settings", {})}
    raw: dict[str, Any] = {
        "environment": "dev",
        "region": REGION,
        "backend": "openai",
        "job_id": JOB_ID,
        "base_model": "base",
        "tuned_model": "tuned",
        "custom_model_arn": None,
        "reward_function_arn": REWARD_VERSION_ARN,
        "validation": {"bucket": STAGING, "key": "datasets/abc/validation.jsonl"},
        "artifacts": {"bucket": BUCKET, "prefix": f"evaluations/{JOB_ID}/"},
        "settings": settings,
        "model_parameter": "/bedrock-rft/dev/model",
        "topic_arn": None,
        "metrics_namespace": "BedrockRft/Evaluation",
        "mantle_route": "/v1",
    }
    raw.update(changes)
    return raw


def local_grader() -> Any:
    """The reward Lambda's own handler with the fixture GSM8K grader (``make eval``'s)."""
    from preflight.reward import RewardHandler

    return RewardHandler(GRADER, environment="test").invoke


@contextmanager
def students_server(
    shares: dict[str, float], rows: list[dict[str, Any]], **options: Any
) -> Iterator[tuple[OpenAIServer, Students]]:
    """The local OpenAI-compatible server answering as :class:`Students` of ``rows``."""
    students = Students(rows, shares, **options)
    with OpenAIServer() as server:
        server.chat.behaviour = students
        yield server, students
