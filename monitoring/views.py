"""Health, readiness and metrics endpoints: public, and they reveal nothing private."""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitoring import buffered
from monitoring import metrics as project_metrics
from monitoring.health import readiness


@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and its event loop answers."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: every dependency answered within its timeout. 503 otherwise."""
    checks = await readiness()
    ready = all(check["ok"] for check in checks.values())
    for name, check in checks.items():  # names from monitoring.health: a closed set
        project_metrics.READINESS_OK.labels(check=name).set(1 if check["ok"] else 0)
        if check.get("ms") is not None:
            project_metrics.READINESS_SECONDS.labels(check=name).set(check["ms"] / 1000)
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


@never_cache
@require_GET
async def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; in multiprocess mode, every worker of this host summed."""
    buffered.flush()  # this worker's pending per-delivery counts, on the loop they belong to
    # Reading every worker's files is blocking I/O: off the event loop.
    body = await asyncio.to_thread(lambda: generate_latest(project_metrics.registry()))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
