"""Run the reward Lambda's own handler locally, the way Bedrock invokes it.

Preflight must grade with exactly the code that will grade in training: it imports
``lambda/reward/handler.py`` (under a module name of its own, so it never collides with a
test's or another tool's copy), sets ``GRADER_CONFIG`` to the grader file under test, and
calls ``handler(event, context)`` with a JSON array of rollouts. The answer is checked against
the contract Bedrock relies on (every id echoed, ``aggregate_reward_score`` a number in 0..1).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import json
import logging
import math
import os
import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_DIR = ROOT / "lambda"
# Rollouts per handler invocation. Bedrock's own batch size is [open]; the handler must cope
# with any size, and a moderate one keeps a failure local to few records.
BATCH_SIZE = 50

_counter = itertools.count()


class GraderLoadError(RuntimeError):
    """The handler could not be imported or the grader definition could not be loaded."""


class GraderContractError(RuntimeError):
    """The handler raised, or answered in a shape Bedrock would reject."""


def ensure_lambda_paths(function: str = "reward") -> None:
    """Put ``lambda/common`` and ``lambda/<function>`` on ``sys.path``, as in the bundle."""
    for folder in (LAMBDA_DIR / "common", LAMBDA_DIR / function):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers read."""

    function_name: str = "preflight-reward"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:preflight-reward"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/preflight-reward"
    log_stream_name: str = "preflight"

    def get_remaining_time_in_millis(self) -> int:
        """Time left in the invocation: the deployed function's 300-second timeout."""
        return 300_000


@dataclass
class HandlerOutput:
    """What the handler wrote while grading: EMF metric totals and log lines."""

    metrics: dict[str, float] = field(default_factory=dict)
    # Warning and error log lines, counted by reason (the log's "reason" key, else message).
    problems: Counter[str] = field(default_factory=Counter)

    def absorb(self, text: str) -> None:
        """Sum EMF count metrics and keep warning/error log lines from captured output."""
        for line in text.splitlines():
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(data, dict):
                continue
            if "_aws" in data:
                self._add_counts(data)
            elif str(data.get("level", "")).upper() in ("WARNING", "ERROR", "CRITICAL"):
                self.problems[str(data.get("reason") or data.get("message") or line)] += 1

    def _add_counts(self, record: dict[str, Any]) -> None:
        # Only counts add up across invocations (a sum of per-batch means says nothing).
        for directive in record["_aws"].get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                name = metric.get("Name")
                if metric.get("Unit") != "Count" or name not in record:
                    continue
                value = record[name]
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, int | float):
                        self.metrics[name] = self.metrics.get(name, 0.0) + item


@contextlib.contextmanager
def _logs_into(buffer: io.StringIO, service: str) -> Iterator[None]:
    """Point the handler's log output at ``buffer`` for a while.

    A logger keeps the stream that was stdout when it was created (Powertools does), so
    redirecting ``sys.stdout`` alone does not capture its lines. Swapped: the stream handlers
    of the Lambda's service logger (Powertools names it after ``POWERTOOLS_SERVICE_NAME``),
    whatever stream they hold, and any other stream handler writing to stdout.
    """
    stdout = {id(sys.stdout), id(sys.__stdout__)}
    named = logging.Logger.manager.loggerDict
    swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
    for name, logger in [("", logging.getLogger()), *named.items()]:
        if not isinstance(logger, logging.Logger):
            continue
        ours = name == service or name.startswith(f"{service}.")
        for handler in logger.handlers:
            if (
                isinstance(handler, logging.StreamHandler)
                and not isinstance(handler, logging.FileHandler)
                and (ours or id(handler.stream) in stdout)
            ):
                swapped.append((handler, handler.stream))
                _set_stream(handler, buffer)
    try:
        yield
    finally:
        for handler, stream in swapped:
            _set_stream(handler, stream)


