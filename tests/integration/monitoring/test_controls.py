"""Staff controls through the real ASGI app, the Redis channel layer and PostgreSQL: apps
switched off and on, announcements, disconnecting a user, live connection counts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from config.errors import AppError, ErrorCode
from config.realtime.connections import connections_for_loop
from config.realtime.control import worker_control
from monitoring import controls
from monitoring.models import Announcement, AppSwitch, SystemEvent
from tests.factories import UserFactory
from tests.integration.ws import TIMEOUT, close_code, communicator, next_of, receive, ticket_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff(transactional_db):
    return UserFactory(is_staff=True, is_superuser=True)


async def listening() -> None:
    """Wait until this loop's worker control hears the control group (after a first socket)."""
    registry = connections_for_loop(45, 5)
    await asyncio.wait_for(worker_control(registry).listening.wait(), TIMEOUT)


async def connect(communicators, user, path="/ws/presence/"):
    comm = communicator(path, ticket=ticket_for(user))
    communicators.append(comm)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    return comm


# --- app switches ------------------------------------------------------------------------------
def test_switching_an_app_is_audited_once_and_a_repeat_changes_nothing(staff):
    controls.app_switch_set(app="forms", enabled=False, reason="migrating", by=staff, ip="10.1.1.1")
    controls.app_switch_set(app="forms", enabled=False, reason="migrating", by=staff)

    switch = AppSwitch.objects.get(app="forms")
    events = list(SystemEvent.objects.filter(kind="staff_action"))
    assert (switch.enabled, switch.reason, switch.changed_by) == (False, "migrating", staff)
    assert len(events) == 1
    assert events[0].details == {"action": "app_disabled", "app": "forms", "reason": "migrating"}
    assert (events[0].severity, events[0].actor, events[0].ip) == ("warning", staff, "10.1.1.1")


@pytest.mark.parametrize(
    ("app", "reason", "code"),
    [("monitoring", "", ErrorCode.NOT_FOUND), ("nope", "", ErrorCode.NOT_FOUND),
     ("collab", "x" * 201, ErrorCode.INVALID)],
)  # fmt: skip
def test_unknown_apps_and_long_reasons_are_refused(staff, app, reason, code):
    with pytest.raises(AppError) as raised:
        controls.app_switch_set(app=app, enabled=False, reason=reason, by=staff)
    assert raised.value.code == code
    assert not SystemEvent.objects.exists()


async def test_an_app_switched_off_closes_its_sockets_and_refuses_new_ones_until_on(
    communicators, ws_user, staff
):
    forms_socket = await connect(communicators, ws_user, "/ws/presence/")
    assert (await receive(forms_socket))["type"] == "session.welcome"
    await listening()

    await sync_to_async(controls.app_switch_set)(app="presence", enabled=False, by=staff)
    closed_live = await close_code(forms_socket)
    refused = await connect(communicators, ws_user, "/ws/presence/")
    refused_code = await close_code(refused)
    other_app = await connect(communicators, ws_user, "/ws/comments/notifications/")
    other_welcome = await receive(other_app)
    await sync_to_async(controls.app_switch_set)(app="presence", enabled=True, by=staff)
    await asyncio.sleep(0.2)  # the reload message reaches this worker's listener
    again = await connect(communicators, ws_user, "/ws/presence/")

    assert (closed_live, refused_code) == (4503, 4503)
    assert other_welcome["type"] == "session.welcome"
    assert (await receive(again))["type"] == "session.welcome"


async def test_a_lost_control_message_still_takes_effect_at_the_next_reload(
    communicators, ws_user, staff, settings
):
    settings.REALTIME_CONTROL_REFRESH_SECONDS = 0
    settings.REALTIME_CONTROL_REPORT_SECONDS = 0.2
    comm = await connect(communicators, ws_user)
    assert (await receive(comm))["type"] == "session.welcome"

    # Written straight to the table: no control message is ever sent.
    await sync_to_async(AppSwitch.objects.update_or_create)(
        app="presence", defaults={"enabled": False}
    )

    assert await close_code(comm) == 4503


async def test_a_change_first_loaded_by_a_handshake_still_reaches_the_open_sockets(
    communicators, ws_user, staff, settings
):
    settings.REALTIME_CONTROL_REFRESH_SECONDS = 0
    settings.REALTIME_CONTROL_REPORT_SECONDS = 60  # the timer stays out of it
    comm = await connect(communicators, ws_user)
    assert (await receive(comm))["type"] == "session.welcome"
    await sync_to_async(AppSwitch.objects.update_or_create)(
        app="presence", defaults={"enabled": False}
    )

    other = await connect(communicators, ws_user, "/ws/comments/notifications/")

    assert (await receive(other))["type"] == "session.welcome"
    assert await close_code(comm) == 4503


