"""A batch of validation prompts, end to end: each model sampled ``samples_per_prompt`` times
per prompt (concurrently), every completion graded in batches, one record per sample."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from rft_eval.grading import BATCH_SIZE, Graded, Grader, grade, rollout
from rft_eval.ids import prompt_id
from rft_eval.records import Record
from rft_eval.sampling import Sampler
from rft_eval.settings import MODELS, Settings

# Model calls in flight at once per worker (each Distributed Map child runs its own).
CONCURRENCY = 8
# make eval: when this many calls failed before any succeeded, the endpoint is unreachable
# or refuses us; stop instead of failing every prompt the same way.
FAIL_FAST_AFTER = 4


class EndpointError(RuntimeError):
    """Every model call failed so far: the endpoint is unreachable or refuses the calls."""


@dataclass
class _Call:
    prompt_id: str
    row: dict[str, Any]
    model: str
    model_id: str
    sample: int
    completion: str | None = None
    error: str | None = None

    @property
    def rollout_id(self) -> str:
        return f"{self.prompt_id}/{self.model}/{self.sample}"


def prompts(rows: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """``(prompt id, row)`` of every row; a duplicate id is an error (it would pair two
    different prompts)."""
    found: dict[str, dict[str, Any]] = {}
    for position, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            raise ValueError(f"validation row {position + 1}: not an object with messages")
        pid = prompt_id(row)
        if pid in found:
            raise ValueError(f"validation row {position + 1}: prompt id {pid!r} appears twice")
        found[pid] = row
    return list(found.items())


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())}"[:500]


def evaluate(
    rows: Sequence[dict[str, Any]],
    models: dict[str, str],
    settings: Settings,
    sampler: Sampler,
    grader: Grader,
    *,
    concurrency: int = CONCURRENCY,
    batch_size: int = BATCH_SIZE,
    on_call: Callable[[], None] | None = None,
    fail_fast: bool = False,
    deadline: float | None = None,
    grading_concurrency: int = 1,
) -> list[Record]:
    """Records of ``rows`` for both ``models`` (``{"base": id, "tuned": id}``), sorted.

    A call not started by ``deadline`` (``time.monotonic()``) is recorded as failed, so that
    a worker running out of time still writes what it has (like any failed call: a tuned
    sample scores 0, a base one excludes its prompt; see :mod:`rft_eval.stats`)."""
    calls = [
        _Call(pid, row, model, models[model], sample)
        for pid, row in prompts(rows)
        for model in MODELS
        for sample in range(settings.samples_per_prompt)
    ]
    lock = threading.Lock()
    state = {"ok": 0, "failed": 0}
    stop = threading.Event()

    def work(call: _Call) -> None:
        if stop.is_set():
            return
        if deadline is not None and time.monotonic() > deadline:
            call.error = "not called: the worker's time ran out (throttled or slow endpoint)"
            with lock:
                state["failed"] += 1
            if on_call is not None:
                on_call()
            return
        try:
            call.completion = sampler.complete(call.model_id, call.row["messages"], settings)
            with lock:
                state["ok"] += 1
        except Exception as err:
            call.error = _one_line(err)
            with lock:
                state["failed"] += 1
                if fail_fast and state["ok"] == 0 and state["failed"] >= FAIL_FAST_AFTER:
                    stop.set()
        finally:
            if on_call is not None:
                on_call()

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for future in [pool.submit(work, call) for call in calls]:
            future.result()
    if stop.is_set():
        first = next(c.error for c in calls if c.error)
        raise EndpointError(f"the first {FAIL_FAST_AFTER} model calls failed; the first: {first}")
    answered = [c for c in calls if c.completion is not None]
    graded = grade(
        [rollout(c.row, c.completion or "", c.rollout_id) for c in answered],
        grader,
        batch_size,
        grading_concurrency,
    )
    return sorted((_record(c, graded.get(c.rollout_id)) for c in calls), key=lambda r: r.order)


def _record(call: _Call, graded: Graded | str | None) -> Record:
    record = Record(call.prompt_id, call.model, call.model_id, call.sample, call.completion)
    if call.error is not None:
        return replace(record, error=call.error)
    if isinstance(graded, Graded):
        return replace(record, reward=graded.reward, metrics=dict(graded.metrics))
    return replace(record, error=graded or "grading: no answer")
