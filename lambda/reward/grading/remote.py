"""Calls to a model endpoint for a whole batch: concurrent, retried, and bounded by the
invocation's deadline.

An :class:`Endpoint` gives the client and says which errors are worth a retry. Judges use
:class:`OpenAIEndpoint`: Bedrock's OpenAI-compatible API under the judge model's route
(``rft_common.mantle``: a short-term key minted from the function's own role), or whatever
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` name. Embeddings use ``bedrock-runtime``
(:mod:`grading.runtime_endpoint`). The SDKs are imported on first use only, so rule-based
definitions never pay for them at cold start.

Every sample gets an :class:`Outcome`: ``ok`` with a value, ``error`` (the endpoint refused,
or kept failing through the retries, or its reply could not be understood) or ``timeout``
(not done before the deadline). Graders turn the last two into their fallback score; the
Lambda itself never runs into its own timeout because of a slow endpoint.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from grading.base import Batch
from grading.log import logger
from grading.spec import Spec

if TYPE_CHECKING:
    from openai import OpenAI

T = TypeVar("T")
Item = TypeVar("Item")
C = TypeVar("C")
C_co = TypeVar("C_co", covariant=True)

# A request is not started with less time than this left: it could not finish anyway.
MIN_REQUEST_SECONDS = 0.05
# rft_common mints keys valid for an hour; a warm container may live longer than that.
CLIENT_MAX_AGE_SECONDS = 45 * 60


class ReplyError(ValueError):
    """The endpoint answered, but not in a form the grader can use (retried: a new sample from
    the model may comply)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """How calls are made: concurrency, retries with exponential backoff and full jitter."""

    concurrency: int = 16
    max_retries: int = 4
    timeout_seconds: float = 30.0
    backoff_base_seconds: float = 0.25
    backoff_cap_seconds: float = 4.0

    @classmethod
    def from_spec(cls, spec: Spec) -> Policy:
        """The policy keys of a grader definition (all optional)."""
        defaults = cls()
        return cls(
            concurrency=spec.number(
                "concurrency", defaults.concurrency, minimum=1, maximum=256, integer=True
            ),
            max_retries=spec.number(
                "max_retries", defaults.max_retries, minimum=0, maximum=10, integer=True
            ),
            timeout_seconds=spec.number(
                "timeout_seconds", defaults.timeout_seconds, minimum=0.1, maximum=900
            ),
        )

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        ceiling = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2**attempt)
        delay = random.uniform(0, ceiling)  # noqa: S311 (jitter, not cryptography)
        if retry_after is not None:  # the server's own Retry-After, within reason
            delay = max(delay, min(retry_after, self.backoff_cap_seconds))
        return delay


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """The result of one sample's call."""

    status: Literal["ok", "error", "timeout"]
    value: T | None = None
    reason: str = ""


class Endpoint(Protocol[C_co]):
    """Where a grader's calls go: a client (rebuilt on request) and how its errors are retried."""

    def client(self, *, renew: bool = False) -> C_co:
        """The client for the next call; ``renew`` builds a fresh one (an expired key)."""
        ...

    def classify(self, err: Exception) -> tuple[bool, bool, float | None]:
        """(retryable, renew the client, Retry-After seconds) for an exception of a call."""
        ...


class OpenAIEndpoint:
    """Bedrock's OpenAI-compatible API under one model's route (or ``OPENAI_BASE_URL``).

    One SDK client per container and base URL, rebuilt when its key may expire or the
    endpoint's environment variables change.
    """

    # (base URL, model) pairs whose endpoint refused a JSON-schema ``response_format``: shared
    # by every grader of the container, so the refusal costs one request per model, not one
    # per sample. Which Bedrock models honour it is not documented [open]; the refusal is.
    _unstructured: ClassVar[set[tuple[str, str]]] = set()
    _unstructured_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model: str, route: str | None = None) -> None:
        self.model = model
        self.route = route
        self._lock = threading.Lock()
        self._client: OpenAI | None = None
        self._key: tuple[str, str] = ("", "")
        self._born = 0.0

    def client(self, *, renew: bool = False) -> OpenAI:
        """The SDK client (built, or rebuilt when stale, on first use)."""
        from rft_common.mantle import base_url, openai_client

        key = (base_url(model=self.model, route=self.route), os.environ.get("OPENAI_API_KEY", ""))
        with self._lock:
            stale = time.monotonic() - self._born > CLIENT_MAX_AGE_SECONDS
            if renew or stale or self._client is None or key != self._key:
                # Retries are ours (deadline-aware); the SDK's own would ignore the deadline.
                self._client = openai_client(model=self.model, route=self.route, max_retries=0)
                self._key, self._born = key, time.monotonic()
            return self._client

    def structured(self) -> bool:
        """Whether to ask this model for a JSON-schema reply (not refused so far)."""
        with self._unstructured_lock:
            return (self._key[0], self.model) not in self._unstructured

    def refuse_structured(self, err: Exception) -> bool:
        """Remember (and say) whether ``err`` is the endpoint refusing ``response_format``: a
        400 whose message names ``response_format`` or ``json_schema``."""
        import openai

        if not isinstance(err, openai.BadRequestError):
            return False
        text = f"{err.message} {err.body}".casefold()
        if "response_format" not in text and "json_schema" not in text:
            return False
        with self._unstructured_lock:
            self._unstructured.add((self._key[0], self.model))
        return True

    def classify(self, err: Exception) -> tuple[bool, bool, float | None]:
        """Timeouts, 408/409/429/5xx and unusable replies are retried; 401 renews the key."""
        import openai

        if isinstance(err, ReplyError | openai.APIConnectionError):  # includes timeouts
            return True, False, None
        if isinstance(err, openai.APIStatusError):
            status = err.status_code
            retry_after = _retry_after(err.response.headers.get("retry-after"))
            if status == 401:
                return True, True, None  # an expired short-term key: mint a new one, once
            if status in (408, 409, 429) or status >= 500:
                return True, False, retry_after
        return False, False, None


