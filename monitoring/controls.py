"""Staff controls over every worker at once: switch an app's real-time features off and on,
announce, disconnect a user, count live connections.

Each write is committed with its audit event, then tells every worker to reload the control
state (config/realtime/control.py), which also reloads it by itself every few seconds: a lost
message delays a change by that much, it never loses it.

    app_switch_set(app="forms", enabled=False, reason="migrating", by=staff, ip=ip)
    announcement_create(text="Maintenance at 22:00 UTC", level="warning",
                        expires_at=now + timedelta(hours=2), by=staff, ip=ip)
    user_disconnect(user_id=7, by=staff, ip=ip)
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from config.errors import AppError, ErrorCode
from config.realtime import control
from config.realtime.envelope import encode_event
from config.realtime.orm import database_sync_to_async
from monitoring.events import record
from monitoring.models import (
    Announcement,
    AnnouncementLevel,
    AppSwitch,
    EventKind,
    RealtimeApp,
    Severity,
)

ANNOUNCEMENT_PUBLISHED = "monitoring.announcement.published"
ANNOUNCEMENT_WITHDRAWN = "monitoring.announcement.withdrawn"
MAX_TEXT = 500
MAX_REASON = 200
# Live announcements sent to each new socket: a handful is a notice board, more is spam.
MAX_LIVE_ANNOUNCEMENTS = 10
_SEVERITY = {
    AnnouncementLevel.INFO: Severity.INFO,
    AnnouncementLevel.WARNING: Severity.WARNING,
    AnnouncementLevel.CRITICAL: Severity.CRITICAL,
}


def _reload_workers_on_commit() -> None:
    control.tell_workers_on_commit({"action": "reload"})


# --- app switches ------------------------------------------------------------------------------
def app_switches() -> list[AppSwitch]:
    """Every switchable app, in name order (rows made as needed: absent means on)."""
    found = {s.app: s for s in AppSwitch.objects.select_related("changed_by")}
    return [found.get(app) or AppSwitch(app=app) for app in sorted(RealtimeApp.values)]


def _check_app(app: str) -> None:
    if app not in RealtimeApp.values:
        raise AppError(ErrorCode.NOT_FOUND, "No such real-time app.")


def app_switch_get(*, app: str) -> AppSwitch:
    _check_app(app)
    return AppSwitch.objects.select_related("changed_by").filter(app=app).first() or AppSwitch(
        app=app
    )


@transaction.atomic
def app_switch_set(
    *, app: str, enabled: bool, reason: str = "", by: Any, ip: str | None = None
) -> AppSwitch:
    """Switch an app's sockets off (closed and refused with 4503 on every worker) or on."""
    _check_app(app)  # the same 404 for an unknown app as the read
    if len(reason) > MAX_REASON:
        raise AppError(ErrorCode.INVALID, f"'reason' is at most {MAX_REASON} characters.")
    switch, _ = AppSwitch.objects.select_for_update().get_or_create(app=app)
    if switch.enabled == enabled and switch.reason == reason:
        return switch
    switch.enabled, switch.reason = enabled, reason
    switch.changed_by, switch.changed_at = by, timezone.now()
    switch.save()
    action = "app_enabled" if enabled else "app_disabled"
    details = {"action": action, "app": app, "reason": reason}
    severity = Severity.INFO if enabled else Severity.WARNING
    record(EventKind.STAFF_ACTION, severity, actor=by, ip=ip, details=details)
    _reload_workers_on_commit()
    return switch


# --- announcements -----------------------------------------------------------------------------
def announcement_payload(announcement: Announcement) -> dict[str, Any]:
    """What every socket gets, and REST shows."""
    return {
        "id": announcement.pk,
        "text": announcement.text,
        "level": announcement.level,
        "created_at": announcement.created_at.isoformat(),
        "expires_at": announcement.expires_at.isoformat(),
    }


