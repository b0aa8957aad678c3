"""The HTTP server: one thread per connection (HTTP/1.1 keep-alive, as the SDK's connection pool
expects), routing to the resources, and what every endpoint shares: the request log, the
bearer-token check, injected failures, in-flight counts and a rendezvous for concurrency
tests, a clean stop.

Two kinds of trouble are told apart. A client that hangs up before its answer is written (a
client-side timeout, as in the grader's deadline tests) is no fault of the server: the
``BrokenPipeError`` / ``ConnectionResetError`` is counted in ``hang_ups`` and nothing is
printed. Any other exception while answering (a bug in the server or in a test's behaviour)
is answered with 500, kept in ``errors`` with its traceback, and raised as an
``AssertionError`` when the server stops, so that it fails the test instead of passing for a
transient error the client retried.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.openai_server.chat import Chat
from tests.openai_server.fine_tuning import FineTuning
from tests.openai_server.wire import ApiError, Request, Response, Result, Route

RENDEZVOUS_SECONDS = 5.0  # the longest a request waits for the others of a rendezvous
# The path prefixes Bedrock's OpenAI-compatible endpoint serves; every resource is on both.
PREFIXES = ("/openai/v1", "/v1")


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    body: Any  # the parsed JSON body, or None
    headers: dict[str, str]  # names in lower case


@dataclass
class _Failure:
    remaining: int
    status: int
    method: str | None
    path_prefix: str | None
    message: str
    headers: dict[str, str]
    after: bool


class OpenAIServer:
    """A local OpenAI-compatible server on an ephemeral 127.0.0.1 port (a context manager).

    Resources: ``chat`` (:class:`~tests.openai_server.chat.Chat`: chat completions and
    embeddings) and ``fine_tuning`` (:class:`~tests.openai_server.fine_tuning.FineTuning`:
    files, jobs, events, checkpoints). What every request gets: recorded in ``requests``,
    counted in ``in_flight`` / ``max_in_flight``, checked for the bearer token ``api_key``
    (or any token starting with ``api_key_prefix``), and answered with an injected failure
    when one of ``throttle`` / ``fail`` matches it. Every resource is served under ``/v1``
    and ``/openai/v1``; a request whose ``model`` is served under the other prefix
    (``model_routes``; unlisted models: ``/v1``) is refused with Bedrock's "isn't supported on
    this route".
    """

    def __init__(
        self,
        *,
        chat: Chat | None = None,
        fine_tuning: FineTuning | None = None,
        api_key: str | None = "test-key",
    ) -> None:
        self.chat = chat or Chat()
        self.fine_tuning = fine_tuning or FineTuning()
        self.api_key = api_key
        # Accept any bearer token with this prefix too (e.g. Bedrock short-term keys).
        self.api_key_prefix: str | None = None
        # Models served under a prefix other than /v1 (requests naming them elsewhere: 400).
        self.model_routes: dict[str, str] = {}
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hang_ups = 0
        self.errors: list[str] = []
        self._failures: list[_Failure] = []
        self._rendezvous = 0
        self._rendezvous_met = True
        # Guards the counters and lists above; notified when a request arrives.
        self._arrivals = threading.Condition(threading.RLock())
        self._closing = threading.Event()
        self._httpd = _HTTPServer(self)
        # A short poll interval: shutdown() waits for the serving loop's next poll.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def origin(self) -> str:
        """Scheme, host and port: the ``AWS_ENDPOINT_URL_BEDROCK_MANTLE`` of this server, to
        which the project's clients append a model's path prefix."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """The ``OPENAI_BASE_URL`` of this server (ends in ``/v1``)."""
        return f"{self.origin}/v1"

    def sdk_environment(self) -> dict[str, str]:
        """The environment variables that point the openai SDK (and the project's clients) at
        this server with a key it accepts."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": self.api_key or ""}

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        # Wake what waits (delayed replies, rendezvous): a reply still delayed is dropped.
        self._closing.set()
        with self._arrivals:
            self._arrivals.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        if self.errors and kind is None:
            raise AssertionError(
                f"the test server failed on {len(self.errors)} request(s); the first:\n"
                + self.errors[0]
            )

    # -- test controls --------------------------------------------------------------------

    def throttle(
        self, times: int = 1, *, method: str | None = None, path_prefix: str | None = None
    ) -> None:
        """Answer the next ``times`` matching requests with 429 (``retry-after-ms: 5``)."""
        self.fail(
            429,
            times,
            method=method,
            path_prefix=path_prefix,
            message="Rate limit exceeded",
            headers={"retry-after-ms": "5"},
        )

    def fail(
        self,
        status: int,
        times: int = 1,
        *,
        method: str | None = None,
        path_prefix: str | None = None,
        message: str = "injected failure",
        headers: dict[str, str] | None = None,
        after: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``.

        ``after=True`` processes the request first and then answers with the error: a lost
        response, as after a timeout on the way back.
        """
        with self._arrivals:
            self._failures.append(
                _Failure(times, status, method, path_prefix, message, headers or {}, after)
            )

    def rendezvous(self, count: int) -> None:
        """Hold the next requests (up to 5 s) until ``count`` of them are in flight at once:
        proof of concurrency without timing assumptions. Later requests do not wait."""
        with self._arrivals:
            self._rendezvous = count
            self._rendezvous_met = self.in_flight >= count

    # -- request plumbing (called from the handler threads) ------------------------------------

    def _arrive(self, recorded: Recorded) -> int:
        """Record a request, count it in flight, hold it for a rendezvous; its number."""
        with self._arrivals:
            number = len(self.requests)
            self.requests.append(recorded)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.in_flight >= self._rendezvous:
                self._rendezvous_met = True
            self._arrivals.notify_all()
            deadline = time.monotonic() + RENDEZVOUS_SECONDS
            while not (self._rendezvous_met or self._closing.is_set()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrivals.wait(timeout=min(left, 0.05))
            return number

    def _leave(self) -> None:
        with self._arrivals:
            self.in_flight -= 1

    def _hung_up(self) -> None:
        with self._arrivals:
            self.hang_ups += 1

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``; False if the server is stopping meanwhile."""
        return not self._closing.wait(seconds)

    def _respond(self, request: Request, authorization: str | None) -> Response:
        """The answer to ``request``: an injected failure, a refusal, or the resource's."""
        try:
            failure = self._injected_failure(request.method, request.path, after=False)
            if failure is not None:
                raise failure
            self._authorize(authorization)
            if request.raw and _is_json(request.content_type) and request.body is None:
                raise ApiError(400, "Invalid JSON body")
            result = self._route(request)
            failure = self._injected_failure(request.method, request.path, after=True)
            if failure is not None:
                raise failure
            return _as_response(result)
        except ApiError as refused:
            return refused.response()
        except Exception:
            with self._arrivals:
                self.errors.append(traceback.format_exc())
            return ApiError(500, "the test server failed (see OpenAIServer.errors)").response()

    def _routes(self) -> list[Route]:
        return [*self.chat.routes(), *self.fine_tuning.routes()]

    def _route(self, request: Request) -> Result:
        segments = [s for s in request.path.split("/") if s]
        for prefix in PREFIXES:
            parts = prefix.strip("/").split("/")
            if segments[: len(parts)] != parts:
                continue
            self._check_model_route(prefix, request)
            for route in self._routes():
                ids = route.match(request.method, segments[len(parts) :])
                if ids is not None:
                    return route.handler(request, ids)
        raise ApiError(404, f"Unknown route {request.method} {request.path}")

    def _check_model_route(self, prefix: str, request: Request) -> None:
        """Refuse a model on a prefix that does not serve it, as Bedrock's endpoint does."""
        model = request.body.get("model") if isinstance(request.body, dict) else None
        if isinstance(model, str) and self.model_routes.get(model, "/v1") != prefix:
            # Bedrock's wording (user guide, endpoints); its HTTP status is not documented.
            raise ApiError(400, f"model {model} isn't supported on this route")

    def _injected_failure(self, method: str, path: str, *, after: bool) -> ApiError | None:
        """The injected failure for this request (before or after processing it), if any."""
        with self._arrivals:
            for failure in self._failures:
                if failure.remaining <= 0 or failure.after != after:
                    continue
                if failure.method and failure.method != method:
                    continue
                if failure.path_prefix and not path.startswith(failure.path_prefix):
                    continue
                failure.remaining -= 1
                return ApiError(failure.status, failure.message, headers=failure.headers)
        return None

    def _authorize(self, header: str | None) -> None:
        """Check the bearer token."""
        token = (header or "").removeprefix("Bearer ").strip()
        if self.api_key_prefix is not None and token.startswith(self.api_key_prefix):
            return
        if self.api_key is not None and token == self.api_key:
            return
        raise ApiError(401, "Invalid API key", code="invalid_api_key")


def _as_response(result: Result) -> Response:
    return result if isinstance(result, Response) else Response.json(result)


def _is_json(content_type: str) -> bool:
    return content_type.startswith("application/json")


def _parse_json(raw: bytes, content_type: str) -> Any:
    """The JSON body, or None (no body, another content type, or not valid JSON)."""
    if not raw or not _is_json(content_type):
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    # Headers and body are two writes: without TCP_NODELAY the second waits for the client's
    # delayed ACK of the first on a kept-alive connection (tens of ms per request).
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``OpenAIServer.requests`` instead."""

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            # The client hung up (a client-side timeout): there is no one to answer.
            self.close_connection = True
            self.server.owner._hung_up()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("content-type", "")
        headers = {name.lower(): value for name, value in self.headers.items()}
        query = parse_qs(parts.query)
        body = _parse_json(raw, content_type)
        number = owner._arrive(Recorded(method, parts.path, query, body, headers))
        try:
            request = Request(method, parts.path, query, body, raw, content_type, number)
            response = owner._respond(request, self.headers.get("authorization"))
            if response.delay > 0 and not owner._pause(response.delay):
                self.close_connection = True  # the server is stopping: the reply is dropped
                return
            self._write(response)
        finally:
            owner._leave()

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.content)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.content)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog (5) makes a burst of concurrent connections wait for the
    # kernel's SYN retry (a second): far more than any latency under test.
    request_queue_size = 256

    def __init__(self, owner: OpenAIServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner
