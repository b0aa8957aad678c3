"""An OpenAI SDK client for Bedrock's OpenAI-compatible endpoint ("Mantle").

The endpoint and key come from the OpenAI SDK's own environment variables when set
(``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``: other compatible endpoints, used verbatim);
otherwise the regional Bedrock endpoint with a short-term Bedrock API key minted locally from
the function's own AWS credentials (no network call, valid up to 12 hours).

The path prefix depends on the model: "Most models are served under ``/v1`` ... some are
instead served under ``/openai/v1``", and the wrong one is refused with "model <id> isn't
supported on this route" (Bedrock user guide, endpoints). :func:`route_for` picks it from
:data:`MODEL_ROUTES`; ``BEDROCK_MANTLE_ROUTE`` (the environment's ``mantle.route``) overrides
the table, and a caller's explicit ``route`` (a judge's own ``route`` field) overrides both.
``AWS_ENDPOINT_URL_BEDROCK_MANTLE`` replaces the regional origin the route is appended to
(named after the AWS SDKs' ``AWS_ENDPOINT_URL_<SERVICE>`` convention; tests point it at the
local server).
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

V1 = "/v1"
OPENAI_V1 = "/openai/v1"
ROUTES = (V1, OPENAI_V1)
# Model id prefixes and their path prefix; the first match wins, anything else is on /v1.
# gpt-oss and Qwen are on /v1 (AWS's own examples); the GPT-5 family is reported to be served
# only under /openai/v1 (issue threads, not AWS's documentation: a model that answers "isn't
# supported on this route" is settled with the environment's mantle.route or a judge's route).
MODEL_ROUTES: tuple[tuple[str, str], ...] = (
    ("openai.gpt-oss-", V1),
    ("qwen.", V1),
    ("openai.gpt-5", OPENAI_V1),
)
ROUTE_ENV = "BEDROCK_MANTLE_ROUTE"
ENDPOINT_ENV = "AWS_ENDPOINT_URL_BEDROCK_MANTLE"


def check_route(route: str, where: str) -> str:
    """``route`` if it is a prefix the endpoint serves; ``ValueError`` naming ``where``."""
    if route not in ROUTES:
        raise ValueError(f"{where} = {route!r}: must be one of {', '.join(ROUTES)}")
    return route


def route_for(model: str | None, route: str | None = None) -> str:
    """The path prefix for ``model``: ``route``, else ``BEDROCK_MANTLE_ROUTE``, else the table."""
    if route:
        return check_route(route, "route")
    configured = os.environ.get(ROUTE_ENV)
    if configured:
        return check_route(configured, ROUTE_ENV)
    for prefix, found in MODEL_ROUTES:
        if model and model.startswith(prefix):
            return found
    return V1


def mantle_base_url(region: str, route: str = V1) -> str:
    """The OpenAI-compatible Bedrock endpoint of ``region`` under ``route``."""
    if not region:
        raise ValueError("a region is needed for Bedrock's OpenAI-compatible endpoint")
    origin = os.environ.get(ENDPOINT_ENV) or f"https://bedrock-mantle.{region}.api.aws"
    return origin.rstrip("/") + check_route(route, "route")


def resolve_region(region: str | None = None) -> str:
    """``region`` or the Lambda runtime's region, with a clear error when neither is set."""
    found = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not found:
        raise ValueError("no region: pass one or set AWS_REGION")
    return found


def base_url(
    region: str | None = None, *, model: str | None = None, route: str | None = None
) -> str:
    """Where a client for ``model`` sends its requests (``OPENAI_BASE_URL`` wins as is)."""
    return os.environ.get("OPENAI_BASE_URL") or mantle_base_url(
        resolve_region(region), route_for(model, route)
    )


def openai_client(
    region: str | None = None,
    *,
    model: str | None = None,
    route: str | None = None,
    **kwargs: Any,
) -> OpenAI:
    """Build an ``openai.OpenAI`` client for Bedrock's OpenAI-compatible API.

    ``model`` picks the path prefix (:func:`route_for`); without one, the files and
    fine-tuning APIs' documented ``/v1`` (or ``BEDROCK_MANTLE_ROUTE``). Extra keyword
    arguments (``max_retries``, ``timeout``, ...) go to the client.
    """
    from openai import OpenAI

    url = base_url(region, model=model, route=route)
    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        from aws_bedrock_token_generator import provide_token

        api_key = provide_token(region=resolve_region(region), expiry=_TOKEN_LIFETIME)
    return OpenAI(base_url=url, api_key=api_key, **kwargs)
