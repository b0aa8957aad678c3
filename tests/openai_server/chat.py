"""Chat completions and embeddings: what the server answers is up to the test.

A *behaviour* is a function of the request body (and the request's number) returning a
:class:`Reply`: a status, the assistant's text or the embeddings, a delay, headers. Ready-made
behaviours for judge tests are in :mod:`tests.openai_server.judges`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.openai_server.wire import ApiError, Request, Response, Route


@dataclass
class Reply:
    """What the server answers to one chat or embeddings request."""

    status: int = 200
    content: str | None = None  # the assistant message (chat completions)
    embeddings: list[list[float]] | None = None  # one vector per input (embeddings)
    delay: float = 0.0  # seconds before answering
    headers: dict[str, str] = field(default_factory=dict)
    error: str = "test server error"  # the error message when status is not 200


Behaviour = Callable[[dict[str, Any], int], Reply]


@dataclass
class Chat:
    """``POST /v1/chat/completions`` and ``POST /v1/embeddings``, answered by ``behaviour``."""

    behaviour: Behaviour | None = None
    latency: float = 0.0  # seconds added to every reply's own delay
    # Models that refuse a JSON-schema response_format with a 400, as a strict endpoint does
    # for a parameter it does not support (the behaviour is not asked).
    refuse_response_format: set[str] = field(default_factory=set)

    def routes(self) -> list[Route]:
        """The endpoints this resource serves."""
        return [
            Route("POST", "chat/completions", self._complete),
            Route("POST", "embeddings", self._embed),
        ]

    def _reply(self, request: Request) -> Reply:
        if not isinstance(request.body, dict):
            raise ApiError(400, "The body must be a JSON object")
        if self.behaviour is None:
            raise RuntimeError("no chat behaviour: set OpenAIServer.chat.behaviour first")
        return self.behaviour(request.body, request.number)

    def _error(self, reply: Reply) -> Response:
        failure = ApiError(reply.status, reply.error, headers=reply.headers)
        return failure.response(delay=self.latency + reply.delay)

    def _complete(self, request: Request, ids: list[str]) -> Response:
        body = request.body
        if (
            isinstance(body, dict)
            and "response_format" in body
            and body.get("model") in self.refuse_response_format
        ):
            raise ApiError(
                400,
                "response_format of type 'json_schema' is not supported with this model",
                param="response_format",
            )
        reply = self._reply(request)
        if reply.status != 200:
            return self._error(reply)
        payload = {
            "id": f"chatcmpl-{request.number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        return Response.json(payload, headers=reply.headers, delay=self.latency + reply.delay)

    def _embed(self, request: Request, ids: list[str]) -> Response:
        reply = self._reply(request)
        if reply.status != 200:
            return self._error(reply)
        payload = {
            "object": "list",
            "model": request.body.get("model", ""),
            "data": [
                {"object": "embedding", "index": index, "embedding": vector}
                for index, vector in enumerate(reply.embeddings or [])
            ],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
        return Response.json(payload, headers=reply.headers, delay=self.latency + reply.delay)
