"""What the server's parts share: a parsed request, a response, an error in the OpenAI shape,
and a route from a method and a path to the resource that answers it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """One request, as a resource sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any  # the parsed JSON body; None without one (or for a multipart upload)
    raw: bytes
    content_type: str
    number: int  # its place among every request the server received (0 for the first)


@dataclass(frozen=True)
class Response:
    """What the server writes back, after ``delay`` seconds."""

    status: int
    content: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def json(
        cls,
        value: Any,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> Response:
        """A JSON response."""
        return cls(status, json.dumps(value).encode(), headers=headers or {}, delay=delay)


def error_type(status: int) -> str:
    """The OpenAI error ``type`` that goes with an HTTP status."""
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    if status == 401:
        return "authentication_error"
    return "invalid_request_error"


class ApiError(Exception):
    """An error answer in the OpenAI shape (``{"error": {message, type, param, code}}``)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {"message": message, "type": error_type(status), "param": param, "code": code}
        }
        self.headers = dict(headers or {})

    def response(self, *, delay: float = 0.0) -> Response:
        """This error as the server's answer."""
        return Response.json(self.body, status=self.status, headers=self.headers, delay=delay)


# A resource's answer: a JSON object (status 200), or a full Response.
Result = dict[str, Any] | Response
Handler = Callable[[Request, list[str]], Result]


@dataclass(frozen=True)
class Route:
    """``method`` on ``/v1/<pattern>``, where a ``*`` segment is an id passed to ``handler``."""

    method: str
    pattern: str
    handler: Handler

    def match(self, method: str, segments: list[str]) -> list[str] | None:
        """The ids of a path (its segments after ``v1``) this route serves, else ``None``."""
        shape = self.pattern.split("/")
        if method != self.method or len(shape) != len(segments):
            return None
        if not all(part in ("*", segment) for part, segment in zip(shape, segments, strict=True)):
            return None
        return [segment for part, segment in zip(shape, segments, strict=True) if part == "*"]
