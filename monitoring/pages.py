"""The staff page: system events and alerts live, connection counts, app switches,
announcements and readiness, for staff.

Thin, as collab/pages.py: the page names what the signed-in staff member may do (the same
Django permissions the REST staff controls check), and monitoring/static/monitoring/staff.js
does the rest over ``/ws/monitoring/events/`` and the staff REST API with the session cookie.
Others are refused with 403, as the staff socket (4403) and the staff REST routes refuse them.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from monitoring.models import AnnouncementLevel, EventKind, Severity
from monitoring.sampler import thresholds_from_settings


@login_required
@require_http_methods(["GET"])
def staff_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_staff:
        return render(request, "monitoring/staff.html", {"forbidden": True}, status=403)
    options = {
        "can_switch": user.has_perm("monitoring.change_appswitch"),
        "can_announce": user.has_perm("monitoring.add_announcement"),
        "can_withdraw": user.has_perm("monitoring.change_announcement"),
        "latency_warning_ms": _latency_warnings(),
    }
    context = {
        "kinds": EventKind.values,
        "severities": Severity.values,
        "levels": AnnouncementLevel.values,
        "options": options,
        **options,
    }
    return render(request, "monitoring/staff.html", context)


def _latency_warnings() -> dict[str, float]:
    """The health sampler's warning level of each readiness check (``database``: 250), the
    scale of the page's latency meters."""
    try:
        limits = thresholds_from_settings().limits
    except ValueError:  # the sampler reports a bad setting; the page just draws no scale
        return {}
    return {
        metric.removesuffix("_ms"): limit.warning
        for metric, limit in limits.items()
        if metric.endswith("_ms")
    }
