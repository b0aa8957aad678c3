"""The Lambda entry point as deployed: settings from the environment, real clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lambda_loader import LambdaContext, load_handler
from tests.metrics_fixtures import (
    ENVIRONMENT,
    FakeAws,
    fake_aws_fixture,  # noqa: F401 (fixture)
    synthetic_run,
)
from tests.openai_server import OpenAIServer

handler_module = load_handler("metrics")


def invocation() -> LambdaContext:
    """The context of one invocation of the deployed collector."""
    return LambdaContext("rft-dev-metrics", memory_limit_in_mb=256)


@pytest.fixture
def deployed(
    fake_aws: FakeAws, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OpenAIServer]:
    """The collector's environment as the construct sets it, pointed at the test server."""
    handler_module._aws.cache_clear()
    monkeypatch.setenv("RFT_ENVIRONMENT", ENVIRONMENT)
    monkeypatch.setenv("RFT_BACKEND", "openai")
    monkeypatch.setenv("TOPIC_ARN", fake_aws.topic_arn)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "metrics")
    yield openai_server
    handler_module._aws.cache_clear()


def test_scheduled_run_and_backfill_through_the_handler(
    fake_aws: FakeAws, deployed: OpenAIServer
) -> None:
    synthetic_run(deployed.fine_tuning, "ftjob-live", steps=9)
    synthetic_run(deployed.fine_tuning, "ftjob-past", steps=4, seed=2)
    fake_aws.record_job("ftjob-live", status="queued")

    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    summary = handler_module.handler(scheduled, invocation())
    assert summary["job_id"] == "ftjob-live" and summary["step"] == 9
    assert summary["notified"] is True
    assert len(fake_aws.series("RewardMean")) == 9

    backfill = handler_module.handler({"job_id": "ftjob-past"}, invocation())
    assert backfill["action"] == "backfill" and backfill["step"] == 4
    # both synthetic runs end now, so their steps share periods: count samples, not periods
    assert sum(fake_aws.series("RewardMean").values()) == 13


def test_missing_environment_is_named(
    fake_aws: FakeAws, deployed: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RFT_ENVIRONMENT")
    with pytest.raises(ValueError, match="RFT_ENVIRONMENT is not set"):
        handler_module.handler({}, invocation())
