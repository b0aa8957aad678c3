"""A small OpenAI-compatible fine-tuning server on 127.0.0.1, for the collector's tests.

It serves what the metrics collector and ``make report`` read, over real HTTP so that the
real ``openai`` SDK does the requests and the parsing:

* ``GET /v1/fine_tuning/jobs/{id}``
* ``GET /v1/fine_tuning/jobs/{id}/events?after=&limit=`` (newest first, like OpenAI; or
  oldest first with ``order="asc"``, since Bedrock's order is [open]); ``after`` pages
  towards older events; ``max_page`` caps ``limit`` so tests exercise paging;
* ``GET /v1/fine_tuning/jobs/{id}/checkpoints?after=&limit=`` (404 with ``checkpoints=False``).

Every request path is logged in ``requests`` so tests can see how far the collector paged.
``synthetic_run`` makes a plausible RFT run (rising reward, slowly falling entropy, one
grad-norm spike, slowly growing responses) from a seed. It is test data, not a real job.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class FakeJob:
    """One fine-tuning job as the server holds it."""

    id: str
    status: str = "running"
    created_at: int = field(default_factory=lambda: int(time.time()) - 3600)
    model: str = "openai.gpt-oss-20b"
    fine_tuned_model: str | None = None
    error: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    checkpoints: list[dict[str, Any]] = field(default_factory=list)  # oldest first

    def add_event(
        self,
        message: str,
        created_at: int,
        data: dict[str, Any] | None = None,
        kind: str = "message",
    ) -> None:
        """Append an event (ids are sequential, as a real server's would be unique)."""
        self.events.append(
            {
                "object": "fine_tuning.job.event",
                "id": f"ftevent-{self.id}-{len(self.events):05d}",
                "created_at": created_at,
                "level": "info",
                "message": message,
                "data": data or {},
                "type": kind,
            }
        )

    def add_metrics(self, data: dict[str, Any], created_at: int) -> None:
        """Append one training step's ``metrics`` event."""
        step, total = data["step"], data.get("total_steps")
        self.add_event(f"Step {step}/{total}: training metrics", created_at, data, "metrics")

    def add_checkpoint(self, step: int, metrics: dict[str, Any], created_at: int) -> None:
        """Append a checkpoint carrying validation metrics."""
        self.checkpoints.append(
            {
                "object": "fine_tuning.job.checkpoint",
                "id": f"ftckpt-{self.id}-{step:05d}",
                "created_at": created_at,
                "fine_tuned_model_checkpoint": f"{self.model}:ckpt-step-{step}",
                "fine_tuning_job_id": self.id,
                "metrics": {"step": step, **metrics},
                "step_number": step,
            }
        )

    def as_json(self) -> dict[str, Any]:
        """The job in the OpenAI ``fine_tuning.job`` shape."""
        return {
            "object": "fine_tuning.job",
            "id": self.id,
            "created_at": self.created_at,
            "model": self.model,
            "status": self.status,
            "fine_tuned_model": self.fine_tuned_model,
            "finished_at": None,
            "error": {"code": "job_failed", "message": self.error, "param": None}
            if self.error
            else None,
            "hyperparameters": {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 1.0},
            "organization_id": "org-test",
            "result_files": [],
            "seed": 42,
            "trained_tokens": None,
            "training_file": "file-train",
            "validation_file": None,
        }


class EventsServer:
    """The HTTP server; use as a context manager, ``base_url`` ends in ``/v1``."""

    def __init__(self, *, order: str = "desc", max_page: int = 100, checkpoints: bool = True):
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[str] = []
        self.order = order
        self.max_page = max_page
        self.checkpoints = checkpoints
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """The OpenAI SDK ``base_url`` of this server."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def add_job(self, job: FakeJob) -> FakeJob:
        """Serve ``job``."""
        with self._lock:
            self.jobs[job.id] = job
        return job

    def __enter__(self) -> EventsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
        ordered = list(reversed(items)) if self.order == "desc" else list(items)
        after = query.get("after", [None])[0]
        limit = min(int(query.get("limit", ["20"])[0]), self.max_page)
        start = 0
        if after is not None:
            ids = [item["id"] for item in ordered]
            start = ids.index(after) + 1 if after in ids else len(ordered)
        chunk = ordered[start : start + limit]
        return {"object": "list", "data": chunk, "has_more": start + limit < len(ordered)}

    def _route(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if parts[:3] != ["v1", "fine_tuning", "jobs"] or len(parts) < 4:
            return 404, _error(f"no route {path}")
        with self._lock:
            job = self.jobs.get(parts[3])
            if job is None:
                return 404, _error(f"fine-tuning job {parts[3]} not found")
            if len(parts) == 4:
                return 200, job.as_json()
            if parts[4:] == ["events"]:
                return 200, self._page(job.events, query)
            if parts[4:] == ["checkpoints"] and self.checkpoints:
                return 200, self._page(job.checkpoints, query)
        return 404, _error(f"no route {path}")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                server.requests.append(self.path)
                status, body = server._route(url.path, parse_qs(url.query))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output clean

        return Handler


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


def synthetic_step(step: int, total: int, rng: random.Random) -> dict[str, Any]:
    """One step's metrics in the documented event shape (bedrock-rft.md §4)."""
    progress = step / total
    reward = 0.32 + 0.5 * (1 - math.exp(-step / (0.3 * total))) + rng.gauss(0, 0.045)
    grad = 0.0009 * (1 + abs(rng.gauss(0, 0.25)))
    if step == int(0.45 * total):
        grad *= 7  # one instability spike, as real runs show
    return {
        "step": step,
        "total_steps": total,
        "critic_rewards_mean": round(min(1.0, max(0.0, reward)), 4),
        "actor_pg_loss": round(0.11 * (1 - 0.6 * progress) + rng.gauss(0, 0.02), 5),
        "actor_entropy": round(1.02 - 0.28 * progress + rng.gauss(0, 0.025), 4),
        "actor_grad_norm": round(grad, 6),
        "critic_advantages_mean": round(rng.gauss(0, 0.012), 5),
        "response_length_mean": round(515 + 95 * progress + rng.gauss(0, 14), 2),
    }


def synthetic_run(
    job_id: str,
    *,
    total_steps: int = 67,
    steps: int | None = None,
    seed: int = 7,
    start: int | None = None,
    step_seconds: int = 90,
    eval_every: int = 10,
) -> FakeJob:
    """A running job with ``steps`` (default all) steps of metrics and a checkpoint per eval."""
    rng = random.Random(seed)
    steps = total_steps if steps is None else steps
    start = int(time.time()) - (steps + 3) * step_seconds if start is None else start
    job = FakeJob(job_id, status="running", created_at=start - 600)
    job.add_event("Fine-tuning job created", start - 600)
    job.add_event("Validating training file", start - 300)
    job.add_event("Fine-tuning job started", start)
    extend_run(
        job,
        1,
        steps,
        total_steps=total_steps,
        rng=rng,
        start=start,
        step_seconds=step_seconds,
        eval_every=eval_every,
    )
    return job


def extend_run(
    job: FakeJob,
    first: int,
    last: int,
    *,
    total_steps: int,
    rng: random.Random,
    start: int,
    step_seconds: int = 90,
    eval_every: int = 10,
) -> None:
    """Add steps ``first``..``last`` (metrics events, and checkpoints every ``eval_every``)."""
    for step in range(first, last + 1):
        stamp = start + step * step_seconds
        job.add_metrics(synthetic_step(step, total_steps, rng), stamp)
        if step % eval_every == 0:
            val = 0.3 + 0.48 * (1 - math.exp(-step / (0.35 * total_steps))) + rng.gauss(0, 0.02)
            job.add_checkpoint(step, {"val_reward_mean": round(val, 4)}, stamp + 5)
            job.add_event(f"Checkpoint created at step {step}", stamp + 5)
