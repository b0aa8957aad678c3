"""Files and fine-tuning jobs, as Bedrock's OpenAI-compatible API ("Mantle") documents them.

Endpoints (under ``/v1``):

- ``POST /files`` (multipart: ``file``, ``purpose``), ``GET /files`` (``purpose``, newest
  first, paged with ``after`` / ``limit``), ``GET /files/{id}``, ``DELETE /files/{id}``,
  ``GET /files/{id}/content``. An upload keeps its ``filename`` (``store_filenames=False``:
  the service names it itself); one that is not JSON Lines gets status ``error`` with
  ``status_details``; otherwise ``processed`` (after ``file_processing_polls`` retrievals, 0
  by default).
- ``POST /fine_tuning/jobs``: checks the model, the files (exist, ``purpose=fine-tune``,
  processed), the method (``reinforcement`` needs a ``lambda`` grader with a function ARN,
  known hyperparameter names), rejects ``suffix`` (not supported by Bedrock). With
  ``strict=True`` it also answers 400 to any field Bedrock does not document (reference
  §9.3: ``model``, ``training_file`` and the reinforcement method with a lambda grader and
  ``n_epochs`` / ``batch_size`` / ``learning_rate_multiplier``), as an endpoint that rejects
  unknown fields would. New jobs are ``validating_files``; after ``validation_polls``
  retrievals (1 by default) the data is checked (at least ``min_examples`` lines with
  ``messages``) and the job moves to ``queued`` or to ``failed`` with an ``error``.
- ``GET /fine_tuning/jobs`` (``after``, ``limit``, ``metadata[k]=v``), ``GET
  /fine_tuning/jobs/{id}``, ``POST /fine_tuning/jobs/{id}/cancel``.
- ``GET /fine_tuning/jobs/{id}/events`` and ``GET /fine_tuning/jobs/{id}/checkpoints``: newest
  first (``order="asc"``: oldest first, since Bedrock's order is [open]), paged with ``after``
  (the id of the last item of the previous page), ``limit`` (capped at ``max_page``, so tests
  exercise paging) and ``has_more``; ``serve_checkpoints=False`` answers checkpoints with 404.

Test controls: inspect ``files``, ``contents``, ``jobs``, ``events`` and ``checkpoints`` (jobs,
events and checkpoints are held in their wire shape); put a job in place with ``add_job``;
change one with ``set_status``; add events with ``add_event`` / ``add_metrics`` and
checkpoints with ``add_checkpoint`` (at a given ``created_at``, for runs in the past).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Literal

from tests.openai_server.wire import ApiError, Request, Response, Route

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
# The create body Bedrock documents, object by object (path -> the keys it may hold).
DOCUMENTED_CREATE: dict[str, frozenset[str]] = {
    "": frozenset({"model", "training_file", "method"}),
    "method": frozenset({"type", "reinforcement"}),
    "method.reinforcement": frozenset({"grader", "hyperparameters"}),
    "method.reinforcement.grader": frozenset({"type", "lambda"}),
    "method.reinforcement.grader.lambda": frozenset({"function"}),
    "method.reinforcement.hyperparameters": frozenset(
        {"n_epochs", "batch_size", "learning_rate_multiplier"}
    ),
}


@dataclass
class FineTuning:
    """The files and jobs the server holds; tests read and change them directly."""

    models: frozenset[str] = frozenset({"openai.gpt-oss-20b", "qwen.qwen3-32b"})
    min_examples: int = 100
    file_processing_polls: int = 0
    validation_polls: int = 1
    honour_metadata_filter: bool = True
    # False: drop job metadata, as a service that does not keep it would.
    store_metadata: bool = True
    # False: name uploads "file-<n>.jsonl", as a service that ignores the given name would.
    store_filenames: bool = True
    # True: answer 400 to any create field Bedrock does not document (DOCUMENTED_CREATE).
    strict: bool = False
    # The order of event and checkpoint lists: "desc" (newest first, as OpenAI) or "asc".
    order: Literal["desc", "asc"] = "desc"
    max_page: int = 100  # the most items a page holds, whatever ``limit`` asks for
    serve_checkpoints: bool = True
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # oldest first
    checkpoints: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # oldest first
    lock: threading.RLock = field(default_factory=threading.RLock)
    _polls: dict[str, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- test controls --------------------------------------------------------------------

    def add_job(
        self,
        job_id: str | None = None,
        *,
        status: str = "running",
        model: str = "openai.gpt-oss-20b",
        created_at: int | None = None,
        training_file: str = "file-train",
    ) -> dict[str, Any]:
        """Put a job in place, as if it had been created earlier (no files, no events)."""
        with self.lock:
            job = self._new_job(
                job_id or self.new_id("ftjob"),
                model=model,
                status=status,
                created_at=self.now() if created_at is None else created_at,
                training_file=training_file,
            )
            if status == "validating_files":
                self._polls[job["id"]] = self.validation_polls
            return job

    def set_status(
        self,
        job_id: str,
        status: str,
        *,
        fine_tuned_model: str | None = None,
        error: dict[str, Any] | str | None = None,
    ) -> dict[str, Any]:
        """Move a job to ``status`` (and set ``fine_tuned_model`` / ``error``; an error given
        as text gets code ``job_failed``), logging an event as the service does."""
        with self.lock:
            job = self.jobs[job_id]
            job["status"] = status
            if fine_tuned_model is not None:
                job["fine_tuned_model"] = fine_tuned_model
            if isinstance(error, str):
                error = {"code": "job_failed", "message": error, "param": None}
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
        created_at: int | None = None,
    ) -> dict[str, Any]:
        """Append an event to a job's event log and return it."""
        with self.lock:
            event = {
                "id": self.new_id("ftevent"),
                "object": "fine_tuning.job.event",
                "created_at": self.now() if created_at is None else created_at,
                "level": level,
                "message": message,
                "type": type,
                "data": data or {},
            }
            self.events.setdefault(job_id, []).append(event)
            return event

    def add_metrics(
        self,
        job_id: str,
        *,
        step: int,
        total_steps: int,
        created_at: int | None = None,
        **metrics: float,
    ) -> dict[str, Any]:
        """Append a training-step ``metrics`` event (the shape Bedrock documents)."""
        return self.add_event(
            job_id,
            f"Step {step}/{total_steps}: training metrics",
            type="metrics",
            data={"step": step, "total_steps": total_steps, **metrics},
            created_at=created_at,
        )

    def add_checkpoint(
        self,
        job_id: str,
        *,
        step: int,
        metrics: dict[str, float] | None = None,
        created_at: int | None = None,
    ) -> dict[str, Any]:
        """Append a checkpoint (with validation metrics) to a job."""
        with self.lock:
            checkpoint = {
                "id": self.new_id("ftckpt"),
                "object": "fine_tuning.job.checkpoint",
                "created_at": self.now() if created_at is None else created_at,
                "fine_tuned_model_checkpoint": f"{job_id}:ckpt-step-{step}",
                "fine_tuning_job_id": job_id,
                "metrics": {"step": float(step), **(metrics or {})},
                "step_number": step,
            }
            self.checkpoints.setdefault(job_id, []).append(checkpoint)
            return checkpoint

    def now(self) -> int:
        """The service's clock: Unix seconds, as OpenAI's ``created_at``."""
        return int(time.time())

    def new_id(self, prefix: str) -> str:
        """A fresh object id (ids increase, so the newest of equal timestamps is known)."""
        return f"{prefix}-{next(self._ids):06d}"

    def jobs_with_status(self, *statuses: str) -> list[dict[str, Any]]:
        """The jobs whose status is one of ``statuses``."""
        with self.lock:
            return [job for job in self.jobs.values() if job["status"] in statuses]

    # -- endpoints --------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """The endpoints this resource serves."""
        return [
            Route("POST", "files", lambda request, _: self._create_file(request)),
            Route("GET", "files", lambda request, _: self._list_files(request.query)),
            Route("GET", "files/*", lambda _, ids: self._get_file(ids[0])),
            Route("DELETE", "files/*", lambda _, ids: self._delete_file(ids[0])),
            Route("GET", "files/*/content", lambda _, ids: self._file_content(ids[0])),
            Route("POST", "fine_tuning/jobs", lambda request, _: self._create_job(request.body)),
            Route("GET", "fine_tuning/jobs", lambda request, _: self._list_jobs(request.query)),
            Route("GET", "fine_tuning/jobs/*", lambda _, ids: self._get_job(ids[0])),
            Route("POST", "fine_tuning/jobs/*/cancel", lambda _, ids: self._cancel_job(ids[0])),
            Route(
                "GET",
                "fine_tuning/jobs/*/events",
                lambda request, ids: self._list_events(ids[0], request.query),
            ),
            Route(
                "GET",
                "fine_tuning/jobs/*/checkpoints",
                lambda request, ids: self._list_checkpoints(ids[0], request.query),
            ),
        ]

    # files ------------------------------------------------------------------------------

    def _create_file(self, request: Request) -> dict[str, Any]:
        form = _multipart(request.content_type, request.raw)
        if "file" not in form:
            raise ApiError(400, "Missing file", param="file")
        purpose = form.get("purpose", (None, b""))[1].decode()
        if purpose != "fine-tune":
            raise ApiError(400, f"Invalid purpose: {purpose!r}", param="purpose")
        filename, content = form["file"]
        with self.lock:
            file_id = self.new_id("file")
            status, details = "processed", None
            problem = _jsonl_problem(content)
            if problem is not None:
                status, details = "error", problem
            elif self.file_processing_polls > 0:
                status = "uploaded"
                self._polls[file_id] = self.file_processing_polls
            record = {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": self.now(),
                "filename": (filename or "upload.jsonl")
                if self.store_filenames
                else f"{file_id}.jsonl",
                "purpose": purpose,
                "status": status,
                "status_details": details,
            }
            self.files[file_id] = record
            self.contents[file_id] = content
            return dict(record)

    def _get_file(self, file_id: str) -> dict[str, Any]:
        with self.lock:
            record = self._file(file_id)
            if record["status"] == "uploaded":
                self._polls[file_id] -= 1
                if self._polls[file_id] <= 0:
                    record["status"] = "processed"
            return dict(record)

    def _list_files(self, query: dict[str, list[str]]) -> dict[str, Any]:
        with self.lock:
            files = [dict(f) for f in self.files.values()]
            purpose = query.get("purpose", [None])[0]
            if purpose is not None:
                files = [f for f in files if f["purpose"] == purpose]
            return _page(list(reversed(files)), query, 100, self.max_page)

    def _delete_file(self, file_id: str) -> dict[str, Any]:
        with self.lock:
            self._file(file_id)
            del self.files[file_id]
            self.contents.pop(file_id, None)
            return {"id": file_id, "object": "file", "deleted": True}

    def _file_content(self, file_id: str) -> Response:
        with self.lock:
            self._file(file_id)
            return Response(200, self.contents[file_id], "application/octet-stream")

    def _file(self, file_id: str) -> dict[str, Any]:
        record = self.files.get(file_id)
        if record is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        return record

    # jobs -------------------------------------------------------------------------------

    def _new_job(
        self,
        job_id: str,
        *,
        model: str,
        status: str,
        created_at: int,
        training_file: str,
        validation_file: str | None = None,
        hyperparameters: dict[str, Any] | None = None,
        method: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        seed: int = 42,
    ) -> dict[str, Any]:
        """Store a job record in the ``fine_tuning.job`` shape (under ``lock``)."""
        job = {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": created_at,
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": hyperparameters or {},
            "model": model,
            "organization_id": "org-local",
            "result_files": [],
            "seed": seed,
            "status": status,
            "trained_tokens": None,
            "training_file": training_file,
            "validation_file": validation_file,
            "method": method,
            "metadata": metadata,
            "integrations": None,
            "estimated_finish": None,
        }
        self.jobs[job_id] = job
        return job

    def _create_job(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be a JSON object")
        if "suffix" in body:
            raise ApiError(400, "suffix is not supported", param="suffix")
        if self.strict:
            _reject_undocumented(body, "")
        model = body.get("model")
        if model not in self.models:
            raise ApiError(400, f"Model {model!r} is not available for fine-tuning", param="model")
        method = body.get("method") or {"type": "supervised"}
        hyperparameters = _check_method(method)
        with self.lock:
            for key in ("training_file", "validation_file"):
                file_id = body.get(key)
                if file_id is None and key == "validation_file":
                    continue
                record = self.files.get(str(file_id))
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
            job = self._new_job(
                self.new_id("ftjob"),
                model=str(model),
                status="validating_files",
                created_at=self.now(),
                training_file=body["training_file"],
                validation_file=body.get("validation_file"),
                hyperparameters=hyperparameters,
                method=method,
                metadata=(
                    {str(k): str(v) for k, v in metadata.items()} if self.store_metadata else None
                ),
                seed=body.get("seed", 42),
            )
            self._polls[job["id"]] = self.validation_polls
            self.add_event(job["id"], f"Created fine-tuning job: {job['id']}")
            self.add_event(job["id"], "Validating training file")
            return dict(job)

    def _get_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(job_id)
            if job["status"] == "validating_files":
                self._polls[job_id] = self._polls.get(job_id, 1) - 1
                if self._polls[job_id] <= 0:
                    self._validate(job)
            return dict(job)

    def _validate(self, job: dict[str, Any]) -> None:
        content = self.contents.get(job["training_file"], b"")
        lines = [line for line in content.splitlines() if line.strip()]
        problem = None
        if len(lines) < self.min_examples:
            problem = (
                f"Training file {job['training_file']} has {len(lines)} examples; "
                f"at least {self.min_examples} are required"
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
            self.set_status(job["id"], "failed")
        else:
            self.add_event(job["id"], "Files validated, moving job to queued state")
            self.set_status(job["id"], "queued")

    def _list_jobs(self, query: dict[str, list[str]]) -> dict[str, Any]:
        with self.lock:
            jobs = list(self.jobs.values())
            if self.honour_metadata_filter:
                for key, values in query.items():
                    match = re.fullmatch(r"metadata\[(.+)\]", key)
                    if match:
                        jobs = [
                            j
                            for j in jobs
                            if (j["metadata"] or {}).get(match.group(1)) == values[0]
                        ]
            # Jobs are always listed newest first (``order`` is for events and checkpoints).
            return _page(list(reversed([dict(j) for j in jobs])), query, 20, self.max_page)

    def _cancel_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(job_id)
            if job["status"] not in ACTIVE:
                raise ApiError(
                    400,
                    f"Job {job_id} has already finished with status {job['status']}",
                    code="invalid_state",
                )
            self.set_status(job_id, "cancelled")
            return dict(job)

    def _list_events(self, job_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        with self.lock:
            self._job(job_id)
            return _page(self._ordered(self.events.get(job_id, [])), query, 20, self.max_page)

    def _list_checkpoints(self, job_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        if not self.serve_checkpoints:
            raise ApiError(404, f"Unknown route GET /v1/fine_tuning/jobs/{job_id}/checkpoints")
        with self.lock:
            self._job(job_id)
            checkpoints = self._ordered(self.checkpoints.get(job_id, []))
            return _page(checkpoints, query, 10, self.max_page)

    def _ordered(self, oldest_first: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(reversed(oldest_first)) if self.order == "desc" else list(oldest_first)

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(
                404, f"Could not find fine-tune job: {job_id}", param="fine_tuning_job_id"
            )
        return job


def _reject_undocumented(value: Any, path: str) -> None:
    """Raise 400 for the first field of a create body outside ``DOCUMENTED_CREATE``."""
    allowed = DOCUMENTED_CREATE.get(path)
    if allowed is None or not isinstance(value, dict):
        return
    for key in sorted(value):
        where = f"{path}.{key}" if path else key
        if key not in allowed:
            raise ApiError(400, f"Unrecognized request argument supplied: {where}", param=where)
        _reject_undocumented(value[key], where)


def _check_method(method: Any) -> dict[str, Any]:
    """The hyperparameters of a valid ``method``; an :class:`ApiError` otherwise."""
    if not isinstance(method, dict) or method.get("type") not in (
        "supervised",
        "dpo",
        "reinforcement",
    ):
        raise ApiError(400, "method.type must be supervised, dpo or reinforcement", param="method")
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


def _page(
    ordered: list[dict[str, Any]],
    query: dict[str, list[str]],
    default_limit: int,
    max_page: int,
) -> dict[str, Any]:
    """One page of ``ordered`` with ``after`` / ``limit`` / ``has_more``."""
    after = query.get("after", [None])[0]
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise ApiError(400, f"No such object: {after}", param="after")
        ordered = ordered[ids.index(after) + 1 :]
    try:
        limit = int(query.get("limit", [default_limit])[0])
    except ValueError:
        raise ApiError(400, "limit must be an integer", param="limit") from None
    if not 1 <= limit <= 100:
        raise ApiError(400, "limit must be between 1 and 100", param="limit")
    data = ordered[: min(limit, max_page)]
    return {
        "object": "list",
        "data": data,
        "has_more": len(ordered) > len(data),
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


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
    """The fields of a ``multipart/form-data`` body: name -> (file name, bytes)."""
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
