"""DRF glue: the JSON parser with size and depth limits, shared throttles, the error handler.

Every REST error has the same shape as a WebSocket error frame's ``error`` object:

    HTTP 429 {"error": {"code": "rate_limited", "message": "...", "retry": true, "retry_after": 3}}
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from config.errors import AppError, ErrorCode
from config.outages import service_unavailable
from config.realtime.envelope import check_value, loads_strict
from config.realtime.ratelimit import parse_rate
from config.realtime.throttle import throttle
from monitoring import metrics


class LimitedJSONParser(JSONParser):
    """JSON bodies with the WebSocket envelope's rules: depth limit, no NaN, no duplicate keys."""

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        try:
            text = stream.read().decode("utf-8") if stream is not None else ""
        except UnicodeDecodeError:
            raise AppError(ErrorCode.BAD_JSON, "The body must be UTF-8 JSON.") from None
        value = loads_strict(text)
        check_value(value, settings.REALTIME_MAX_DEPTH)
        return value


class SharedRateThrottle(BaseThrottle):
    """A DRF throttle counted in the shared store, so limits hold across all workers."""

    scope = "user"

    def allow_request(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if not request.user or not request.user.is_authenticated:
            ident = f"ip:{self.get_ident(request)}"
        else:
            ident = f"user:{request.user.pk}"
        rate = parse_rate(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope])
        decision = throttle(f"rest:{self.scope}:{ident}", rate)
        self.retry_after = decision.retry_after
        if not decision.allowed:
            metrics.RATE_LIMITED.labels(channel="rest", action=self.scope).inc()
        return decision.allowed

    def get_ident(self, request) -> str:  # type: ignore[no-untyped-def]
        # Not X-Forwarded-For: with NUM_PROXIES unset DRF takes that header as the address, and
        # a client that writes a new one on every request gets a fresh bucket every time
        # (RELIABILITY S9). Behind nginx, Daphne's --proxy-headers already put the address nginx
        # saw into REMOTE_ADDR (deploy/systemd, deploy/nginx).
        if api_settings.NUM_PROXIES is not None:
            return super().get_ident(request)
        return request.META.get("REMOTE_ADDR", "")

    def wait(self) -> float | None:
        return self.retry_after or None


class UserRateThrottle(SharedRateThrottle):
    scope = "user"


class TicketRateThrottle(SharedRateThrottle):
    scope = "realtime_ticket"


_DRF_CODES = {
    exceptions.NotAuthenticated: ErrorCode.UNAUTHENTICATED,
    exceptions.AuthenticationFailed: ErrorCode.UNAUTHENTICATED,
    exceptions.PermissionDenied: ErrorCode.FORBIDDEN,
    exceptions.NotFound: ErrorCode.NOT_FOUND,
    exceptions.MethodNotAllowed: ErrorCode.METHOD_NOT_ALLOWED,
    exceptions.Throttled: ErrorCode.RATE_LIMITED,
    exceptions.ValidationError: ErrorCode.INVALID,
    exceptions.ParseError: ErrorCode.BAD_JSON,
    exceptions.UnsupportedMediaType: ErrorCode.INVALID,
    exceptions.NotAcceptable: ErrorCode.INVALID,
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map every error to ``{"error": {...}}`` with an ErrorCode; never leak exception text."""
    error = _as_app_error(exc)
    if error is None:
        return None  # Django's 500 path: logged with the traceback, shown to nobody.
    metrics.ERRORS.labels(channel="rest", code=error.code.value).inc()
    response = Response({"error": error.as_payload()}, status=error.code.http_status)
    if error.retry_after:
        response["Retry-After"] = str(max(1, math.ceil(error.retry_after)))  # never early
    if error.code is ErrorCode.UNAUTHENTICATED:
        response["WWW-Authenticate"] = 'Token realm="api"'
    return response


def _as_app_error(exc: Exception) -> AppError | None:
    if isinstance(exc, AppError):
        return exc
    if (unavailable := service_unavailable(exc)) is not None:
        return unavailable
    if isinstance(exc, Http404):
        return AppError(ErrorCode.NOT_FOUND, "Not found.")
    if isinstance(exc, PermissionDenied):
        return AppError(ErrorCode.FORBIDDEN, "You may not do that.")
    if isinstance(exc, RequestDataTooBig):
        return AppError(ErrorCode.TOO_LARGE, "The request body is too large.")
    if isinstance(exc, exceptions.APIException):
        code = next((c for k, c in _DRF_CODES.items() if isinstance(exc, k)), ErrorCode.INVALID)
        details = exc.detail if isinstance(exc, exceptions.ValidationError) else None
        message = str(exc.detail) if not isinstance(exc.detail, dict | list) else "Invalid input."
        retry_after = getattr(exc, "wait", None)
        if exc.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE:
            code = ErrorCode.TOO_LARGE
        return AppError(
            code,
            message,
            details={"fields": details} if details else None,
            retry_after=retry_after,
        )
    return None


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for URLs no route matches: the API's JSON error shape under /api/, HTML elsewhere."""
    if request.path.startswith("/api/"):
        error = AppError(ErrorCode.NOT_FOUND, "No such endpoint.")
        return JsonResponse({"error": error.as_payload()}, status=404)
    return defaults.page_not_found(request, exception)
