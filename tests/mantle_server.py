"""A local stand-in for Bedrock's OpenAI-compatible API ("Mantle"): files and fine-tuning jobs.

It speaks the documented HTTP shapes, so tests drive it with the real ``openai`` SDK::

    with MantleServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        ...
        server.state.set_status(job_id, "succeeded", fine_tuned_model="ft:...")
        server.state.add_metrics(job_id, step=1, total_steps=10, critic_rewards_mean=0.4)

Endpoints (under ``/v1``):

- ``POST /files`` (multipart: ``file``, ``purpose``), ``GET /files``, ``GET /files/{id}``,
  ``DELETE /files/{id}``, ``GET /files/{id}/content``. An upload that is not JSON Lines gets
  status ``error`` with ``status_details``; otherwise ``processed`` (after
  ``State.file_processing_polls`` retrievals, 0 by default).
- ``POST /fine_tuning/jobs``: checks the model, the files (exist, ``purpose=fine-tune``,
  processed), the method (``reinforcement`` needs a ``lambda`` grader with a function ARN,
  known hyperparameter names), rejects ``suffix`` (not supported by Bedrock). New jobs are
  ``validating_files``; after ``State.validation_polls`` retrievals (1 by default) the data is
  checked (at least ``State.min_examples`` lines with ``messages``) and the job moves to
  ``queued`` or to ``failed`` with an ``error``.
- ``GET /fine_tuning/jobs`` (``after``, ``limit``, ``metadata[k]=v``), ``GET
  /fine_tuning/jobs/{id}``, ``POST /fine_tuning/jobs/{id}/cancel``.
- ``GET /fine_tuning/jobs/{id}/events`` and ``GET /fine_tuning/jobs/{id}/checkpoints``: newest
  first, paged with ``after`` (the id of the last item of the previous page), ``limit``
  (default 20) and ``has_more``.

Test controls live on :class:`State` (``server.state``): inspect ``files``, ``jobs``,
``events``, ``checkpoints`` and ``requests``; change a job with ``set_status``; add events
with ``add_event`` / ``add_metrics``; add checkpoints with ``add_checkpoint``; make the next
requests fail with ``throttle`` (429 with ``retry-after-ms``) or ``fail`` (any status).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

ACTIVE = ("validating_files", "queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
RFT_HYPERPARAMETERS = frozenset(
    {
        "n_epochs",
        "batch_size",
        "learning_rate_multiplier",
        "eval_interval",
        "eval_samples",
        "compute_multiplier",
        "reasoning_effort",
    }
)
LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_.:$-]+$")


class ApiError(Exception):
    """An error response in the OpenAI shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        kind: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        self.headers = headers or {}


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


@dataclass
class _Failure:
    remaining: int
    status: int
    method: str | None
    path_prefix: str | None
    message: str
    headers: dict[str, str]
    after: bool


