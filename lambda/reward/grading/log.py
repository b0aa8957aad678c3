"""The library's structured logger (Powertools; JSON lines in CloudWatch Logs).

Logging rule: sample ids and reasons only. Response text appears only at DEBUG level
(``POWERTOOLS_LOG_LEVEL=DEBUG``), never in the default INFO logs.
"""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "reward")


def debug_enabled() -> bool:
    """Whether debug lines are logged (asked once per batch: a debug call per sample costs
    even when it logs nothing)."""
    return logging.getLogger(logger.name).isEnabledFor(logging.DEBUG)