# --- announcements -----------------------------------------------------------------------------
def announce(staff, text="Maintenance at 22:00 UTC", seconds=3600, level="warning"):
    expires_at = timezone.now() + timedelta(seconds=seconds)
    return controls.announcement_create(text=text, level=level, expires_at=expires_at, by=staff)


async def test_an_announcement_reaches_connected_sockets_live_and_new_ones_on_connect(
    communicators, ws_user, ws_other_user, staff
):
    live = await connect(communicators, ws_user, "/ws/comments/notifications/")
    await receive(live)
    await listening()

    made = await sync_to_async(announce)(staff)
    heard = await next_of(live, "monitoring.announcement.published")
    later = await connect(communicators, ws_other_user)
    welcome, on_connect = await receive(later), await receive(later)

    assert heard["data"] == {
        "id": made.pk,
        "text": "Maintenance at 22:00 UTC",
        "level": "warning",
        "created_at": made.created_at.isoformat(),
        "expires_at": made.expires_at.isoformat(),
    }
    assert welcome["type"] == "session.welcome"
    assert on_connect == heard
    event = await sync_to_async(SystemEvent.objects.get)(kind="announcement")
    assert (event.severity, event.details["announcement_id"]) == ("warning", made.pk)


async def test_a_withdrawn_or_expired_announcement_is_not_sent_to_new_sockets(
    communicators, ws_user, staff
):
    comm = await connect(communicators, ws_user)
    await receive(comm)
    await listening()
    withdrawn = await sync_to_async(announce)(staff, text="withdrawn")
    await next_of(comm, "monitoring.announcement.published")

    await sync_to_async(controls.announcement_withdraw)(announcement_id=withdrawn.pk, by=staff)
    told = await next_of(comm, "monitoring.announcement.withdrawn")
    await sync_to_async(Announcement.objects.create)(
        text="expired", created_at=timezone.now() - timedelta(hours=2),
        expires_at=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    await asyncio.sleep(0.2)
    fresh = await connect(communicators, ws_user)
    welcome = await receive(fresh)

    assert told["data"] == {"id": withdrawn.pk}
    assert welcome["type"] == "session.welcome"
    assert await fresh.receive_nothing(timeout=0.5)


def test_announcements_refuse_empty_text_and_past_expiry(staff):
    with pytest.raises(AppError) as empty:
        announce(staff, text="   ")
    with pytest.raises(AppError) as past:
        announce(staff, seconds=-5)
    assert (empty.value.code, past.value.code) == (ErrorCode.INVALID, ErrorCode.INVALID)


def test_withdrawing_twice_is_one_audited_change(staff):
    made = announce(staff)
    controls.announcement_withdraw(announcement_id=made.pk, by=staff)
    controls.announcement_withdraw(announcement_id=made.pk, by=staff)

    assert SystemEvent.objects.filter(kind="staff_action").count() == 1
    with pytest.raises(AppError) as missing:
        controls.announcement_withdraw(announcement_id=made.pk + 100, by=staff)
    assert missing.value.code == ErrorCode.NOT_FOUND


# --- users and connections ---------------------------------------------------------------------
async def test_disconnecting_a_user_closes_every_socket_of_theirs_and_no_one_elses(
    communicators, ws_user, ws_other_user, staff
):
    first = await connect(communicators, ws_user)
    second = await connect(communicators, ws_user, "/ws/comments/notifications/")
    bystander = await connect(communicators, ws_other_user)
    for comm in (first, second, bystander):
        await receive(comm)
    await listening()

    await sync_to_async(controls.user_disconnect)(user_id=ws_user.pk, by=staff)

    assert [await close_code(first), await close_code(second)] == [4401, 4401]
    assert await bystander.receive_nothing(timeout=0.5)
    event = await sync_to_async(SystemEvent.objects.get)(kind="staff_action")
    assert event.details == {
        "action": "user_disconnected",
        "user_id": ws_user.pk,
        "username": ws_user.username,
    }


async def test_each_worker_reports_its_sockets_per_app(communicators, ws_user, ws_other_user):
    await connect(communicators, ws_user)
    await connect(communicators, ws_other_user)
    await connect(communicators, ws_user, "/ws/comments/notifications/")
    await asyncio.sleep(0.1)
    registry = connections_for_loop(45, 5)
    await worker_control(registry)._report()  # the periodic write, without waiting for it

    overview = await sync_to_async(controls.connections_overview)()

    assert overview["total"] == 3
    assert overview["apps"] == {"comments": 1, "presence": 2}
    [report] = overview["workers"]
    assert report["apps"] == {"comments": 1, "presence": 2}
    assert report["worker"].endswith(f":{report['pid']}")
