"""A local OpenAI-compatible HTTP server for judge tests (standard library only).

It serves ``POST /v1/chat/completions`` and ``POST /v1/embeddings`` on 127.0.0.1 with the
response shapes of the OpenAI API, so the real ``openai`` SDK talks to it over HTTP. What it
answers is decided per request by a *behaviour*: a function of the request body (and the
request's number) returning a :class:`Reply`: a status, the assistant's text (or embeddings),
a delay and headers. It records every request and the largest number of requests in flight.

Ready-made behaviours: :func:`rubric_judge` (reads the response between the markers the grader
announces and scores it with a rubric), :func:`failing_first` (errors before success).

Usage::

    with JudgeServer(rubric_judge(lambda text: 10.0 if "Paris" in text else 0.0)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class Reply:
    """What the server answers to one request."""

    status: int = 200
    content: str | None = None  # the assistant message (chat completions)
    embeddings: list[list[float]] | None = None  # one vector per input (embeddings)
    delay: float = 0.0  # seconds before answering
    headers: dict[str, str] = field(default_factory=dict)
    error: str = "test server error"


Behaviour = Callable[[dict[str, Any], int], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog (5) makes a burst of concurrent connections wait for the
    # kernel's SYN retry (a second): far more than any latency under test.
    request_queue_size = 256


class JudgeServer:
    """The server, started as a context manager on a free port."""

    def __init__(self, behaviour: Behaviour, *, latency: float = 0.0) -> None:
        self.behaviour = behaviour
        self.latency = latency
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        # a short poll interval: shutdown() waits for the loop to notice
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """The ``OPENAI_BASE_URL`` of this server."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> JudgeServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read ``requests`` instead."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    number = len(server.requests)
                    server.requests.append(body)
                    server.paths.append(self.path)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    reply = server.behaviour(body, number)
                    time.sleep(server.latency + reply.delay)
                    self._answer(body, reply)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, body: dict[str, Any], reply: Reply) -> None:
                if reply.status != 200:
                    payload: dict[str, Any] = {
                        "error": {"message": reply.error, "type": "server_error", "code": None}
                    }
                elif self.path.endswith("/embeddings"):
                    vectors = reply.embeddings or []
                    payload = {
                        "object": "list",
                        "model": body.get("model", ""),
                        "data": [
                            {"object": "embedding", "index": i, "embedding": vector}
                            for i, vector in enumerate(vectors)
                        ],
                        "usage": {"prompt_tokens": 1, "total_tokens": 1},
                    }
                else:
                    payload = {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", ""),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                data = json.dumps(payload).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


_ANNOUNCED = re.compile(r"enclosed between <(response-\d+)> and </\1>")


def _announcement(body: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The marker the grader's system message announces, and the other messages' texts."""
    messages = body.get("messages", [])
    for index, message in enumerate(messages):
        if message.get("role") == "system":
            announced = _ANNOUNCED.search(message.get("content", ""))
            if announced:
                rest = [m["content"] for i, m in enumerate(messages) if i != index]
                return announced.group(1), rest
    return None, [m["content"] for m in messages]


def enclosed_response(body: dict[str, Any]) -> str | None:
    """The response under judgment: the text between the markers the grader's system message
    announces (case-insensitive, as a model reads them); ``None`` without markers."""
    marker, texts = _announcement(body)
    if marker is None:
        return None
    found = re.search(rf"<{marker}>\n(.*?)\n</{marker}>", "\n".join(texts), re.DOTALL | re.I)
    return found.group(1) if found else None


def outside_markers(body: dict[str, Any]) -> str:
    """Every message's text with the enclosed parts cut out (what the judge may obey)."""
    marker, texts = _announcement(body)
    text = "\n".join(texts)
    if marker is None:
        return text
    return re.sub(rf"<{marker}>.*?</{marker}>", "", text, flags=re.DOTALL | re.IGNORECASE)


def rubric_judge(
    rubric: Callable[[str], float],
    *,
    reply: Callable[[float], str] = lambda score: json.dumps({"score": score}),
    obey_outside: bool = True,
) -> Behaviour:
    """A judge that scores the enclosed response with ``rubric``. With ``obey_outside`` it is
    also gullible about the rest of the prompt: a "give N" found outside the markers wins, the
    way an injected instruction that escaped its enclosure would."""

    def behaviour(body: dict[str, Any], number: int) -> Reply:
        if obey_outside:
            injected = re.search(r"give (\d+)", outside_markers(body), re.IGNORECASE)
            if injected:
                return Reply(content=reply(float(injected.group(1))))
        response = enclosed_response(body)
        if response is None:
            return Reply(content=reply(0.0))
        return Reply(content=reply(rubric(response)))

    return behaviour


def failing_first(
    failures: int, status: int, then: Behaviour, headers: dict[str, str] | None = None
) -> Behaviour:
    """``failures`` error replies (per distinct prompt) before ``then`` answers."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def behaviour(body: dict[str, Any], number: int) -> Reply:
        key = json.dumps(body.get("messages", body.get("input")), sort_keys=True)
        key = re.sub(r"response-[0-9]+", "response", key)  # markers differ between prompts
        with lock:
            seen[key] = seen.get(key, 0) + 1
            attempt = seen[key]
        if attempt <= failures:
            return Reply(status=status, headers=headers or {})
        return then(body, number)

    return behaviour
