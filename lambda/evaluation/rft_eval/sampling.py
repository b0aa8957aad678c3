"""Model calls: one completion of a prompt's messages by the base or the tuned model.

- ``openai`` backend: the ``openai`` SDK's chat completions on Bedrock's OpenAI-compatible
  endpoint through ``rft_common.mantle`` (``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` override
  it, as everywhere in the project); the SDK's own retries are off, :mod:`rft_eval.retry`
  retries instead, honouring ``Retry-After``.
- ``bedrock`` backend: ``bedrock-runtime`` ``Converse`` with the base model id or the custom
  model deployment's ARN as ``modelId``; botocore's retries are off for the same reason.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from rft_eval.retry import Backoff, Transient, retry_after, with_retries
from rft_eval.settings import Settings

if TYPE_CHECKING:
    from openai import OpenAI, Timeout

# Per request (the stack's evaluation.request_timeout_seconds wins in the cloud); a long
# completion (thousands of tokens) of a large model takes minutes.
REQUEST_TIMEOUT_SECONDS = 300.0
# HTTP statuses worth another attempt besides 429 (timeouts, conflicts, server errors).
_TRANSIENT_STATUS = frozenset({408, 409, 500, 502, 503, 504})
# Converse's error codes that say "later" (throttled) or "not now" (transient).
_THROTTLED_CODES = frozenset({"ThrottlingException", "TooManyRequestsException"})
_TRANSIENT_CODES = frozenset(
    {
        "ModelNotReadyException",
        "ModelTimeoutException",
        "ServiceUnavailableException",
        "InternalServerException",
        "InternalFailure",
    }
)


class Sampler(Protocol):
    """Returns one completion of ``messages`` by ``model_id`` (raises when it cannot)."""

    def complete(
        self, model_id: str, messages: Sequence[dict[str, Any]], settings: Settings
    ) -> str:
        """The assistant's reply text."""
        ...


def classify_openai(err: Exception) -> Transient | None:
    """How the ``openai`` SDK's ``err`` is retried (None: not at all)."""
    import openai

    if isinstance(err, openai.APIStatusError):
        wait = retry_after(err.response.headers)
        if err.status_code == 429:
            return Transient(throttled=True, retry_after=wait)
        if err.status_code in _TRANSIENT_STATUS or err.status_code >= 500:
            return Transient(retry_after=wait)
        return None
    if isinstance(err, openai.APIConnectionError):  # includes timeouts
        return Transient()
    return None


def classify_botocore(err: Exception) -> Transient | None:
    """How a botocore ``err`` is retried (None: not at all)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        headers = err.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _THROTTLED_CODES or status == 429:
            return Transient(throttled=True, retry_after=retry_after(headers))
        if code in _TRANSIENT_CODES or status >= 500:
            return Transient(retry_after=retry_after(headers))
        return None
    if isinstance(err, ConnectionError | HTTPClientError):
        return Transient()
    return None


class OpenAISampler:
    """Chat completions through the ``openai`` SDK (one client per endpoint, thread-safe)."""

    def __init__(
        self,
        region: str | None,
        *,
        route: str | None = None,
        backoff: Backoff | None = None,
        timeout: float | Timeout = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.region = region
        self.route = route
        self.backoff = backoff or Backoff()
        self.timeout = timeout
        self._clients: dict[str, OpenAI] = {}
        self._lock = threading.Lock()

    def client(self, model_id: str) -> OpenAI:
        """The client for ``model_id``'s path prefix (the context's route, else per model)."""
        from rft_common.mantle import base_url, openai_client

        url = base_url(self.region, model=model_id, route=self.route)
        with self._lock:
            if url not in self._clients:
                self._clients[url] = openai_client(
                    self.region,
                    model=model_id,
                    route=self.route,
                    max_retries=0,
                    timeout=self.timeout,
                )
            return self._clients[url]

    def complete(
        self, model_id: str, messages: Sequence[dict[str, Any]], settings: Settings
    ) -> str:
        """One chat completion with the evaluation's temperature and max tokens."""
        client = self.client(model_id)

        def call() -> str:
            answer = client.chat.completions.create(
                model=model_id,
                messages=list(messages),  # type: ignore[arg-type]
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
            )
            if not answer.choices:
                raise ValueError("the answer has no choices")
            return answer.choices[0].message.content or ""

        return with_retries(call, classify_openai, self.backoff)


def converse_request(
    model_id: str, messages: Sequence[dict[str, Any]], settings: Settings
) -> dict[str, Any]:
    """``Converse``'s parameters for a chat-format prompt: system turns go to ``system``, the
    others to ``messages`` with text content blocks."""
    system: list[dict[str, str]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        text = content_text(message.get("content"))
        if message.get("role") == "system":
            system.append({"text": text})
        else:
            role = "assistant" if message.get("role") in ("assistant", "nova_assistant") else "user"
            turns.append({"role": role, "content": [{"text": text}]})
    request: dict[str, Any] = {
        "modelId": model_id,
        "messages": turns,
        "inferenceConfig": {"maxTokens": settings.max_tokens, "temperature": settings.temperature},
    }
    if system:
        request["system"] = system
    return request


def content_text(content: Any) -> str:
    """A message's content as text: a string, or the text of a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return "" if content is None else str(content)


class BedrockSampler:
    """``bedrock-runtime`` ``Converse`` (a boto3 client, thread-safe)."""

    def __init__(self, client: Any, *, backoff: Backoff | None = None) -> None:
        self._client = client
        self.backoff = backoff or Backoff()

    @classmethod
    def for_region(
        cls,
        region: str,
        *,
        backoff: Backoff | None = None,
        read_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> BedrockSampler:
        """A sampler with its own client for ``region`` (botocore's retries off)."""
        import boto3
        from botocore.config import Config

        config = Config(
            retries={"total_max_attempts": 1},
            read_timeout=read_timeout,
            max_pool_connections=32,
        )
        return cls(
            boto3.client("bedrock-runtime", region_name=region, config=config), backoff=backoff
        )

    def complete(
        self, model_id: str, messages: Sequence[dict[str, Any]], settings: Settings
    ) -> str:
        """One ``Converse`` call; the text blocks of the output message, joined."""
        request = converse_request(model_id, messages, settings)

        def call() -> str:
            answer = self._client.converse(**request)
            blocks = answer.get("output", {}).get("message", {}).get("content", [])
            return "".join(str(b["text"]) for b in blocks if isinstance(b, dict) and "text" in b)

        return with_retries(call, classify_botocore, self.backoff)
