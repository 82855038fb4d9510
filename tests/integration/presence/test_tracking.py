"""Presence over /ws/presence/: status, activity, rooms and watching, through real Redis.

Observers watch users (``presence.user.watch``) or share rooms with them, and every test
asserts what they are told: one event per transition, never a repeat.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from presence.services import presence_publish
from presence.state import ConnectionState
from presence.store import get_presence_store
from tests.integration.ws import communicator, drain, next_of, request

pytestmark = pytest.mark.django_db(transaction=True)

CHANGED = "presence.user.changed"


async def ack(comm, type_: str, data: dict) -> dict:
    reply = await request(comm, type_, data, id="t")
    assert reply["type"] == "ack", reply
    return reply["data"]


async def watcher(open_ws, user, *watched) -> object:
    comm, _ = await open_ws(user)
    await ack(comm, "presence.user.watch", {"ids": [u.pk for u in watched]})
    await drain(comm, quiet=0.1)
    return comm


def changed_events(frames: list[dict]) -> list[dict]:
    return [f for f in frames if f["type"] == CHANGED]


async def test_a_watched_user_is_seen_coming_online_and_going_offline(
    ws_user, ws_other_user, open_ws
):
    observer = await watcher(open_ws, ws_other_user, ws_user)

    tab, _ = await open_ws(ws_user)
    online = await next_of(observer, CHANGED)
    await tab.disconnect()
    offline = await next_of(observer, CHANGED)

    assert online["data"] == {
        "user": {"id": ws_user.pk, "username": ws_user.username},
        "status": "online",
        "activity": None,
        "location": None,
    }
    assert online["stream"] == f"presence.user.{ws_user.pk}"
    assert offline["data"]["status"] == "offline"
    assert offline["seq"] > online["seq"]


async def test_watching_answers_with_the_current_presence(ws_user, ws_other_user, open_ws):
    await open_ws(ws_user)
    observer, _ = await open_ws(ws_other_user)

    data = await ack(observer, "presence.user.watch", {"ids": [ws_user.pk, 999999]})

    assert [(u["user"]["id"], u["status"]) for u in data["users"]] == [
        (ws_user.pk, "online"),
        (999999, "offline"),
    ]


async def test_a_second_tab_keeps_the_user_online_until_both_close(ws_user, ws_other_user, open_ws):
    observer = await watcher(open_ws, ws_other_user, ws_user)
    first, _ = await open_ws(ws_user)
    second, _ = await open_ws(ws_user)
    assert [e["data"]["status"] for e in changed_events(await drain(observer))] == ["online"]

    await first.disconnect()
    assert changed_events(await drain(observer)) == []  # still online on the second tab

    await second.disconnect()
    assert (await next_of(observer, CHANGED))["data"]["status"] == "offline"


async def test_heartbeats_and_repeated_settings_broadcast_nothing(ws_user, ws_other_user, open_ws):
    observer = await watcher(open_ws, ws_other_user, ws_user)
    tab, _ = await open_ws(ws_user)
    await ack(tab, "presence.status.set", {"status": "busy"})
    assert [e["data"]["status"] for e in changed_events(await drain(observer))] == [
        "online",
        "busy",
    ]

    for active in (True, False, True):
        await ack(tab, "session.heartbeat", {"active": active})
    await ack(tab, "presence.status.set", {"status": "busy"})

    assert changed_events(await drain(observer)) == []


async def test_busy_and_back_are_one_event_each(ws_user, ws_other_user, open_ws):
    tab, _ = await open_ws(ws_user)
    observer = await watcher(open_ws, ws_other_user, ws_user)

    assert await ack(tab, "presence.status.set", {"status": "busy"}) == {"status": "busy"}
    busy = changed_events(await drain(observer))
    await ack(tab, "presence.status.set", {"status": "online"})
    back = changed_events(await drain(observer))

    assert [e["data"]["status"] for e in busy + back] == ["busy", "online"]


async def test_invisible_looks_exactly_like_offline(ws_user, ws_other_user, open_ws):
    tab, _ = await open_ws(ws_user)
    await ack(tab, "presence.activity.set", {"activity": "reading", "location": "/docs/1"})
    await ack(tab, "presence.room.join", {"room": "lobby.hide"})
    observer, _ = await open_ws(ws_other_user)
    await ack(observer, "presence.room.join", {"room": "lobby.hide"})
    await drain(observer)

    await ack(tab, "presence.status.set", {"status": "invisible"})
    frames = await drain(observer)

    assert {f["type"] for f in frames} == {CHANGED, "presence.member.left"}
    assert changed_events(frames)[0]["data"] == {
        "user": {"id": ws_user.pk, "username": ws_user.username},
        "status": "offline",
        "activity": None,
        "location": None,
    }
    members = await ack(observer, "presence.room.join", {"room": "lobby.hide"})
    assert [m["user"]["id"] for m in members["members"]] == [ws_other_user.pk]


async def test_activity_and_location_reach_observers(ws_user, ws_other_user, open_ws):
    tab, _ = await open_ws(ws_user)
    observer = await watcher(open_ws, ws_other_user, ws_user)

    await ack(tab, "presence.activity.set", {"activity": "editing", "location": "/docs/42"})

    event = await next_of(observer, CHANGED)
    assert (event["data"]["activity"], event["data"]["location"]) == ("editing", "/docs/42")


@pytest.mark.parametrize(
    "data",
    [
        {"status": "asleep"},
        {"status": None},
        {"status": ["busy"]},
    ],
)
async def test_unknown_statuses_are_invalid(ws_user, open_ws, data):
    tab, _ = await open_ws(ws_user)

    reply = await request(tab, "presence.status.set", data)

    assert reply["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("presence.activity.set", {"activity": 5}),
        ("presence.activity.set", {"location": "x" * 201}),
        ("presence.user.watch", {"ids": []}),
        ("presence.user.watch", {"ids": [0]}),
        ("presence.user.watch", {"ids": [True]}),
        ("presence.user.watch", {"ids": "1,2"}),
        ("presence.room.join", {"room": "lobby.a", "state": "Editing!"}),
        ("presence.room.update", {"room": "lobby.never", "state": "editing"}),
        ("session.heartbeat", {"active": "yes"}),
    ],
)
async def test_bad_presence_commands_are_invalid(ws_user, open_ws, type_, data):
    tab, _ = await open_ws(ws_user)

    reply = await request(tab, type_, data)

    assert reply["error"]["code"] == "invalid"


async def test_nobody_can_set_presence_for_someone_else(ws_user, ws_other_user, open_ws):
    observer = await watcher(open_ws, ws_user, ws_other_user)
    mallory, _ = await open_ws(ws_other_user)
    await drain(observer)
    victim, _ = await open_ws(ws_user)

    # A user id in the message is ignored: commands act for the connection's own user.
    await ack(mallory, "presence.status.set", {"status": "busy", "user": ws_user.pk})

    event = await next_of(observer, CHANGED)
    assert (event["data"]["user"]["id"], event["data"]["status"]) == (ws_other_user.pk, "busy")
    views = await get_presence_store().views([ws_user.pk])
    assert views[ws_user.pk].status == "online"
    await victim.disconnect()


async def test_room_members_see_arrivals_state_changes_and_departures(
    ws_user, ws_other_user, open_ws
):
    alice, _ = await open_ws(ws_user)
    await ack(alice, "presence.room.join", {"room": "lobby.team"})
    await drain(alice)
    bob, _ = await open_ws(ws_other_user)

    joined = await ack(bob, "presence.room.join", {"room": "lobby.team", "state": "editing"})
    arrival = await next_of(alice, "presence.member.joined")
    await ack(bob, "presence.room.update", {"room": "lobby.team", "state": "typing"})
    update = await next_of(alice, "presence.member.updated")
    await ack(bob, "presence.room.leave", {"room": "lobby.team"})
    departure = await next_of(alice, "presence.member.left")

    assert [(m["user"]["id"], m["state"]) for m in joined["members"]] == [
        (ws_user.pk, "viewing"),
        (ws_other_user.pk, "editing"),
    ]
    assert arrival["data"]["member"]["user"]["id"] == ws_other_user.pk
    assert arrival["data"]["member"]["state"] == "editing"
    assert update["data"]["member"]["state"] == "typing"
    assert departure["data"] == {
        "room": "lobby.team",
        "user": {"id": ws_other_user.pk, "username": ws_other_user.username},
        "version": departure["data"]["version"],
    }
    assert departure["data"]["version"] > update["data"]["version"]


async def test_events_carry_no_connection_ids_or_addresses(ws_user, ws_other_user, open_ws):
    alice, _ = await open_ws(ws_user)
    await ack(alice, "presence.room.join", {"room": "lobby.private"})
    await drain(alice)
    bob, welcome = await open_ws(ws_other_user)
    await ack(bob, "presence.room.join", {"room": "lobby.private"})
    await bob.disconnect()

    text = repr(await drain(alice))

    assert welcome["data"]["connection_id"] not in text
    assert "127.0.0.1" not in text
    assert "connection" not in text


async def test_a_transition_reaches_a_socket_once_however_many_rooms_it_shares(
    ws_user, ws_other_user, open_ws
):
    observer = await watcher(open_ws, ws_other_user, ws_user)
    tab, _ = await open_ws(ws_user)
    for room in ("lobby.a", "lobby.b", "lobby.c"):
        await ack(observer, "presence.room.join", {"room": room})
        await ack(tab, "presence.room.join", {"room": room})
    await drain(observer)

    await ack(tab, "presence.status.set", {"status": "busy"})

    assert [e["data"]["status"] for e in changed_events(await drain(observer))] == ["busy"]


async def test_a_full_room_answers_room_full(ws_user, ws_other_user, open_ws, settings):
    settings.PRESENCE_ROOM_CAPS = {"lobby": 1}
    alice, _ = await open_ws(ws_user)
    await ack(alice, "presence.room.join", {"room": "lobby.small"})
    second_tab, _ = await open_ws(ws_user)
    bob, _ = await open_ws(ws_other_user)

    refused = await request(bob, "presence.room.join", {"room": "lobby.small"})
    same_user = await request(second_tab, "presence.room.join", {"room": "lobby.small"})
    other_room = await request(bob, "presence.room.join", {"room": "lobby.other"})

    assert refused["error"]["code"] == "room_full"
    assert same_user["type"] == "ack"  # the cap counts users, not tabs
    assert other_room["type"] == "ack"
    await drain(alice)
    await request(bob, "presence.signal.send", {"room": "lobby.small", "data": {}})
    assert all(f["type"] != "presence.signal.received" for f in await drain(alice))


async def test_a_user_idle_past_the_threshold_turns_away_and_input_brings_them_back(
    ws_user, ws_other_user, open_ws, settings
):
    settings.PRESENCE_AWAY_SECONDS = 1
    settings.PRESENCE_REAP_SECONDS = 1
    tab, _ = await open_ws(ws_user)
    observer = await watcher(open_ws, ws_other_user, ws_user)

    away = await next_of(observer, CHANGED)
    await ack(tab, "session.heartbeat", {"active": True})
    back = await next_of(observer, CHANGED)

    assert (away["data"]["status"], back["data"]["status"]) == ("away", "online")


async def test_connections_of_a_dead_worker_lapse_and_observers_are_told(
    ws_user, ws_other_user, open_ws, settings
):
    settings.PRESENCE_REAP_SECONDS = 1
    observer = await watcher(open_ws, ws_other_user, ws_user)
    # A connection saved by a worker that then died: nobody refreshes or drops it.
    ghost = ConnectionState(name=ws_user.username, last_input=time.time())
    await get_presence_store().save_connection(ws_user.pk, "ghost", ghost, expires=time.time() + 1)
    await presence_publish(user_id=ws_user.pk, cause="test")
    assert (await next_of(observer, CHANGED))["data"]["status"] == "online"

    started = time.monotonic()
    offline = await next_of(observer, CHANGED)

    assert offline["data"]["status"] == "offline"
    assert time.monotonic() - started < 4  # lapse (1 s) + one reap tick, with slack


async def test_closing_a_socket_leaves_nothing_in_the_store(ws_user, open_ws):
    tab, _ = await open_ws(ws_user)
    await ack(tab, "presence.room.join", {"room": "lobby.clean"})

    await tab.disconnect()
    await asyncio.sleep(0.1)

    store = get_presence_store()
    assert (await store.user(ws_user.pk))[0] == {}
    assert await store.room_user_ids("lobby.clean", now=time.time()) == set()
    assert ws_user.pk not in await store.online_user_ids(now=time.time())


async def test_the_welcome_comes_before_any_presence_event(ws_user, open_ws):
    # open_ws asserts the first frame is the welcome; presence events must not overtake it.
    tab, welcome = await open_ws(ws_user)

    assert welcome["data"]["user"]["id"] == ws_user.pk
    await receive_nothing_but_presence(tab)


async def receive_nothing_but_presence(comm) -> None:
    frames = await drain(comm, quiet=0.2)
    assert all(f["type"].startswith("presence.") for f in frames)


async def test_an_unauthenticated_socket_never_counts_as_present(ws_user, open_ws):
    comm = communicator("/ws/presence/")
    await comm.connect(timeout=5)
    await comm.wait(timeout=5)

    assert await get_presence_store().online_user_ids(now=time.time()) == set()


def gauge(name: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name) or 0.0


async def test_worker_gauges_count_connections_and_distinct_users(ws_user, ws_other_user, open_ws):
    before = (gauge("collab_presence_connections"), gauge("collab_presence_users"))
    first, _ = await open_ws(ws_user)
    await open_ws(ws_user)
    await open_ws(ws_other_user)

    during = (gauge("collab_presence_connections"), gauge("collab_presence_users"))
    await first.disconnect()
    after_one_closed = (gauge("collab_presence_connections"), gauge("collab_presence_users"))

    assert during == (before[0] + 3, before[1] + 2)
    assert after_one_closed == (before[0] + 2, before[1] + 2)


async def test_status_changes_are_rate_limited_per_user(ws_user, open_ws, settings):
    settings.REALTIME_RATES = {**settings.REALTIME_RATES, "presence.status.set": "2/min"}
    tab, _ = await open_ws(ws_user)
    other_tab, _ = await open_ws(ws_user)

    replies = [
        await request(comm, "presence.status.set", {"status": status})
        for comm, status in ((tab, "busy"), (other_tab, "online"), (tab, "busy"))
    ]

    assert [r["type"] for r in replies] == ["ack", "ack", "error"]
    assert replies[2]["error"]["code"] == "rate_limited"


async def test_a_consumer_killed_before_its_disconnect_still_leaves(
    ws_user, ws_other_user, open_ws
):
    """Daphne cancels a consumer whose disconnect waited too long (--application-close-timeout):
    its connection must not stay present, counted and in its rooms for good (found by the
    churn load test)."""
    alice, _ = await open_ws(ws_user)
    await ack(alice, "presence.room.join", {"room": "lobby.killed"})
    await drain(alice)
    bob, _ = await open_ws(ws_other_user)
    await ack(bob, "presence.room.join", {"room": "lobby.killed"})
    await next_of(alice, "presence.member.joined")

    bob.future.cancel()  # killed, as Daphne does: no websocket.disconnect handled
    departure = await next_of(alice, "presence.member.left")

    assert departure["data"]["user"]["id"] == ws_other_user.pk
    views = await get_presence_store().views([ws_other_user.pk])
    assert views[ws_other_user.pk].status == "offline"