@dataclass
class State:
    """Everything the server holds; tests read and change it directly (under ``lock``)."""

    api_key: str | None = "test-key"
    # Accept any bearer token with this prefix (e.g. Bedrock short-term keys).
    api_key_prefix: str | None = None
    models: frozenset[str] = frozenset({"openai.gpt-oss-20b", "qwen.qwen3-32b"})
    min_examples: int = 100
    file_processing_polls: int = 0
    validation_polls: int = 1
    honour_metadata_filter: bool = True
    # False: drop job metadata, as a service that does not keep it would.
    store_metadata: bool = True
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checkpoints: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _polls: dict[str, int] = field(default_factory=dict)
    _failures: list[_Failure] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

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
        with self.lock:
            self._failures.append(
                _Failure(times, status, method, path_prefix, message, headers or {}, after)
            )

    def set_status(
        self,
        job_id: str,
        status: str,
        *,
        fine_tuned_model: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Move a job to ``status`` (and set ``fine_tuned_model`` / ``error``)."""
        with self.lock:
            job = self.jobs[job_id]
            job["status"] = status
            if fine_tuned_model is not None:
                job["fine_tuned_model"] = fine_tuned_model
            if error is not None:
                job["error"] = error
            if status in TERMINAL:
                job["finished_at"] = self.now()
            self.add_event(job_id, f"Job {status}", data={"status": status})
            return job

    def add_event(
        self,
        job_id: str,
        message: str,
        *,
        type: str = "message",
        level: str = "info",
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append an event to a job's event log and return it."""
        with self.lock:
            event = {
                "id": f"ftevent-{next(self._ids):06d}",
                "object": "fine_tuning.job.event",
                "created_at": self.now(),
                "level": level,
                "message": message,
                "type": type,
                "data": data or {},
            }
            self.events.setdefault(job_id, []).append(event)
            return event

    def add_metrics(
        self, job_id: str, *, step: int, total_steps: int, **metrics: float
    ) -> dict[str, Any]:
        """Append a training-step ``metrics`` event (the shape Bedrock documents)."""
        return self.add_event(
            job_id,
            f"Step {step}/{total_steps}: training metrics",
            type="metrics",
            data={"step": step, "total_steps": total_steps, **metrics},
        )

    def add_checkpoint(
        self, job_id: str, *, step: int, metrics: dict[str, float] | None = None
    ) -> dict[str, Any]:
        """Append a checkpoint (with validation metrics) to a job."""
        with self.lock:
            checkpoint = {
                "id": f"ftckpt-{next(self._ids):06d}",
                "object": "fine_tuning.job.checkpoint",
                "created_at": self.now(),
                "fine_tuned_model_checkpoint": f"{job_id}:ckpt-step-{step}",
                "fine_tuning_job_id": job_id,
                "metrics": {"step": float(step), **(metrics or {})},
                "step_number": step,
            }
            self.checkpoints.setdefault(job_id, []).append(checkpoint)
            return checkpoint

    def now(self) -> int:
        """A strictly increasing timestamp (seconds), so ordering by time is stable."""
        return int(time.time()) * 1000 + next(self._clock)

    def new_id(self, prefix: str) -> str:
        """A fresh object id."""
        return f"{prefix}-{next(self._ids):06d}"

    def jobs_with_status(self, *statuses: str) -> list[dict[str, Any]]:
        """The jobs whose status is one of ``statuses``."""
        with self.lock:
            return [job for job in self.jobs.values() if job["status"] in statuses]

    # -- request plumbing -------------------------------------------------------------------

    def injected_failure(self, method: str, path: str, *, after: bool) -> ApiError | None:
        """The injected failure for this request (before or after processing it), if any."""
        with self.lock:
            for failure in self._failures:
                if failure.remaining <= 0 or failure.after != after:
                    continue
                if failure.method and failure.method != method:
                    continue
                if failure.path_prefix and not path.startswith(failure.path_prefix):
                    continue
                failure.remaining -= 1
                kind = "rate_limit_error" if failure.status == 429 else "server_error"
                return ApiError(failure.status, failure.message, kind=kind, headers=failure.headers)
        return None

    def authorize(self, header: str | None) -> None:
        """Check the bearer token."""
        token = (header or "").removeprefix("Bearer ").strip()
        if self.api_key_prefix is not None and token.startswith(self.api_key_prefix):
            return
        if self.api_key is not None and token == self.api_key:
            return
        raise ApiError(401, "Invalid API key", code="invalid_api_key", kind="authentication")


def _page(
    items: list[dict[str, Any]], query: dict[str, list[str]], default_limit: int
) -> dict[str, Any]:
    """Newest-first paging with ``after`` / ``limit`` / ``has_more``."""
    newest_first = list(reversed(items))
    after = query.get("after", [None])[0]
    if after is not None:
        ids = [item["id"] for item in newest_first]
        if after not in ids:
            raise ApiError(400, f"No such object: {after}", param="after")
        newest_first = newest_first[ids.index(after) + 1 :]
    try:
        limit = int(query.get("limit", [default_limit])[0])
    except ValueError:
        raise ApiError(400, "limit must be an integer", param="limit") from None
    if not 1 <= limit <= 100:
        raise ApiError(400, "limit must be between 1 and 100", param="limit")
    data = newest_first[:limit]
    return {
        "object": "list",
        "data": data,
        "has_more": len(newest_first) > limit,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


class _Api:
    """The endpoint logic, separate from HTTP parsing."""

    def __init__(self, state: State) -> None:
        self.state = state

    # files ------------------------------------------------------------------------------

    def create_file(self, form: dict[str, tuple[str | None, bytes]]) -> dict[str, Any]:
        if "file" not in form:
            raise ApiError(400, "Missing file", param="file")
        purpose = form.get("purpose", (None, b""))[1].decode()
        if purpose != "fine-tune":
            raise ApiError(400, f"Invalid purpose: {purpose!r}", param="purpose")
        filename, content = form["file"]
        state = self.state
        with state.lock:
            file_id = state.new_id("file")
            status, details = "processed", None
            problem = _jsonl_problem(content)
            if problem is not None:
                status, details = "error", problem
            elif state.file_processing_polls > 0:
                status = "uploaded"
                state._polls[file_id] = state.file_processing_polls
            record = {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": state.now(),
                "filename": filename or "upload.jsonl",
                "purpose": purpose,
                "status": status,
                "status_details": details,
            }
            state.files[file_id] = record
            state.contents[file_id] = content
            return dict(record)

    def get_file(self, file_id: str) -> dict[str, Any]:
        state = self.state
        with state.lock:
            record = self._file(file_id)
            if record["status"] == "uploaded":
                state._polls[file_id] -= 1
                if state._polls[file_id] <= 0:
                    record["status"] = "processed"
            return dict(record)

    def list_files(self) -> dict[str, Any]:
        with self.state.lock:
            return {"object": "list", "data": [dict(f) for f in self.state.files.values()]}

    def delete_file(self, file_id: str) -> dict[str, Any]:
        with self.state.lock:
            self._file(file_id)
            del self.state.files[file_id]
            self.state.contents.pop(file_id, None)
            return {"id": file_id, "object": "file", "deleted": True}

    def file_content(self, file_id: str) -> bytes:
        with self.state.lock:
            self._file(file_id)
            return self.state.contents[file_id]

    def _file(self, file_id: str) -> dict[str, Any]:
        record = self.state.files.get(file_id)
        if record is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        return record

    # jobs -------------------------------------------------------------------------------

    def create_job(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be a JSON object")
        if "suffix" in body:
            raise ApiError(400, "suffix is not supported", param="suffix")
        model = body.get("model")
        if model not in self.state.models:
            raise ApiError(400, f"Model {model!r} is not available for fine-tuning", param="model")
        method = body.get("method") or {"type": "supervised"}
        hyperparameters = self._check_method(method)
        state = self.state
        with state.lock:
            for key in ("training_file", "validation_file"):
                file_id = body.get(key)
                if file_id is None and key == "validation_file":
                    continue
                record = state.files.get(str(file_id))
                if record is None:
                    raise ApiError(400, f"File {file_id} not found", param=key)
                if record["purpose"] != "fine-tune":
                    raise ApiError(
                        400, f"File {file_id} has purpose {record['purpose']}", param=key
                    )
                if record["status"] != "processed":
                    raise ApiError(
                        400, f"File {file_id} is not ready ({record['status']})", param=key
                    )
            metadata = body.get("metadata") or {}
            if not isinstance(metadata, dict) or len(metadata) > 16:
                raise ApiError(
                    400, "metadata must be an object of at most 16 keys", param="metadata"
                )
            job_id = state.new_id("ftjob")
            job = {
                "id": job_id,
                "object": "fine_tuning.job",
                "created_at": state.now(),
                "error": None,
                "fine_tuned_model": None,
                "finished_at": None,
                "hyperparameters": hyperparameters,
                "model": model,
                "organization_id": "org-local",
                "result_files": [],
                "seed": body.get("seed", 42),
                "status": "validating_files",
                "trained_tokens": None,
                "training_file": body["training_file"],
                "validation_file": body.get("validation_file"),
                "method": method,
                "metadata": (
                    {str(k): str(v) for k, v in metadata.items()} if state.store_metadata else None
                ),
                "integrations": None,
                "estimated_finish": None,
            }
            state.jobs[job_id] = job
            state._polls[job_id] = state.validation_polls
            state.add_event(job_id, f"Created fine-tuning job: {job_id}")
            state.add_event(job_id, "Validating training file")
            return dict(job)

    def _check_method(self, method: Any) -> dict[str, Any]:
        if not isinstance(method, dict) or method.get("type") not in (
            "supervised",
            "dpo",
            "reinforcement",
        ):
            raise ApiError(
                400, "method.type must be supervised, dpo or reinforcement", param="method"
            )
        if method["type"] != "reinforcement":
            return dict((method.get(method["type"]) or {}).get("hyperparameters") or {})
        settings = method.get("reinforcement")
        if not isinstance(settings, dict):
            raise ApiError(400, "method.reinforcement is required", param="method.reinforcement")
        grader = settings.get("grader")
        if not isinstance(grader, dict) or grader.get("type") != "lambda":
            raise ApiError(
                400, "the grader must be of type lambda", param="method.reinforcement.grader"
            )
        function = (grader.get("lambda") or {}).get("function")
        if not isinstance(function, str) or not LAMBDA_ARN.match(function):
            raise ApiError(
                400,
                f"grader lambda.function must be a Lambda ARN, got {function!r}",
                param="method.reinforcement.grader.lambda.function",
            )
        hyperparameters = settings.get("hyperparameters") or {}
        unknown = sorted(set(hyperparameters) - RFT_HYPERPARAMETERS)
        if unknown:
            raise ApiError(
                400,
                f"Unknown hyperparameter: {unknown[0]}",
                param=f"method.reinforcement.hyperparameters.{unknown[0]}",
            )
        return dict(hyperparameters)

    def get_job(self, job_id: str) -> dict[str, Any]:
        state = self.state
        with state.lock:
            job = self._job(job_id)
            if job["status"] == "validating_files":
                state._polls[job_id] -= 1
                if state._polls[job_id] <= 0:
                    self._validate(job)
            return dict(job)

    def _validate(self, job: dict[str, Any]) -> None:
        state = self.state
        content = state.contents.get(job["training_file"], b"")
        lines = [line for line in content.splitlines() if line.strip()]
        problem = None
        if len(lines) < state.min_examples:
            problem = (
                f"Training file {job['training_file']} has {len(lines)} examples; "
                f"at least {state.min_examples} are required"
            )
        else:
            for number, line in enumerate(lines, 1):
                record = json.loads(line)
                if not isinstance(record.get("messages"), list) or not record["messages"]:
                    problem = f"Training file line {number}: 'messages' is missing or empty"
                    break
        if problem is not None:
            job["error"] = {
                "code": "invalid_training_file",
                "message": problem,
                "param": "training_file",
            }
            state.set_status(job["id"], "failed")
        else:
            state.add_event(job["id"], "Files validated, moving job to queued state")
            state.set_status(job["id"], "queued")

    def list_jobs(self, query: dict[str, list[str]]) -> dict[str, Any]:
        with self.state.lock:
            jobs = list(self.state.jobs.values())
            if self.state.honour_metadata_filter:
                for key, values in query.items():
                    match = re.fullmatch(r"metadata\[(.+)\]", key)
                    if match:
                        jobs = [
                            j
                            for j in jobs
                            if (j["metadata"] or {}).get(match.group(1)) == values[0]
                        ]
            return _page([dict(j) for j in jobs], query, 20)

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        with self.state.lock:
            job = self._job(job_id)
            if job["status"] not in ACTIVE:
                raise ApiError(
                    400,
                    f"Job {job_id} has already finished with status {job['status']}",
                    code="invalid_state",
                )
            self.state.set_status(job_id, "cancelled")
            return dict(job)

    def list_events(self, job_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        with self.state.lock:
            self._job(job_id)
            return _page(list(self.state.events.get(job_id, [])), query, 20)

    def list_checkpoints(self, job_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        with self.state.lock:
            self._job(job_id)
            return _page(list(self.state.checkpoints.get(job_id, [])), query, 10)

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.state.jobs.get(job_id)
        if job is None:
            raise ApiError(
                404, f"Could not find fine-tune job: {job_id}", param="fine_tuning_job_id"
            )
        return job


def _jsonl_problem(content: bytes) -> str | None:
    """Why ``content`` is not JSON Lines of objects, or ``None``."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return "File is not UTF-8 text"
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            return f"Line {number}: invalid JSON ({err.msg})"
        if not isinstance(value, dict):
            return f"Line {number}: expected a JSON object"
    return None


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    form: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            form[name] = (part.get_filename(), payload)
    return form


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    raw: bytes
    content_type: str


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``state.requests`` instead."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("content-type", "")
        body: Any = None
        state = self.server.state
        try:
            if raw and content_type.startswith("application/json"):
                body = json.loads(raw)
            state.requests.append(
                Recorded(method, path, query, body, {k.lower(): v for k, v in self.headers.items()})
            )
            failure = state.injected_failure(method, path, after=False)
            if failure is not None:
                raise failure
            state.authorize(self.headers.get("authorization"))
            result = self._route(_Request(method, path, query, body, raw, content_type))
            failure = state.injected_failure(method, path, after=True)
            if failure is not None:
                raise failure
        except ApiError as err:
            self._send(err.status, err.body, err.headers)
            return
        except json.JSONDecodeError:
            self._send(
                400, {"error": {"message": "Invalid JSON body", "type": "invalid_request_error"}}
            )
            return
        if isinstance(result, bytes):
            self._send_bytes(200, result, "application/octet-stream")
        else:
            self._send(200, result)

    def _route(self, request: _Request) -> dict[str, Any] | bytes:
        api = self.server.api
        segments = [s for s in request.path.split("/") if s]
        if segments[:1] != ["v1"]:
            raise ApiError(404, f"Unknown path {request.path}")
        routes: dict[tuple[str, str], Callable[[list[str]], dict[str, Any] | bytes]] = {
            ("POST", "files"): lambda _: api.create_file(
                _multipart(request.content_type, request.raw)
            ),
            ("GET", "files"): lambda _: api.list_files(),
            ("GET", "files/*"): lambda ids: api.get_file(ids[0]),
            ("DELETE", "files/*"): lambda ids: api.delete_file(ids[0]),
            ("GET", "files/*/content"): lambda ids: api.file_content(ids[0]),
            ("POST", "fine_tuning/jobs"): lambda _: api.create_job(request.body),
            ("GET", "fine_tuning/jobs"): lambda _: api.list_jobs(request.query),
            ("GET", "fine_tuning/jobs/*"): lambda ids: api.get_job(ids[0]),
            ("POST", "fine_tuning/jobs/*/cancel"): lambda ids: api.cancel_job(ids[0]),
            ("GET", "fine_tuning/jobs/*/events"): lambda ids: api.list_events(
                ids[0], request.query
            ),
            ("GET", "fine_tuning/jobs/*/checkpoints"): lambda ids: api.list_checkpoints(
                ids[0], request.query
            ),
        }
        for (method, pattern), action in routes.items():
            shape = pattern.split("/")
            if method != request.method or len(shape) != len(segments) - 1:
                continue
            if all(p in ("*", s) for p, s in zip(shape, segments[1:], strict=True)):
                ids = [s for p, s in zip(shape, segments[1:], strict=True) if p == "*"]
                return action(ids)
        raise ApiError(404, f"Unknown route {request.method} {request.path}")

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.api = _Api(state)


class MantleServer:
    """The server on an ephemeral 127.0.0.1 port, in a background thread."""

    def __init__(self, state: State | None = None) -> None:
        self.state = state or State()
        self._server = _Server(self.state)
        # A short poll interval: shutdown() waits for the serving loop's next poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """The ``OPENAI_BASE_URL`` to use (ends in ``/v1``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def api_key(self) -> str:
        """The key the server accepts."""
        return self.state.api_key or ""

    def __enter__(self) -> MantleServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