def prepare() -> None:
    """Import the SDK now (at cold start, for definitions with a judge), so that the first
    batch's deadline is not spent on a half-second import. No client yet: building one mints
    a key, which needs the function's credentials at the time of the call."""
    import openai  # noqa: F401


def http_status(err: Exception) -> int | None:
    """The HTTP status of a botocore ``ClientError`` (``None`` for anything else)."""
    response = getattr(err, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _one(
    call: Callable[[C, Item, float], T],
    item: Item,
    policy: Policy,
    batch: Batch,
    endpoint: Endpoint[C],
) -> Outcome[T]:
    """One sample's call with retries, never past the deadline."""
    renewed = False
    attempt = 0
    while True:
        remaining = batch.remaining()
        if remaining is not None and remaining < MIN_REQUEST_SECONDS:
            return Outcome("timeout", reason="deadline reached")
        timeout = (
            policy.timeout_seconds if remaining is None else min(policy.timeout_seconds, remaining)
        )
        started = time.monotonic()
        try:
            value = call(endpoint.client(), item, timeout)
        except Exception as err:
            batch.stats.judge_call((time.monotonic() - started) * 1000)
            retryable, renew, retry_after = endpoint.classify(err)
            if renew and not renewed:  # once, on top of the retries: not the endpoint's fault
                endpoint.client(renew=True)
                renewed = True
                continue
            if not retryable or attempt >= policy.max_retries:
                if _deadline_passed(batch):
                    return Outcome("timeout", reason=f"{type(err).__name__} at the deadline")
                return Outcome("error", reason=_describe(err))
            delay = policy.backoff(attempt, retry_after)
            left = batch.remaining()
            if left is not None and delay + MIN_REQUEST_SECONDS >= left:
                return Outcome("timeout", reason="no time left for a retry")
            time.sleep(delay)
            attempt += 1
            continue
        batch.stats.judge_call((time.monotonic() - started) * 1000)
        return Outcome("ok", value)


def _deadline_passed(batch: Batch) -> bool:
    remaining = batch.remaining()
    return remaining is not None and remaining < MIN_REQUEST_SECONDS


def _describe(err: Exception) -> str:
    """A log-safe description: the exception type and HTTP status, never the reply text."""
    status = getattr(err, "status_code", None) or http_status(err)
    return f"{type(err).__name__}" + (f" (HTTP {status})" if status else "")


def run_calls(
    items: Sequence[Item],
    call: Callable[[C, Item, float], T],
    policy: Policy,
    batch: Batch,
    endpoint: Endpoint[C],
) -> list[Outcome[T]]:
    """``call(client, item, timeout)`` for every item, ``policy.concurrency`` at a time.

    Returns when every call is done or the deadline has passed, whichever is first; calls still
    running then are abandoned (their requests carry a timeout within the deadline).
    """
    if not items:
        return []
    executor = ThreadPoolExecutor(
        max_workers=min(policy.concurrency, len(items)), thread_name_prefix="judge"
    )
    try:
        futures: list[Future[Outcome[T]]] = [
            executor.submit(_one, call, item, policy, batch, endpoint) for item in items
        ]
        remaining = batch.remaining()
        wait(futures, timeout=None if remaining is None else max(0.0, remaining))
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    outcomes: list[Outcome[T]] = []
    for future in futures:
        if not future.done() or future.cancelled():
            outcomes.append(Outcome("timeout", reason="not done before the deadline"))
        elif (failure := future.exception()) is not None:  # a bug, not the endpoint
            outcomes.append(Outcome("error", reason=f"{type(failure).__name__} in the call"))
        else:
            outcomes.append(future.result())
    return outcomes


def log_failures(grader: str, ids: Sequence[Any], outcomes: Sequence[Outcome[Any]]) -> None:
    """One warning per sample whose call failed or timed out (ids and reasons only)."""
    for sample_id, outcome in zip(ids, outcomes, strict=True):
        if outcome.status != "ok":
            logger.warning(
                f"sample {sample_id!r}: {grader} {outcome.status}: {outcome.reason}",
                extra={"sample_id": sample_id, "reason": f"{outcome.status}: {outcome.reason}"},
            )
