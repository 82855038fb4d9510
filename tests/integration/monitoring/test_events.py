"""Recording system events (monitoring/events.py): storage, the staff broadcast, alert rules,
auth signals, addresses, socket refusals and rate-limit hits, pruning."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.test import RequestFactory
from django.utils import timezone

from monitoring import events
from monitoring.events import STAFF_GROUP, arecord, client_ip, record, scope_ip
from monitoring.models import EventKind, Severity, SystemEvent
from tests.factories import UserFactory
from tests.integration.ws import close_code, communicator, request


def login_fails(client, username: str, ip: str = "203.0.113.7", *, status: int = 200) -> None:
    response = client.post(
        "/admin/login/", {"username": username, "password": "wrong"}, REMOTE_ADDR=ip
    )
    # 200: the form again, with its error; 429: the lockout (LOGIN_FAILURE_LIMIT, django-axes)
    assert response.status_code == status


def alerts() -> list[SystemEvent]:
    return list(SystemEvent.objects.filter(kind=EventKind.SECURITY_ALERT).order_by("id"))


# --- auth signals and alert rules ----------------------------------------------------------------
def test_logins_logouts_and_failed_logins_are_recorded(client, transactional_db):
    user = UserFactory(username="olive", is_staff=True)  # the admin logs staff out
    login_fails(client, "olive")
    client.force_login(user)  # force_login sends user_logged_in too
    client.post("/admin/logout/", REMOTE_ADDR="203.0.113.8")

    rows = list(SystemEvent.objects.order_by("id").values_list("kind", "actor_id", "ip", "details"))
    assert rows[0] == ("login_failed", None, "203.0.113.7", {"username": "olive"})
    assert rows[1][:2] == ("login", user.pk)
    assert rows[2] == ("logout", user.pk, "203.0.113.8", {})


def test_five_failed_logins_for_one_user_raise_one_alert(client, transactional_db):
    UserFactory(username="olive")
    for _ in range(4):
        login_fails(client, "olive")
    assert alerts() == []

    login_fails(client, "olive")
    login_fails(client, "olive")  # the sixth is in the same window: no second alert

    (alert,) = alerts()
    assert alert.severity == Severity.CRITICAL
    assert alert.details["rule"] == "failed_logins_per_user"
    assert (alert.details["key"], alert.details["count"]) == ("username:olive", 5)
    assert SystemEvent.objects.filter(kind=EventKind.LOGIN_FAILED).count() == 6
    assert "wrong" not in json.dumps([e.details for e in SystemEvent.objects.all()])


def test_failed_logins_from_one_address_over_many_names_raise_an_ip_alert(client, transactional_db):
    for n in range(9):
        login_fails(client, f"guess{n}", ip="198.51.100.9")
    login_fails(client, "guess9", ip="198.51.100.9", status=429)  # the address is locked out too

    (alert,) = alerts()
    assert (alert.details["rule"], alert.details["key"]) == (
        "failed_logins_per_ip",
        "ip:198.51.100.9",
    )
    assert alert.ip == "198.51.100.9"


def test_the_rule_fires_again_one_window_later(client, transactional_db, settings):
    settings.AXES_FAILURE_LIMIT = 100  # the alert's window is tested here, not the lockout
    for _ in range(5):
        login_fails(client, "olive")
    SystemEvent.objects.update(created_at=timezone.now() - timedelta(seconds=301))
    for _ in range(4):
        login_fails(client, "olive")
    assert len(alerts()) == 1  # the old failures are out of the window

    login_fails(client, "olive")

    assert [a.details["count"] for a in alerts()] == [5, 5]


def test_a_bad_rule_is_logged_and_never_fails_the_login_request(
    client, transactional_db, settings, caplog
):
    settings.MONITORING_ALERT_RULES = [{"name": "bad", "kind": "login_failed", "key": "host"}]
    login_fails(client, "olive")
    assert SystemEvent.objects.filter(kind=EventKind.LOGIN_FAILED).count() == 1
    assert "MONITORING_ALERT_RULES is invalid" in caplog.text


# --- recording, broadcast ------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_an_event_reaches_the_staff_group_after_commit_with_its_id_as_seq():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(STAFF_GROUP, channel)
    try:
        event = await arecord(
            EventKind.ANNOUNCEMENT, Severity.INFO, ip="2001:db8::1", details={"text": "hi"}
        )
        frame = json.loads((await layer.receive(channel))["frame"])
    finally:
        await layer.group_discard(STAFF_GROUP, channel)

    assert frame["type"] == "monitoring.event.recorded"
    assert "stream" not in frame and "seq" not in frame  # ids are not in commit order
    assert frame["data"] == events.event_payload(event)
    assert frame["data"]["ip"] == "2001:db8::1"


def test_record_drops_an_anonymous_actor_and_a_malformed_address(db):
    event = record(EventKind.LOGOUT, actor=AnonymousUser(), ip="not an address")
    assert (event.actor_id, event.ip, event.severity) == (None, None, "info")


def test_addresses_come_from_remote_addr_unless_the_proxy_is_trusted(settings):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.4"
    )
    scope = {"client": ["10.0.0.2", 5000], "headers": [(b"x-forwarded-for", b"6.6.6.6, 192.0.2.4")]}
    assert (client_ip(request), scope_ip(scope)) == ("10.0.0.2", "10.0.0.2")

    settings.MONITORING_TRUST_X_FORWARDED_FOR = True
    # The last entry is what our proxy saw; the first is whatever the client claimed.
    assert (client_ip(request), scope_ip(scope)) == ("192.0.2.4", "192.0.2.4")
    assert client_ip(None) is None and scope_ip({}) is None


# --- the realtime layer --------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_a_refused_handshake_is_recorded_without_delaying_the_close(socket_events):
    comm = communicator("/ws/presence/", ticket="forged")
    connected, _ = await comm.connect(timeout=5)
    assert connected
    assert await close_code(comm) == 4401
    await events.drain()

    event = await SystemEvent.objects.aget(kind=EventKind.WS_DENIED)
    assert event.details == {"app": "presence", "close_code": 4401, "path": "/ws/presence/"}
    assert (event.actor_id, event.severity) == (None, "warning")


@pytest.mark.django_db(transaction=True)
async def test_a_burst_of_refused_handshakes_raises_an_alert(settings, socket_events):
    settings.MONITORING_ALERT_RULES = [
        {"name": "burst", "kind": "ws_denied", "key": "ip", "threshold": 3, "window_seconds": 60}
    ]
    for _ in range(4):
        comm = communicator("/ws/presence/", ticket="forged")
        comm.scope["client"] = ["192.0.2.50", 4000]
        await comm.connect(timeout=5)
        assert await close_code(comm) == 4401
        await events.drain()

    alerts_ = [e async for e in SystemEvent.objects.filter(kind=EventKind.SECURITY_ALERT)]
    assert [(a.details["rule"], a.details["key"]) for a in alerts_] == [("burst", "ip:192.0.2.50")]


async def test_rate_limit_hits_are_recorded_once_a_minute_per_user_and_type(
    settings, open_ws, ws_user, socket_events
):
    settings.REALTIME_CONNECTION_RATES = {"session.heartbeat": "1/min"}
    events._recent.clear()
    comm, _ = await open_ws(ws_user)
    replies = [await request(comm, "session.heartbeat", id=f"h{n}") for n in range(4)]
    await events.drain()

    assert [reply["type"] for reply in replies] == ["ack", "error", "error", "error"]
    rows = [e async for e in SystemEvent.objects.filter(kind=EventKind.RATE_LIMITED)]
    assert len(rows) == 1
    assert (rows[0].actor_id, rows[0].details["action"]) == (ws_user.pk, "session.heartbeat")


# --- retention -----------------------------------------------------------------------------------
def test_prune_deletes_events_older_than_the_retention(db, settings):
    settings.MONITORING_EVENT_RETENTION_DAYS = 30
    old, recent = record(EventKind.LOGIN), record(EventKind.LOGOUT)
    SystemEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    SystemEvent.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(days=29))

    out = io.StringIO()
    call_command("prune_events", stdout=out)

    assert list(SystemEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert "Deleted 1 events older than 30 days." in out.getvalue()
    call_command("prune_events", "--days", "0", stdout=out)
    assert not SystemEvent.objects.exists()


async def test_permission_denials_on_a_socket_are_recorded_once_a_minute_per_user_and_type(
    open_ws, ws_user, socket_events
):
    events._recent.clear()
    comm, _ = await open_ws(ws_user)
    # A document room of a document that does not exist, or is not the user's: not_found.
    replies = [
        await request(comm, "presence.room.join", {"room": "document.999999"}, id=f"j{n}")
        for n in range(3)
    ]
    await events.drain()

    assert [reply["error"]["code"] for reply in replies] == ["not_found"] * 3
    rows = [e async for e in SystemEvent.objects.filter(kind=EventKind.PERMISSION_DENIED)]
    assert len(rows) == 1
    assert (rows[0].actor_id, rows[0].severity) == (ws_user.pk, "warning")
    assert rows[0].details == {
        "app": "presence",
        "action": "presence.room.join",
        "code": "not_found",
    }
