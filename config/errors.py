"""One set of error codes for REST and WebSocket alike.

A client sees the same ``code`` for the same fault whichever way it talks to us:

    raise AppError(ErrorCode.NOT_FOUND, "No such document.")
    # REST      -> 404 {"error": {"code": "not_found", "message": "No such document."}}
    # WebSocket -> {"type": "error", "id": "c17", "error": {"code": "not_found", ...}}

Codes are part of the public protocol: add new ones, never rename or reuse one.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # The message itself is unusable.
    BAD_JSON = "bad_json"
    BAD_FRAME = "bad_frame"
    UNKNOWN_TYPE = "unknown_type"
    TOO_LARGE = "too_large"
    TOO_DEEP = "too_deep"
    INVALID = "invalid"
    # Who is asking.
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # The state of the world.
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    ROOM_FULL = "room_full"
    TOO_MANY_SOCKETS = "too_many_sockets"
    # Ours.
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]

    @property
    def retry(self) -> bool:
        """Whether sending the same request again later may succeed."""
        return self in _RETRYABLE


_HTTP_STATUS = {
    ErrorCode.BAD_JSON: 400,
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.TOO_DEEP: 400,
    ErrorCode.INVALID: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.ROOM_FULL: 409,
    ErrorCode.TOO_MANY_SOCKETS: 409,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}
_RETRYABLE = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL})

# WebSocket close codes (DESIGN section 4). 4000 + HTTP status, so they read alike.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_HEARTBEAT_TIMEOUT = 4408
CLOSE_RATE_LIMITED = 4429
# The user already holds REALTIME_MAX_SOCKETS_PER_USER sockets: refused at the handshake. Like a
# full room (409): it frees when one of them closes, so reconnect later, with backoff.
CLOSE_TOO_MANY_SOCKETS = 4409
CLOSE_INTERNAL = 4500
# Staff switched this app's real-time features off (monitoring): try again later, with backoff.
CLOSE_UNAVAILABLE = 4503
# The worker is stopping (SIGTERM, a deploy): reconnect now, another worker serves you. 1012
# (service restart) in the private range: Daphne's WebSocket library (autobahn) lets an
# application close only with 1000 or 3000-4999.
CLOSE_SERVICE_RESTART = 4012


class AppError(Exception):
    """A failure the client is told about, by code, with a message safe to show."""

    def __init__(
        self,
        code: ErrorCode,
        message: str = "",
        *,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message or code.value)
        self.code = code
        self.message = message or code.value.replace("_", " ").capitalize() + "."
        self.details = details
        self.retry_after = retry_after

    def as_payload(self) -> dict[str, Any]:
        """The ``error`` object both REST and WebSocket replies carry."""
        payload: dict[str, Any] = {
            "code": self.code.value,
            "message": self.message,
            "retry": self.code.retry,
        }
        if self.details:
            payload["details"] = self.details
        if self.retry_after is not None:
            # Up, never to nearest: a client that waits the advertised time must not be early.
            payload["retry_after"] = math.ceil(self.retry_after * 1000) / 1000
        return payload
