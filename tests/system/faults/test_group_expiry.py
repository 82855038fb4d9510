"""F10 of RELIABILITY.md at reduced scale: a socket held open well past the core Redis layer's
``group_expiry`` still hears its group.

``RedisChannelLayer`` stamps each group member with the time of its ``group_add`` and drops
members older than ``group_expiry`` on every ``group_send``; a socket that lives longer than
that only keeps hearing its rooms because its worker renews its memberships
(``config/realtime/control.py``, at a third of the expiry). The plan's 60 s expiry and 180 s hold
are scaled down to 5 s and 16 s (three expiries and more): the renewal interval follows the
expiry, so the scaled run walks the same path as the full one.

Two workers on the core layer: the holder joins a presence room on A and then stays silent; near
the end a second user joins the same room on B and sends a signal. Both group messages (the
join and the signal) must reach the holder.

Writing it found that on the core layer a worker's sockets heard nothing at all once its control
listener was waiting (its channel had a Redis key of its own, and the layer serves one key at a
time), and that /readyz timed out the same way whenever a socket was open; the second test here
keeps the latter fixed (config.realtime.control.worker_channel).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.client import RealtimeClient, fetch_ticket, http_request
from tests.system.conftest import Account, worker_env

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
]

GROUP_EXPIRY = 5
HOLD_SECONDS = 16.0
PRESENCE = "/ws/presence/"


@pytest.fixture(scope="module")
def core_workers(django_db_setup: None, tmp_path_factory) -> Iterator[list[Worker]]:
    # DAPHNE_ARGS run the workers with --websocket_timeout 86400, which for a 16 s hold is the
    # plan's -1 (no limit on a socket's lifetime).
    env = worker_env() | {
        "REALTIME_CHANNEL_LAYER": "core",
        "REALTIME_GROUP_EXPIRY": str(GROUP_EXPIRY),
    }
    with daphne_workers(2, env, log_dir=tmp_path_factory.mktemp("f10-daphne")) as workers:
        yield workers


async def join(worker: Worker, account: Account, room: str) -> RealtimeClient:
    ticket = await fetch_ticket(worker.http_url(), account.token)
    client = await RealtimeClient.connect(worker.ws_url(PRESENCE), ticket=ticket)
    await client.ack("presence.room.join", {"room": room})
    return client


def joined_users(client: RealtimeClient) -> set[int]:
    return {
        frame["data"]["member"]["user"]["id"]
        for frame in client.inbox
        if frame["type"] == "presence.member.joined"
    }


async def test_a_socket_older_than_group_expiry_still_hears_its_room(core_workers, alice, bob):
    worker_a, worker_b = core_workers
    room = f"lobby.f10-{uuid.uuid4().hex[:12]}"
    holder = await join(worker_a, alice, room)
    try:
        await asyncio.sleep(HOLD_SECONDS)  # silent: no frame of its own refreshes anything
        latecomer = await join(worker_b, bob, room)
        try:
            await holder.wait_until(lambda: bob.user_id in joined_users(holder), timeout=5)
            await latecomer.ack("presence.signal.send", {"room": room, "data": {"n": 1}})
            signal = await holder.next_event("presence.signal.received", timeout=5)
            assert signal["data"]["data"] == {"n": 1}
        finally:
            await latecomer.close()
        assert holder.close_code is None, "the held socket was closed"
    finally:
        await holder.close()
    assert all(worker.alive() for worker in core_workers)


async def test_readyz_passes_on_the_core_layer_while_a_socket_is_open(core_workers, alice):
    holder = await join(core_workers[0], alice, f"lobby.f10-{uuid.uuid4().hex[:12]}")
    try:
        await asyncio.sleep(0.5)  # the control listener is waiting on the layer by now
        url = core_workers[0].http_url("/readyz")
        for _ in range(2):
            status, body, _ = await asyncio.to_thread(http_request, url)
            assert status == 200, body[:300]
    finally:
        await holder.close()
