"""The answer to a sign-in refused because its name or address is locked out (django-axes).

    AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"   # config/settings.py

People get a page in the login form's look, clients that ask for JSON the API's error envelope;
both HTTP 429 with ``Retry-After``: the cool-off, which every further try starts again.
"""

from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from config.errors import AppError, ErrorCode
from monitoring import metrics


def lockout_response(request: HttpRequest, *args: Any) -> HttpResponse:
    """Axes passes (request, original_response, credentials), or (request, credentials) from
    its async middleware: neither is needed here."""
    cool_off = get_cool_off(request)
    seconds = cool_off.total_seconds() if cool_off else None
    error = AppError(
        ErrorCode.RATE_LIMITED,
        "Too many failed sign-ins for this name or from this address: try again later.",
        retry_after=seconds,
    )
    metrics.RATE_LIMITED.labels(channel="login", action="sign_in").inc()
    if _wants_json(request):
        response: HttpResponse = JsonResponse({"error": error.as_payload()}, status=429)
    else:
        minutes = math.ceil(seconds / 60) if seconds else None
        context = {"message": error.message, "minutes": minutes}
        response = render(request, "registration/locked_out.html", context, status=429)
    if seconds:
        response["Retry-After"] = str(math.ceil(seconds))
    return response


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return request.path.startswith("/api/") or (
        "application/json" in accept and "text/html" not in accept
    )
