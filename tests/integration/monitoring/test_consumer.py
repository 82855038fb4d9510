"""``/ws/monitoring/events/`` through the real ASGI app, Redis layer and PostgreSQL."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from monitoring.events import record
from tests.factories import UserFactory
from tests.integration.ws import (
    close_code,
    communicator,
    next_of,
    none_of,
    receive,
    request,
    ticket_for,
)

pytestmark = pytest.mark.django_db(transaction=True)
PATH = "/ws/monitoring/events/"


@pytest.fixture
def staff(transactional_db):
    return UserFactory(is_staff=True)


@pytest.fixture
async def joined(communicators):
    async def join_(user, query: str = ""):
        comm = communicator(f"{PATH}?ticket={ticket_for(user)}{query}", ticket=None)
        communicators.append(comm)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        assert (await receive(comm))["type"] == "session.welcome"
        return comm

    return join_


async def test_staff_get_new_events_live(staff, joined):
    comm = await joined(staff)
    ready = await next_of(comm, "monitoring.events.ready")

    await sync_to_async(record)("login_failed", "warning", ip="10.0.0.1", details={"user": "x"})
    event = await next_of(comm, "monitoring.event.recorded")

    assert ready["data"]["kinds"] == []
    assert "stream" not in event and "seq" not in event  # ids are not in commit order
    assert (event["data"]["kind"], event["data"]["ip"]) == ("login_failed", "10.0.0.1")


async def test_others_are_refused_with_4403(ws_user):
    comm = communicator(PATH, ticket=ticket_for(ws_user))
    await comm.connect(timeout=5)
    assert await close_code(comm) == 4403
    await comm.disconnect()


async def test_since_replays_what_was_missed_once_and_filters_apply(staff, joined):
    first = await sync_to_async(record)("login", "info")
    await sync_to_async(record)("security_alert", "critical", details={"rule": "r"})
    await sync_to_async(record)("logout", "info")

    comm = await joined(staff, f"&since={first.pk}&kind=security_alert,logout")
    replayed = [await receive(comm) for _ in range(3)]
    answer = await request(comm, "monitoring.events.filter", {"kinds": ["login"]})
    await sync_to_async(record)("logout", "info")
    await sync_to_async(record)("login", "info")
    live = await next_of(comm, "monitoring.event.recorded")

    assert [f["type"] for f in replayed] == [
        "monitoring.event.recorded",
        "monitoring.event.recorded",
        "monitoring.events.ready",
    ]
    assert [f["data"]["kind"] for f in replayed[:2]] == ["security_alert", "logout"]
    assert answer["data"] == {"kinds": ["login"], "severities": []}
    assert live["data"]["kind"] == "login"
    assert await none_of(comm, "monitoring.event.recorded", within=0.3)
    bad = await request(comm, "monitoring.events.filter", {"kinds": ["nope"]}, id="b")
    assert bad["error"]["code"] == "invalid"
