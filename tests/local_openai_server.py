"""A small OpenAI-compatible chat-completions server on 127.0.0.1, for tests.

It speaks the HTTP API the real ``openai`` SDK calls (``POST /v1/chat/completions``), so the
code under test runs unchanged, SDK and all, against it. What it answers is up to the test:
``reply(request_body) -> str`` gives the assistant text, or raises :class:`HTTPFailure` to
answer with an error status and an OpenAI-shaped error body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HTTPFailure(Exception):  # noqa: N818 (an HTTP answer, not an error of the server)
    """Answer with ``status`` and an OpenAI error body carrying ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ServerState:
    """What the server saw: request bodies, headers, and the most requests in flight at once."""

    reply: Callable[[dict[str, Any]], str]
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    # When set, the first requests wait (up to 5 s) until this many are in flight at once:
    # proof of concurrency without timing assumptions. Later requests do not wait.
    rendezvous: int = 0
    rendezvous_met: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)


def _handler_class(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read the state, not the log."""

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            with state.arrived:
                state.requests.append(body)
                state.authorizations.append(self.headers.get("Authorization", ""))
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                state.arrived.notify_all()
                if state.in_flight >= state.rendezvous:
                    state.rendezvous_met = True
                deadline = time.monotonic() + 5
                while not state.rendezvous_met and time.monotonic() < deadline:
                    state.arrived.wait(timeout=0.05)
            try:
                text = state.reply(body)
            except HTTPFailure as failure:
                self._send(
                    failure.status,
                    {
                        "error": {
                            "message": failure.message,
                            "type": "invalid_request_error",
                            "code": str(failure.status),
                        }
                    },
                )
                return
            finally:
                with state.lock:
                    state.in_flight -= 1
            self._send(
                200,
                {
                    "id": f"chatcmpl-{len(state.requests)}",
                    "object": "chat.completion",
                    "created": 1_700_000_000,
                    "model": body.get("model", ""),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                },
            )

    return Handler


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) refuses connections when a client opens many at once
    # (the judge runs 16 requests concurrently).
    request_queue_size = 128
    daemon_threads = True


@contextmanager
def local_openai_server(
    reply: Callable[[dict[str, Any]], str],
) -> Iterator[tuple[str, ServerState]]:
    """Run the server on a free port; yields (base URL ending in /v1, state)."""
    state = ServerState(reply=reply)
    server = _Server(("127.0.0.1", 0), _handler_class(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
