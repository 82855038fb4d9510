"""Error codes and the payload REST and WebSocket share (config/errors.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config import errors
from config.errors import AppError, ErrorCode


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_has_an_http_status(code):
    assert 400 <= code.http_status <= 599


def test_only_transient_errors_say_retry():
    retryable = {code for code in ErrorCode if code.retry}

    assert retryable == {ErrorCode.RATE_LIMITED, ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL}


def test_close_codes_read_as_4000_plus_the_http_status():
    close_codes = {
        ErrorCode.UNAUTHENTICATED: errors.CLOSE_UNAUTHENTICATED,
        ErrorCode.FORBIDDEN: errors.CLOSE_FORBIDDEN,
        ErrorCode.NOT_FOUND: errors.CLOSE_NOT_FOUND,
        ErrorCode.RATE_LIMITED: errors.CLOSE_RATE_LIMITED,
        ErrorCode.TOO_MANY_SOCKETS: errors.CLOSE_TOO_MANY_SOCKETS,
        ErrorCode.INTERNAL: errors.CLOSE_INTERNAL,
    }

    assert {code: 4000 + code.http_status for code in close_codes} == close_codes
    assert errors.CLOSE_HEARTBEAT_TIMEOUT == 4408


def test_app_error_without_a_message_gets_a_readable_default():
    error = AppError(ErrorCode.RATE_LIMITED)

    assert error.message == "Rate limited."
    assert error.as_payload() == {"code": "rate_limited", "message": "Rate limited.", "retry": True}


def test_as_payload_carries_details_and_retry_after_only_when_set():
    error = AppError(ErrorCode.INVALID, "Bad field.", details={"fields": {"room": ["required"]}})

    assert error.as_payload() == {
        "code": "invalid",
        "message": "Bad field.",
        "retry": False,
        "details": {"fields": {"room": ["required"]}},
    }


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_as_payload_never_rounds_retry_after_down(retry_after):
    # A client that waits the advertised time must not be refused again for arriving early.
    payload = AppError(ErrorCode.RATE_LIMITED, retry_after=retry_after).as_payload()

    assert payload["retry_after"] >= retry_after - 1e-12  # float noise, far under the 1 us margin
    assert payload["retry_after"] - retry_after < 0.0011


def test_as_payload_rounds_retry_after_up_to_the_millisecond():
    assert AppError(ErrorCode.RATE_LIMITED, retry_after=1.2341).as_payload()["retry_after"] == 1.235
    assert AppError(ErrorCode.RATE_LIMITED, retry_after=2.0).as_payload()["retry_after"] == 2.0
