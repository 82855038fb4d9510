"""Failures that mean a service we depend on is down, not that our code is wrong: PostgreSQL
down or restarting (or the pool out of connections in time), Redis unreachable. Both transports
answer them as a retryable ``unavailable`` (REST 503, a WebSocket error frame with ``"retry":
true``), never as ``internal``, so clients send the same command again (RELIABILITY.md F3, F6).
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from redis.exceptions import RedisError

from config.errors import AppError, ErrorCode

log = logging.getLogger(__name__)


def service_unavailable(exc: BaseException) -> AppError | None:
    """The retryable error to answer ``exc`` with, or None when it is not an outage."""
    if isinstance(exc, OperationalError | InterfaceError):
        # Logged, since operators need to see it; without the traceback of a bug.
        log.warning("database unavailable: %s", type(exc).__name__)
        return AppError(ErrorCode.UNAVAILABLE, "The database is unavailable; retry shortly.")
    if isinstance(exc, RedisError):
        log.warning("redis unavailable: %s", type(exc).__name__)
        return AppError(ErrorCode.UNAVAILABLE, "A shared service is unavailable; retry shortly.")
    return None
