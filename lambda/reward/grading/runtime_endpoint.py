"""``bedrock-runtime`` as an :class:`~grading.remote.Endpoint`: SigV4-signed ``InvokeModel``
calls with the function's own credentials (botocore, bundled with the reward function).

Bedrock's OpenAI-compatible endpoint serves Responses, Chat Completions and Messages only; an
embeddings model such as Titan Text Embeddings is called here. botocore's own retries are off
(``total_max_attempts`` 1): :func:`grading.remote.run_calls` retries within the batch's
deadline. The read timeout is the grader's ``timeout_seconds``; a call still running at the
deadline is abandoned by ``run_calls``.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, cast

from grading.remote import CLIENT_MAX_AGE_SECONDS, ReplyError, http_status

if TYPE_CHECKING:
    from botocore.client import BaseClient

# Error codes bedrock-runtime answers for a call worth repeating (botocore service model:
# InvokeModel's errors), besides any 408, 429 or 5xx.
_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ModelNotReadyException",
        "ModelTimeoutException",
        "ServiceUnavailableException",
        "InternalServerException",
    }
)
_EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})


class RuntimeEndpoint:
    """A ``bedrock-runtime`` client per container, rebuilt when the region changes or it is old.

    ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` (botocore's own setting) points it elsewhere.
    """

    def __init__(self, *, timeout_seconds: float, concurrency: int) -> None:
        self.timeout_seconds = timeout_seconds
        self.concurrency = concurrency
        self._lock = threading.Lock()
        self._client: BaseClient | None = None
        self._region = ""
        self._born = 0.0

    def client(self, *, renew: bool = False) -> BaseClient:
        """The botocore client of the function's region."""
        from rft_common.mantle import resolve_region

        region = resolve_region()
        with self._lock:
            stale = time.monotonic() - self._born > CLIENT_MAX_AGE_SECONDS
            if renew or stale or self._client is None or region != self._region:
                self._client = _make_client(region, self.timeout_seconds, self.concurrency)
                self._region, self._born = region, time.monotonic()
            return self._client

    def classify(self, err: Exception) -> tuple[bool, bool, float | None]:
        """Throttling, 408/429/5xx, connection failures and unusable replies are retried;
        expired credentials rebuild the client once."""
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(err, ReplyError):
            return True, False, None
        if isinstance(err, ClientError):
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in _EXPIRED_CODES:
                return True, True, None
            status = http_status(err) or 0
            if code in _RETRYABLE_CODES or status in (408, 429) or status >= 500:
                return True, False, None
            return False, False, None
        if isinstance(err, BotoCoreError):  # connection errors and read timeouts
            return True, False, None
        return False, False, None


def _make_client(region: str, timeout_seconds: float, concurrency: int) -> BaseClient:
    import botocore.session
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=min(10.0, timeout_seconds),
        read_timeout=timeout_seconds,
        max_pool_connections=max(10, concurrency),
    )
    session = botocore.session.get_session()
    client = session.create_client("bedrock-runtime", region_name=region, config=config)
    return cast("BaseClient", client)
