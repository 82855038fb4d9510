"""Presence across two real Daphne workers (DESIGN section 7, issue 3's acceptance).

A user's status is the aggregate of their connections on every worker; observers on any worker
hear each transition once; a worker killed with kill -9 leaves entries that lapse.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator

import pytest

from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.client import RealtimeClient, fetch_ticket, http_request
from tests.system.conftest import Account, worker_env

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

PRESENCE = "/ws/presence/"
CHANGED = "presence.user.changed"
# Defaults of PRESENCE_TTL_SECONDS and PRESENCE_REAP_SECONDS, which the workers run with.
TTL, REAP = 30, 5


def unique_room() -> str:
    return f"lobby.p-{uuid.uuid4().hex[:12]}"


async def connect(worker: Worker, account: Account) -> RealtimeClient:
    ticket = await fetch_ticket(worker.http_url(), account.token)
    return await RealtimeClient.connect(worker.ws_url(PRESENCE), ticket=ticket)


async def watch(worker: Worker, observer: Account, watched: Account) -> RealtimeClient:
    client = await connect(worker, observer)
    await client.ack("presence.user.watch", {"ids": [watched.user_id]})
    return client


def statuses(client: RealtimeClient, user_id: int) -> list[str]:
    """The statuses of ``user_id`` this client was told of so far, in order."""
    return [
        f["data"]["status"]
        for f in client.inbox
        if f["type"] == CHANGED and f["data"]["user"]["id"] == user_id
    ]


async def quiet(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def rest_get(worker: Worker, path: str, account: Account) -> dict:
    url = worker.http_url(path)
    status, body, _ = await asyncio.to_thread(http_request, url, token=account.token)
    assert status == 200, (status, body[:300])
    return json.loads(body)


@pytest.fixture
def carol(make_account) -> Account:
    return make_account()


@pytest.fixture
def spare_worker(workers: list[Worker], tmp_path) -> Iterator[Worker]:
    """A third worker of our own, for a test that kills it."""
    with daphne_workers(1, worker_env(), log_dir=tmp_path) as started:
        yield started[0]


async def test_a_tab_on_each_worker_keeps_the_user_online_until_the_second_closes(
    worker_a: Worker, worker_b: Worker, alice: Account, bob: Account
):
    observer = await watch(worker_b, bob, alice)
    tab_a = await connect(worker_a, alice)
    tab_b = await connect(worker_b, alice)
    await observer.next_event(CHANGED)
    await quiet(0.5)

    await tab_b.close()
    await quiet(1.0)
    assert statuses(observer, alice.user_id) == []  # still online on worker A

    await tab_a.close()
    closed_at = time.monotonic()
    offline = await observer.next_event(CHANGED, timeout=2)
    waited = time.monotonic() - closed_at

    assert offline["data"]["status"] == "offline"
    assert waited < 2, f"offline reached the observer {waited:.2f}s after the last tab closed"
    await observer.close()


async def test_kill_9_of_the_only_worker_of_a_user_shows_them_offline_within_ttl(
    worker_a: Worker, spare_worker: Worker, alice: Account, bob: Account
):
    observer = await watch(worker_a, bob, alice)
    tab = await connect(spare_worker, alice)
    assert (await observer.next_event(CHANGED))["data"]["status"] == "online"

    os.kill(spare_worker.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    spare_worker.process.wait(5)
    offline = await observer.next_event(CHANGED, timeout=TTL + 15 + 5)
    waited = time.monotonic() - killed_at

    assert offline["data"]["status"] == "offline"
    assert waited <= TTL + 15, f"offline after {waited:.1f}s; the promise is TTL + heartbeat"
    print(f"kill -9 -> observer told offline after {waited:.1f}s")
    seen = await rest_get(worker_a, f"/api/presence/users/?ids={alice.user_id}", bob)
    assert seen["results"][0]["status"] == "offline"
    await observer.close()
    await tab.ws.close()


async def test_a_room_lists_the_same_members_on_both_workers(
    worker_a: Worker, worker_b: Worker, alice: Account, bob: Account, carol: Account
):
    room = unique_room()
    on_a = await connect(worker_a, alice)
    on_b = await connect(worker_b, bob)
    carol_b = await connect(worker_b, carol)
    await on_a.ack("presence.room.join", {"room": room, "state": "editing"})
    await on_b.ack("presence.room.join", {"room": room})
    last = await carol_b.ack("presence.room.join", {"room": room, "state": "typing"})
    await on_a.next_frame("presence.member.joined")  # bob's arrival
    await on_a.next_frame("presence.member.joined")  # carol's arrival

    def members(listing: list[dict]) -> list[tuple[int, str, str]]:
        return sorted((m["user"]["id"], m["status"], m["state"]) for m in listing)

    expected = [
        (alice.user_id, "online", "editing"),
        (bob.user_id, "online", "viewing"),
        (carol.user_id, "online", "typing"),
    ]
    from_a = (await rest_get(worker_a, f"/api/presence/rooms/{room}/", alice))["members"]
    from_b = (await rest_get(worker_b, f"/api/presence/rooms/{room}/", bob))["members"]
    assert members(last["members"]) == members(from_a) == members(from_b) == expected
    for client in (on_a, on_b, carol_b):
        await client.close()


async def test_a_client_cannot_set_presence_for_another_user(
    worker_a: Worker, worker_b: Worker, alice: Account, bob: Account, carol: Account
):
    victim = await connect(worker_a, alice)
    observer = await watch(worker_a, carol, alice)
    mallory = await connect(worker_b, bob)

    for data in (
        {"status": "invisible", "user": alice.user_id},
        {"status": "invisible", "user_id": alice.user_id, "id": alice.user_id},
    ):
        reply = await mallory.ack("presence.status.set", data)
        assert reply == {"status": "invisible"}
    await quiet(1.0)

    assert statuses(observer, alice.user_id) == []
    seen = await rest_get(
        worker_b, f"/api/presence/users/?ids={alice.user_id},{bob.user_id}", carol
    )
    assert [(r["user"]["id"], r["status"]) for r in seen["results"]] == [
        (alice.user_id, "online"),
        (bob.user_id, "offline"),  # mallory made only herself invisible
    ]
    for client in (victim, observer, mallory):
        await client.close()


async def test_one_transition_made_on_two_workers_at_once_is_broadcast_once(
    worker_a: Worker, worker_b: Worker, alice: Account, bob: Account
):
    room = unique_room()
    observer = await watch(worker_a, bob, alice)
    await observer.ack("presence.room.join", {"room": room})
    tab_a = await connect(worker_a, alice)
    tab_b = await connect(worker_b, alice)
    for tab in (tab_a, tab_b):
        await tab.ack("presence.room.join", {"room": room})
    await quiet(0.5)
    observer.inbox.clear()

    await asyncio.gather(
        tab_a.ack("presence.status.set", {"status": "busy"}),
        tab_b.ack("presence.status.set", {"status": "busy"}),
    )
    for _ in range(3):  # heartbeats from both workers change nothing
        await asyncio.gather(
            tab_a.ack("session.heartbeat", {"active": True}),
            tab_b.ack("session.heartbeat", {"active": False}),
        )
    await quiet(1.0)

    assert statuses(observer, alice.user_id) == ["busy"]
    for client in (observer, tab_a, tab_b):
        await client.close()
