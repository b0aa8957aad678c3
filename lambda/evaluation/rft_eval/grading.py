"""Grading: the reward Lambda version the job trained with, invoked as Bedrock invokes it.

The event is Bedrock's (reference §2 / §9.5): a JSON array of rollouts ``{"id", "messages":
<the prompt's messages + the assistant's reply>, "metadata": {"reference_answer", <every
other field of the dataset row>}}``; the answer, an array of ``{"id",
"aggregate_reward_score", "metrics_list"}``. There is no second grading code path: in the
cloud, :class:`LambdaGrader` invokes the version; ``make eval`` injects a grader that calls
``lambda/reward``'s handler in-process with the environment's grader definition.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rft_eval.retry import Backoff, Transient, with_retries

# A grader: one batch of rollouts in, Bedrock's answer (one item per rollout) out.
Grader = Callable[[list[dict[str, Any]]], Any]

# Rollouts per invocation. Bedrock's own batch size is not documented [open]; the reward
# handler copes with any, and a moderate one keeps a failed invocation local.
BATCH_SIZE = 50
# Lambda's synchronous payload limit is 6 MB each way; batches stay well below it.
MAX_BATCH_BYTES = 4_000_000
# Seconds a grader invocation's read waits beyond the reward function's own timeout: the
# function ends first (timed out or not) and its answer arrives within this.
READ_MARGIN_SECONDS = 5.0
_ROW_ENVELOPE = ("id", "messages", "reference_answer")


class GradingError(RuntimeError):
    """The grader failed for a batch, or answered outside Bedrock's contract."""


@dataclass(frozen=True)
class Graded:
    """One rollout's reward and the grader's metrics."""

    reward: float
    metrics: dict[str, float] = field(default_factory=dict)


def rollout(row: dict[str, Any], completion: str, rollout_id: str) -> dict[str, Any]:
    """The rollout Bedrock would send for ``row`` answered by ``completion``."""
    extra = {k: v for k, v in row.items() if k not in _ROW_ENVELOPE}
    return {
        "id": rollout_id,
        "messages": [*row.get("messages", []), {"role": "assistant", "content": completion}],
        "metadata": {"reference_answer": row.get("reference_answer"), **extra},
    }


def batches(
    rollouts: Sequence[dict[str, Any]], size: int = BATCH_SIZE
) -> list[list[dict[str, Any]]]:
    """``rollouts`` in order, in batches of at most ``size`` items and ``MAX_BATCH_BYTES``."""
    found: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    weight = 0
    for item in rollouts:
        item_bytes = len(json.dumps(item).encode("utf-8"))
        if current and (len(current) >= size or weight + item_bytes > MAX_BATCH_BYTES):
            found.append(current)
            current, weight = [], 0
        current.append(item)
        weight += item_bytes
    if current:
        found.append(current)
    return found


def read_answer(rollouts: Sequence[dict[str, Any]], answer: Any) -> dict[str, Graded]:
    """The grader's ``answer`` by rollout id, checked against Bedrock's contract."""
    if not isinstance(answer, list):
        raise GradingError(f"the grader returned {type(answer).__name__}, not a JSON array")
    found: dict[str, Graded] = {}
    for item in answer:
        if not isinstance(item, dict) or "id" not in item:
            raise GradingError("an answer item is not an object with an id")
        score = item.get("aggregate_reward_score")
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            raise GradingError(f"answer for {item['id']}: aggregate_reward_score is {score!r}")
        metrics = {
            str(m["name"]): float(m["value"])
            for m in item.get("metrics_list") or []
            if isinstance(m, dict)
            and "name" in m
            and isinstance(m.get("value"), int | float)
            and not isinstance(m.get("value"), bool)
        }
        found[str(item["id"])] = Graded(float(score), metrics)
    missing = [r["id"] for r in rollouts if r["id"] not in found]
    if missing:
        raise GradingError(f"the grader answered no item for {len(missing)} rollout(s)")
    return found


def grade(
    rollouts: Sequence[dict[str, Any]],
    grader: Grader,
    batch_size: int = BATCH_SIZE,
    concurrency: int = 1,
) -> dict[str, Graded | str]:
    """Every rollout's :class:`Graded`, or why its batch could not be graded (text).

    ``concurrency`` batches at once (the cloud worker grades its batches together, so that
    they all fit in one reward-function timeout; ``make eval``'s in-process grader runs on the
    main thread, where its time budget holds)."""

    def one(batch: list[dict[str, Any]]) -> dict[str, Graded | str]:
        try:
            graded = read_answer(batch, grader(batch))
        except Exception as err:
            why = f"grading: {type(err).__name__}: {' '.join(str(err).split())}"[:500]
            return {r["id"]: why for r in batch}
        return {r["id"]: graded[r["id"]] for r in batch}

    groups = batches(rollouts, batch_size)
    results: dict[str, Graded | str] = {}
    if concurrency <= 1 or len(groups) <= 1:
        for batch in groups:
            results.update(one(batch))
        return results
    with ThreadPoolExecutor(max_workers=min(concurrency, len(groups))) as pool:
        for found in pool.map(one, groups):
            results.update(found)
    return results


def read_timeout(reward_timeout_seconds: float) -> float:
    """The grader client's read timeout for a reward function of that timeout."""
    return reward_timeout_seconds + READ_MARGIN_SECONDS


def lambda_client(region: str, reward_timeout_seconds: float) -> Any:
    """A Lambda client for the grader: it waits as long as the reward function may run (not
    botocore's 60 s), and botocore does not retry (:func:`with_retries` does, within the
    worker's deadline: botocore's own retries would run past it)."""
    import boto3
    from botocore.config import Config

    config = Config(
        read_timeout=read_timeout(reward_timeout_seconds),
        connect_timeout=10,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=16,
    )
    return boto3.client("lambda", region_name=region, config=config)


class LambdaGrader:
    """The reward Lambda, invoked synchronously by its qualified (version) ARN."""

    def __init__(self, client: Any, function_arn: str, *, backoff: Backoff | None = None) -> None:
        self._client = client
        self.function_arn = function_arn
        self.backoff = backoff or Backoff()

    def __call__(self, rollouts: list[dict[str, Any]]) -> Any:
        """Bedrock's answer for ``rollouts`` (``GradingError`` when the function failed)."""
        from rft_eval.sampling import classify_botocore

        def classify(err: Exception) -> Transient | None:
            from botocore.exceptions import ClientError

            if isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") in (
                "TooManyRequestsException",
                "EC2ThrottledException",
            ):
                return Transient(throttled=True)
            return classify_botocore(err)

        payload = json.dumps(rollouts).encode("utf-8")

        def call() -> Any:
            answer = self._client.invoke(
                FunctionName=self.function_arn,
                InvocationType="RequestResponse",
                Payload=payload,
            )
            body = answer["Payload"].read()
            if answer.get("FunctionError"):
                try:
                    message = json.loads(body).get("errorMessage", "")
                except (ValueError, AttributeError):
                    message = body[:200].decode("utf-8", "replace")
                raise GradingError(f"the reward function failed: {message}")
            return json.loads(body)

        return with_retries(call, classify, self.backoff)
