"""Recording system events: store, broadcast to staff after commit, then check alert rules.

    record(EventKind.LOGIN, Severity.INFO, actor=user, ip=client_ip(request))
    await arecord(EventKind.ANNOUNCEMENT, Severity.INFO, details={"text": "..."})
    audit("form_deleted", actor=user, form_id=7, title="Sign-up")     # user_activity
    socket_event(scope, EventKind.WS_DENIED, Severity.WARNING, {"close_code": 4403})  # no wait

Staff sockets in the group ``monitoring.events`` get ``monitoring.event.recorded`` frames. They
carry no ``stream``/``seq``: clients keep a stream's seq gap-free and in order (DESIGN section 5)
and drop what is at or below the last one, but event ids are neither (ids of rolled back
transactions are skipped, and events of concurrent transactions commit out of order), so a live
event could have been dropped. The id in the data is a usable ``since`` all the same.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from config.realtime.broadcast import broadcast_on_commit
from config.realtime.orm import database_sync_to_async
from monitoring.alerts import Rule, parse_rules
from monitoring.models import EventKind, Severity, SystemEvent

log = logging.getLogger(__name__)

STAFF_GROUP = "monitoring.events"
EVENT_RECORDED = "monitoring.event.recorded"
PRUNE_BATCH = 5000

# Fire-and-forget recordings from consumers, kept referenced until done (asyncio keeps only
# weak references to tasks) and capped: a flood of refused handshakes must not queue unbounded
# database work on the worker it floods.
_pending: set[asyncio.Task[Any]] = set()
# dedupe key -> monotonic time of the last recording on this worker.
_recent: dict[str, float] = {}


# --- addresses ---------------------------------------------------------------------------------
def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _forwarded_for(header: str | None) -> str | None:
    # Our own proxy appends the address it saw, so the last entry is the one to trust; earlier
    # entries are whatever the client sent.
    if not header:
        return None
    return _valid_ip(header.split(",")[-1])


def client_ip(request: HttpRequest | None) -> str | None:
    """REMOTE_ADDR, or X-Forwarded-For when MONITORING_TRUST_X_FORWARDED_FOR says a proxy sets
    it."""
    if request is None:
        return None
    if settings.MONITORING_TRUST_X_FORWARDED_FOR:
        forwarded = _forwarded_for(request.META.get("HTTP_X_FORWARDED_FOR"))
        if forwarded:
            return forwarded
    return _valid_ip(request.META.get("REMOTE_ADDR"))


def scope_ip(scope: dict[str, Any]) -> str | None:
    """The same rule for an ASGI scope (a WebSocket handshake)."""
    if settings.MONITORING_TRUST_X_FORWARDED_FOR:
        for name, value in scope.get("headers", []):
            if name == b"x-forwarded-for":
                forwarded = _forwarded_for(value.decode("latin-1"))
                if forwarded:
                    return forwarded
    client = scope.get("client")
    return _valid_ip(client[0]) if client else None


# --- recording ---------------------------------------------------------------------------------
def event_payload(event: SystemEvent) -> dict[str, Any]:
    """One shape for the REST list and the live stream."""
    actor = event.actor
    return {
        "id": event.pk,
        "kind": event.kind,
        "severity": event.severity,
        "actor": {"id": actor.pk, "username": actor.get_username()} if actor else None,
        "ip": event.ip,
        "details": event.details,
        "created_at": event.created_at.isoformat(),
    }


def record(
    kind: str,
    severity: str = Severity.INFO,
    *,
    actor: Any = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> SystemEvent:
    """Store an event; after commit, send it to staff and check the alert rules on its kind."""
    if actor is not None and not actor.is_authenticated:
        actor = None
    with transaction.atomic():
        event = SystemEvent.objects.create(
            kind=kind, severity=severity, actor=actor, ip=_valid_ip(ip), details=details or {}
        )
        broadcast_on_commit(STAFF_GROUP, EVENT_RECORDED, event_payload(event))
        if rules_for(kind):
            # robust: a failing rule check is logged and never fails the caller's request.
            transaction.on_commit(partial(check_alerts, event), robust=True)
    return event


arecord = database_sync_to_async(record)


def audit(action: str, *, actor: Any, **details: Any) -> SystemEvent:
    """An audit line for what a user did that matters later (a deletion, access granted or
    taken away), in the caller's transaction: ``audit("document_deleted", actor=user, id=7)``."""
    return record(EventKind.USER_ACTIVITY, actor=actor, details={"action": action, **details})


