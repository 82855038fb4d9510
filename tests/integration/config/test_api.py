"""DRF glue (config/api.py): the limited JSON parser and the one error shape.

A small view parses its body with the project's default parser and error handler, the way every
viewset will; no REST endpoint of the foundation reads a body yet.
"""

from __future__ import annotations

import json

import pytest
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from config.api import exception_handler
from config.errors import AppError, ErrorCode


class EchoView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request):
        return Response({"echo": request.data})


def post_raw(body: bytes, content_type: str = "application/json"):
    request = APIRequestFactory().post("/echo/", data=body, content_type=content_type)
    return EchoView.as_view()(request)


def error_code(response) -> str:
    response.render()
    return json.loads(response.content)["error"]["code"]


def test_a_json_body_is_parsed():
    response = post_raw(b'{"title": "Plan", "tags": ["a"]}')

    assert response.status_code == 200
    assert response.data == {"echo": {"title": "Plan", "tags": ["a"]}}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{", 400, "bad_json"),
        (b"\xff\xfe{}", 400, "bad_json"),
        (b'{"a": 1, "a": 2}', 400, "bad_json"),
        (b'{"a": NaN}', 400, "invalid"),
        (b'{"a": 1e400}', 400, "invalid"),
        (b'{"a": 9007199254740992}', 400, "invalid"),
        (b'{"a": "\\ud800"}', 400, "invalid"),
        (b'{"a": ' + b"9" * 5000 + b"}", 400, "bad_json"),
        (b"[" * 33 + b"]" * 33, 400, "too_deep"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400, "too_deep"),
    ],
)
def test_a_bad_body_gets_the_error_shape_and_never_500(body, status, code):
    response = post_raw(body)

    assert response.status_code == status
    assert error_code(response) == code


def test_a_body_over_the_size_limit_is_413_too_large(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"pad": "x" * 1000}).encode()

    response = post_raw(body)

    assert response.status_code == 413
    assert error_code(response) == "too_large"


def test_a_body_at_the_size_limit_is_accepted(settings):
    body = json.dumps({"pad": "x" * 980}).encode()
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body)

    assert post_raw(body).status_code == 200


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (AppError(ErrorCode.CONFLICT, "Version moved on."), 409, "conflict"),
        (Http404(), 404, "not_found"),
        (exceptions.NotFound(), 404, "not_found"),
        (exceptions.PermissionDenied(), 403, "forbidden"),
        (exceptions.NotAuthenticated(), 401, "unauthenticated"),
        (exceptions.MethodNotAllowed("PUT"), 405, "method_not_allowed"),
        (exceptions.UnsupportedMediaType("text/xml"), 400, "invalid"),
        (exceptions.ValidationError({"title": ["Required."]}), 400, "invalid"),
        (OperationalError("server closed the connection"), 503, "unavailable"),
        (InterfaceError("connection already closed"), 503, "unavailable"),
    ],
)
def test_errors_are_mapped_to_their_code_and_status(exc, status, code):
    response = exception_handler(exc, {})

    assert response.status_code == status
    assert response.data["error"]["code"] == code


def test_validation_errors_carry_their_fields():
    response = exception_handler(exceptions.ValidationError({"title": ["Required."]}), {})

    assert response.data == {
        "error": {
            "code": "invalid",
            "message": "Invalid input.",
            "retry": False,
            "details": {"fields": {"title": ["Required."]}},
        }
    }


def test_unexpected_exceptions_are_left_to_the_500_path_unshown():
    assert exception_handler(RuntimeError("secret"), {}) is None


@pytest.mark.parametrize(
    ("retry_after", "header"), [(0.2, "1"), (1.0, "1"), (1.4, "2"), (2.6, "3")]
)
def test_retry_after_header_is_rounded_up_to_whole_seconds(retry_after, header):
    response = exception_handler(AppError(ErrorCode.RATE_LIMITED, retry_after=retry_after), {})

    assert response.status_code == 429
    assert response["Retry-After"] == header


def test_an_anonymous_limit_counts_the_connection_not_a_forged_forwarded_for(db, settings):
    # RELIABILITY S9 (a); across real workers: tests/system/reliability/test_rate_limit_evasion.py
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "3/h"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    client = APIClient()

    statuses = [
        client.get("/api/schema/", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(1, 6)
    ]

    assert statuses == [200, 200, 200, 429, 429]
