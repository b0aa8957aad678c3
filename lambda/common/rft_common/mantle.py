"""An OpenAI SDK client for Bedrock's OpenAI-compatible endpoint ("Mantle").

The endpoint and key come from the OpenAI SDK's own environment variables when set
(``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``: tests and other compatible endpoints); otherwise
the regional Bedrock endpoint with a short-term Bedrock API key minted locally from the
function's own AWS credentials (no network call, valid up to 12 hours).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the openai package is heavy: import it only when a client is built
    from openai import OpenAI

# A Lambda invocation lasts at most 15 minutes; an hour leaves margin without holding a
# long-lived credential in memory.
_TOKEN_LIFETIME = timedelta(hours=1)


def mantle_base_url(region: str) -> str:
    """The OpenAI-compatible Bedrock endpoint of ``region``."""
    if not region:
        raise ValueError("a region is needed for Bedrock's OpenAI-compatible endpoint")
    return f"https://bedrock-mantle.{region}.api.aws/v1"


def resolve_region(region: str | None = None) -> str:
    """``region`` or the Lambda runtime's region, with a clear error when neither is set."""
    found = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not found:
        raise ValueError("no region: pass one or set AWS_REGION")
    return found


def openai_client(region: str | None = None, **kwargs: Any) -> OpenAI:
    """Build an ``openai.OpenAI`` client for Bedrock's OpenAI-compatible API.

    Extra keyword arguments (``max_retries``, ``timeout``, ...) go to the client.
    """
    from openai import OpenAI

    base_url = os.environ.get("OPENAI_BASE_URL") or mantle_base_url(resolve_region(region))
    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        from aws_bedrock_token_generator import provide_token

        api_key = provide_token(region=resolve_region(region), expiry=_TOKEN_LIFETIME)
    return OpenAI(base_url=base_url, api_key=api_key, **kwargs)