def socket_event(
    scope: dict[str, Any],
    kind: str,
    severity: str,
    details: dict[str, Any],
    *,
    dedupe: str | None = None,
) -> None:
    """From a consumer: record in the background, never delaying or failing the socket.

    Events with the same ``dedupe`` key are recorded once per MONITORING_EVENT_DEDUPE_SECONDS
    on each worker (a client hammering a rate limit is one line a minute, not one per frame).
    """
    try:
        if dedupe is not None and _recently_recorded(dedupe):
            return
        if len(_pending) >= settings.MONITORING_MAX_PENDING_EVENTS:
            log.warning("dropping a %s event: too many recordings in flight", kind)
            return
        user = scope.get("user")
        actor = user if user is not None and user.is_authenticated else None
        task = asyncio.get_running_loop().create_task(
            arecord(kind, severity, actor=actor, ip=scope_ip(scope), details=details)
        )
    except Exception:
        log.warning("recording a %s event failed", kind, exc_info=True)
        return
    _pending.add(task)
    task.add_done_callback(_finished)


def _recently_recorded(key: str) -> bool:
    now = time.monotonic()
    last = _recent.get(key)
    if last is not None and now - last < settings.MONITORING_EVENT_DEDUPE_SECONDS:
        return True
    if len(_recent) >= 10_000:  # a bound on memory; forgetting only means one extra line
        _recent.clear()
    _recent[key] = now
    return False


def _finished(task: asyncio.Task[Any]) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("recording an event failed", exc_info=task.exception())


async def drain() -> None:
    """Wait for background recordings of this worker (tests, shutdown)."""
    while _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)


# --- alert rules -------------------------------------------------------------------------------
def alert_rules() -> tuple[Rule, ...]:
    try:
        return parse_rules(settings.MONITORING_ALERT_RULES)
    except ValueError:
        # Logged loudly, but a bad rule must not turn every login into an error page.
        log.exception("MONITORING_ALERT_RULES is invalid; no security alerts are raised")
        return ()


def rules_for(kind: str) -> list[Rule]:
    return [rule for rule in alert_rules() if rule.kind == kind]


def _key_of(event: SystemEvent, rule: Rule) -> tuple[str, Q] | None:
    """The label of the event's key under the rule, and the filter for its other events."""
    if rule.key == "ip":
        return (f"ip:{event.ip}", Q(ip=event.ip)) if event.ip else None
    username = event.details.get("username") if isinstance(event.details, dict) else None
    if isinstance(username, str) and username:
        # Failed logins name an account that may not exist: counted by the name tried.
        return f"username:{username}", Q(details__username=username)
    if event.actor_id is not None:
        return f"user:{event.actor_id}", Q(actor_id=event.actor_id)
    return None


def check_alerts(event: SystemEvent) -> list[SystemEvent]:
    """Record a security alert for each rule on this kind that is due for the event's key."""
    alerts = []
    for rule in rules_for(event.kind):
        key = _key_of(event, rule)
        if key is not None:
            alert = _check_rule(rule, event, *key)
            if alert is not None:
                alerts.append(alert)
    return alerts


def _check_rule(rule: Rule, event: SystemEvent, label: str, same_key: Q) -> SystemEvent | None:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # One check at a time per rule and key, across workers: two failures committed at
            # once must not both see "no alert yet" and raise two.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{rule.name}|{label}"]
                )
        now = timezone.now()
        start = now - timedelta(seconds=rule.window_seconds)
        recent = SystemEvent.objects.filter(same_key, kind=rule.kind, created_at__gt=start)
        # The newest `threshold` times decide whether the count reached the threshold.
        times = recent.order_by("-created_at").values_list("created_at", flat=True)
        stamps = [t.timestamp() for t in times[: rule.threshold]]
        last = _last_alert(rule, label, start)
        if not rule.fires(stamps, now.timestamp(), last):
            return None
        return record(
            EventKind.SECURITY_ALERT,
            rule.severity,
            actor=event.actor if label.startswith("user:") else None,
            ip=event.ip if rule.key == "ip" else None,
            details={
                "rule": rule.name,
                "kind": rule.kind,
                "key": label,
                "count": recent.count(),
                "threshold": rule.threshold,
                "window_seconds": rule.window_seconds,
                "event_id": event.pk,
            },
        )


def _last_alert(rule: Rule, label: str, start: datetime) -> float | None:
    fired = (
        SystemEvent.objects.filter(
            kind=EventKind.SECURITY_ALERT,
            created_at__gt=start,
            details__rule=rule.name,
            details__key=label,
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return fired.timestamp() if fired else None


# --- retention ---------------------------------------------------------------------------------
def events_prune(*, older_than_days: int, now: datetime | None = None) -> int:
    """Delete events older than the retention, in batches (short locks on a big table)."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    deleted = 0
    while True:
        batch = list(
            SystemEvent.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                :PRUNE_BATCH
            ]
        )
        if not batch:
            return deleted
        deleted += SystemEvent.objects.filter(pk__in=batch).delete()[0]
