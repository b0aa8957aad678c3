"""The evaluation bundle's serving and clean-up handlers on CPython 3.13 with only the bundle
(pinned boto3 and Powertools) on ``sys.path``: the paths that make no AWS call answer as the
development run does (the calls themselves are pinned by tests/unit/test_serving.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lambda_loader import LambdaContext, load_handler
from tests.parity.test_runtime_parity import FAKE_CREDENTIALS, run_bundle

ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "evaluation",
    **FAKE_CREDENTIALS,
}


def cleanup_event(request: str, on_delete: str) -> dict[str, Any]:
    return {
        "RequestType": request,
        "PhysicalResourceId": "bedrock-rft-nova-dev-deployments",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
            "Environment": "nova-dev",
            "Region": "us-east-1",
            "OnDelete": on_delete,
        },
    }


@pytest.mark.parametrize(
    ("function", "event"),
    [
        ("cleanup", cleanup_event("Create", "delete")),
        ("cleanup", cleanup_event("Update", "delete")),
        ("cleanup", cleanup_event("Delete", "retain")),
        ("serve", {"environment": "dev", "backend": "openai", "job_id": "ftjob-1"}),
    ],
)
def test_serving_handlers_answer_alike(
    function: str, event: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    expected = getattr(load_handler("evaluation"), function)(event, LambdaContext())
    answer = run_bundle("evaluation", event, ENVIRONMENT, function=function)
    assert answer["result"] == expected
