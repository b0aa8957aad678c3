"""boto3 clients for the handler, with throttling retries and bounded timeouts.

botocore's ``standard`` retry mode retries throttling and transient errors with jittered
exponential backoff; ``CreateModelCustomizationJob`` is safe to resend because it carries a
``clientRequestToken``. Clients are cached per warm Lambda container.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

MAX_ATTEMPTS = 8


@cache
def client(service: str, region: str) -> Any:
    """A boto3 client for ``service`` in ``region`` (cached)."""
    config = Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra="bedrock-rft-job",
    )
    return boto3.client(service, region_name=region, config=config)


def error_code(err: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (empty for anything else)."""
    response = getattr(err, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))