def announcements_live(now: datetime | None = None) -> QuerySet[Announcement]:
    """Not withdrawn and not expired, oldest first (the order they were made in)."""
    now = now or timezone.now()
    return Announcement.objects.filter(withdrawn_at__isnull=True, expires_at__gt=now).order_by("id")


def announcements_all() -> QuerySet[Announcement]:
    return Announcement.objects.select_related("created_by", "withdrawn_by").order_by("-id")


@transaction.atomic
def announcement_create(
    *, text: str, level: str, expires_at: datetime, by: Any, ip: str | None = None
) -> Announcement:
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise AppError(ErrorCode.INVALID, f"'text' must be 1 to {MAX_TEXT} characters.")
    if level not in AnnouncementLevel.values:
        raise AppError(ErrorCode.INVALID, f"'level' must be one of {AnnouncementLevel.values}.")
    now = timezone.now()
    if expires_at <= now:
        raise AppError(ErrorCode.INVALID, "'expires_at' must be in the future.")
    announcement = Announcement.objects.create(
        text=text, level=level, created_by=by, created_at=now, expires_at=expires_at
    )
    details = {
        "announcement_id": announcement.pk,
        "text": text,
        "level": level,
        "expires_at": expires_at.isoformat(),
    }
    record(EventKind.ANNOUNCEMENT, _SEVERITY[level], actor=by, ip=ip, details=details)
    _reload_workers_on_commit()
    return announcement


@transaction.atomic
def announcement_withdraw(*, announcement_id: int, by: Any, ip: str | None = None) -> Announcement:
    """Take a live announcement down on every socket; one already gone is left as it is."""
    announcement = Announcement.objects.select_for_update().filter(pk=announcement_id).first()
    if announcement is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such announcement.")
    if not announcement.is_live():
        return announcement
    announcement.withdrawn_at, announcement.withdrawn_by = timezone.now(), by
    announcement.save(update_fields=["withdrawn_at", "withdrawn_by"])
    details = {"action": "announcement_withdrawn", "announcement_id": announcement.pk}
    record(EventKind.STAFF_ACTION, Severity.INFO, actor=by, ip=ip, details=details)
    _reload_workers_on_commit()
    return announcement


# --- what every worker loads -------------------------------------------------------------------
def _control_state() -> control.ControlState:
    disabled = AppSwitch.objects.filter(enabled=False).values_list("app", flat=True)
    live = announcements_live()[:MAX_LIVE_ANNOUNCEMENTS]
    return control.ControlState(
        disabled_apps=frozenset(disabled),
        announcements=tuple(
            control.Announcement(
                id=a.pk,
                expires_at=a.expires_at.timestamp(),
                published=encode_event(ANNOUNCEMENT_PUBLISHED, announcement_payload(a)),
                withdrawn=encode_event(ANNOUNCEMENT_WITHDRAWN, {"id": a.pk}),
            )
            for a in live
        ),
    )


control_state = database_sync_to_async(_control_state)  # REALTIME_CONTROL_STATE


# --- users and connections ---------------------------------------------------------------------
@transaction.atomic
def user_disconnect(*, user_id: int, by: Any, ip: str | None = None) -> Any:
    """Close every socket of the user on every worker (4401). Their sessions and tokens stay
    valid, so they may reconnect: deactivate the account to keep them out."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such user.")
    details = {"action": "user_disconnected", "user_id": user.pk, "username": user.get_username()}
    record(EventKind.STAFF_ACTION, Severity.WARNING, actor=by, ip=ip, details=details)
    control.tell_workers_on_commit({"action": "disconnect_user", "user_id": user.pk})
    return user


def connections_overview() -> dict[str, Any]:
    """Open sockets per app on every worker that has any, as the workers last reported them
    (every REALTIME_CONTROL_REPORT_SECONDS)."""
    workers = control.worker_reports()
    apps: Counter[str] = Counter()
    for report in workers:
        apps.update(report["apps"])
    return {"total": sum(apps.values()), "apps": dict(sorted(apps.items())), "workers": workers}