def _set_stream(handler: logging.StreamHandler[Any], stream: Any) -> None:
    # Not setStream(): it flushes the old stream, which may be closed (a test's capture).
    handler.acquire()
    try:
        handler.stream = stream
    finally:
        handler.release()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class RewardHandler:
    """The reward Lambda's handler, loaded for one grader definition."""

    def __init__(
        self, grader: Path, environment: str = "preflight", keep_rollouts: Path | None = None
    ) -> None:
        self.grader = grader
        self.env = {
            "GRADER_CONFIG": str(grader.resolve()),
            "RFT_ENVIRONMENT": environment,
            "POWERTOOLS_SERVICE_NAME": "reward",
            "POWERTOOLS_METRICS_NAMESPACE": "BedrockRft/Grader",
            # Local grading keeps no rollout samples, whatever the shell's environment says,
            # unless asked to keep every one in a local folder (make eval's KEEP_ROLLOUTS=).
            "ROLLOUT_SAMPLE_RATE": "0",
        }
        if keep_rollouts is not None:
            keep_rollouts.mkdir(parents=True, exist_ok=True)
            self.env["ROLLOUT_SAMPLES_URI"] = keep_rollouts.resolve().as_uri()
            self.env["ROLLOUT_SAMPLE_RATE"] = "1"
        self.output = HandlerOutput()
        self._buffer = io.StringIO()
        self.invocations = 0
        self._module = self._load()

    def _load(self) -> ModuleType:
        handler_file = LAMBDA_DIR / "reward" / "handler.py"
        if not handler_file.is_file():
            raise GraderLoadError("lambda/reward/handler.py does not exist")
        ensure_lambda_paths("reward")
        # A name of our own per load: the handler may read GRADER_CONFIG at import.
        name = f"preflight_reward_handler_{next(_counter)}"
        spec = importlib.util.spec_from_file_location(name, handler_file)
        if spec is None or spec.loader is None:
            raise GraderLoadError(f"cannot import {handler_file}")
        module = importlib.util.module_from_spec(spec)
        # Imported with stdout as it is, so that a logger created now keeps the real stdout
        # and can be pointed at the capture buffer per call (see _logs_into).
        with _environment(self.env):
            try:
                spec.loader.exec_module(module)
            except Exception as err:
                raise GraderLoadError(
                    f"{self.grader}: the reward handler failed to load it: {_one_line(err)}"
                ) from err
        if not callable(getattr(module, "handler", None)):
            raise GraderLoadError("lambda/reward/handler.py defines no handler(event, context)")
        return module

    @contextlib.contextmanager
    def _captured(self) -> Iterator[None]:
        """Set the Lambda's environment and capture what it prints (EMF metrics, logs)."""
        with (
            _environment(self.env),
            _logs_into(self._buffer, self.env["POWERTOOLS_SERVICE_NAME"]),
            contextlib.redirect_stdout(self._buffer),
        ):
            try:
                yield
            finally:
                self.output.absorb(self._buffer.getvalue())
                self._buffer.seek(0)
                self._buffer.truncate()

    def invoke(self, rollouts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One handler invocation on ``rollouts``; the raw answer, checked against the contract."""
        event = [dict(r) for r in rollouts]
        with self._captured():
            try:
                answer = self._module.handler(event, LambdaContext())
            except Exception as err:
                raise GraderContractError(f"the handler raised {_one_line(err)}") from err
        self.invocations += 1
        return check_answer(rollouts, answer)

    def graders(self) -> list[Any]:
        """The definition's graders, the top one and every sub-grader."""
        found: list[Any] = []
        todo = [self._module.DEFINITION.grader]
        while todo:
            grader = todo.pop(0)
            found.append(grader)
            todo.extend(grader.children())
        return found

    def scores(
        self, rollouts: Sequence[dict[str, Any]], batch_size: int = BATCH_SIZE
    ) -> list[float]:
        """``aggregate_reward_score`` of every rollout, in order, in batches."""
        result: list[float] = []
        for start in range(0, len(rollouts), batch_size):
            batch = rollouts[start : start + batch_size]
            by_id = {item["id"]: item for item in self.invoke(batch)}
            result.extend(float(by_id[r["id"]]["aggregate_reward_score"]) for r in batch)
        return result


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__


def check_answer(rollouts: Sequence[dict[str, Any]], answer: Any) -> list[dict[str, Any]]:
    """The handler's ``answer`` if it honours Bedrock's contract; else GraderContractError."""
    if not isinstance(answer, list):
        raise GraderContractError(f"the handler returned {type(answer).__name__}, not a JSON array")
    wanted = [r["id"] for r in rollouts]
    seen: set[Any] = set()
    for position, item in enumerate(answer):
        if not isinstance(item, dict) or "id" not in item:
            raise GraderContractError(f"answer item {position} is not an object with an id")
        score = item.get("aggregate_reward_score")
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            raise GraderContractError(
                f"answer for id {item['id']}: aggregate_reward_score is {json.dumps(score)}, "
                "not a number"
            )
        if not 0.0 <= float(score) <= 1.0:
            raise GraderContractError(
                f"answer for id {item['id']}: aggregate_reward_score {score} is outside 0..1"
            )
        metrics = item.get("metrics_list", [])
        if not isinstance(metrics, list) or any(
            not isinstance(m, dict) or m.get("type") not in ("Reward", "Metric") for m in metrics
        ):
            raise GraderContractError(
                f"answer for id {item['id']}: metrics_list items must be "
                '{"name", "value", "type": "Reward" | "Metric"}'
            )
        seen.add(item["id"])
    missing = [i for i in wanted if i not in seen]
    if missing or len(answer) != len(wanted):
        raise GraderContractError(
            f"the handler answered {len(answer)} items for {len(wanted)} rollouts"
            + (f"; missing ids: {', '.join(map(str, missing[:3]))}" if missing else "")
        )
    return answer
