"""The cap on sockets per user (config/realtime/socket_slots.py, RELIABILITY.md S9 e), on the
real Redis: the backend's count, and the handshake of every consumer that it guards."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.routing import URLRouter
from channels.security.websocket import OriginValidator
from django.urls import path

from config.errors import CLOSE_TOO_MANY_SOCKETS
from config.realtime import socket_slots
from config.realtime.auth import RealtimeAuthMiddleware
from config.realtime.consumer import RealtimeConsumer
from config.realtime.socket_slots import MemorySlots, RedisSlots, WorkerSlots, slot_backend
from monitoring import metrics
from tests.integration.ws import ORIGIN, close_code, communicator, receive, ticket_for

pytestmark = pytest.mark.django_db(transaction=True)

TTL = 30.0


@pytest.fixture(params=["redis", "memory"])
def backend(request):
    if request.param == "memory":
        return MemorySlots()
    assert isinstance(slot_backend(), RedisSlots)  # the tests run with REDIS_URL set
    return slot_backend()


async def claim_all(backend, user_id: int, slots: list[str], *, cap: int, now: float) -> list[bool]:
    return [
        await backend.claim(user_id, slot, cap=cap, expires=now + TTL, now=now) for slot in slots
    ]


# --- the count, on both backends ----------------------------------------------------------------
async def test_the_cap_refuses_the_slot_after_the_last_one(backend):
    now = time.time()

    claimed = await claim_all(backend, 7, ["w1/a", "w2/b", "w1/c", "w2/d"], cap=3, now=now)

    assert claimed == [True, True, True, False]
    assert await backend.count(7, now=now) == 3
    assert await claim_all(backend, 8, ["w1/e"], cap=3, now=now) == [True]  # per user


async def test_claiming_a_slot_already_held_is_not_refused_and_counts_once(backend):
    now = time.time()
    await claim_all(backend, 7, ["w1/a", "w1/b"], cap=2, now=now)

    assert await claim_all(backend, 7, ["w1/a"], cap=2, now=now + 1) == [True]
    assert await backend.count(7, now=now + 1) == 2


async def test_a_released_slot_is_free_again(backend):
    now = time.time()
    await claim_all(backend, 7, ["w1/a", "w1/b"], cap=2, now=now)

    await backend.release(7, "w1/a")

    assert await claim_all(backend, 7, ["w1/c", "w1/d"], cap=2, now=now) == [True, False]


async def test_the_slots_of_a_dead_worker_lapse_after_the_ttl(backend):
    # A worker killed with kill -9 never releases nor renews: its slots stop counting by
    # themselves, and only then.
    now = time.time()
    await claim_all(backend, 7, ["dead/a", "dead/b"], cap=2, now=now)

    before = await claim_all(backend, 7, ["live/c"], cap=2, now=now + TTL - 1)
    after = await claim_all(backend, 7, ["live/c", "live/d", "live/e"], cap=2, now=now + TTL + 1)

    assert before == [False]
    assert after == [True, True, False]


async def test_renewal_keeps_the_slots_of_a_live_worker_past_the_ttl(backend):
    now = time.time()
    await claim_all(backend, 7, ["w1/a", "w1/b"], cap=2, now=now)

    lapsed = await backend.renew({"w1/a": 7, "w1/b": 7}, expires=now + 20 + TTL)

    assert lapsed == []
    assert await claim_all(backend, 7, ["w2/c"], cap=2, now=now + TTL + 1) == [False]


async def test_renewal_leaves_out_a_released_slot_and_reports_it(backend):
    now = time.time()
    await claim_all(backend, 7, ["w1/a", "w1/b"], cap=2, now=now)
    await backend.release(7, "w1/b")  # while a renewal that still lists it is on its way

    lapsed = await backend.renew({"w1/a": 7, "w1/b": 7}, expires=now + TTL)

    assert lapsed == ["w1/b"]
    assert await backend.count(7, now=now) == 1


async def test_renewal_in_batches_covers_every_user(monkeypatch):
    monkeypatch.setattr(socket_slots, "RENEW_BATCH", 2)
    backend, now = slot_backend(), time.time()
    held = {f"w1/{user_id}-{n}": user_id for user_id in range(1, 6) for n in range(2)}
    for slot, user_id in held.items():
        assert await backend.claim(user_id, slot, cap=2, expires=now + TTL, now=now)
    await backend.release(5, "w1/5-1")

    lapsed = await backend.renew(held, expires=now + 20 + TTL)

    assert lapsed == ["w1/5-1"]
    later = now + TTL + 1
    assert [await backend.count(user_id, now=later) for user_id in range(1, 6)] == [2, 2, 2, 2, 1]


# --- this worker's slots -------------------------------------------------------------------------
async def test_a_worker_adds_back_the_slots_of_open_sockets_that_lapsed(settings):
    # The loop stalled past the TTL and another worker's claim dropped its slots: sockets that
    # are still open count again at the next renewal, the one closed meanwhile does not.
    settings.REALTIME_SOCKET_SLOT_TTL_SECONDS = TTL
    slots, now = WorkerSlots(), time.time()
    for name in ("w1/a", "w1/b"):
        assert await slots.claim(user_id=7, slot=name, cap=3, now=now)
    assert await slot_backend().claim(7, "w2/c", cap=3, expires=now + 2 * TTL, now=now + TTL + 1)
    slots.held.pop("w1/b")  # closed while the loop was stalled, its release not yet sent

    added_back = await slots.renew(now + TTL + 2)

    assert added_back == ["w1/a"]
    assert await slot_backend().count(7, now=now + TTL + 2) == 2
    await slots.release("w1/a")


async def test_a_release_stops_the_renewal_before_anything_is_awaited(settings):
    # A socket's clean-up may be cancelled at its first await (Daphne's application close
    # timeout): the slot must already be out of this worker's renewals by then.
    slots, now = WorkerSlots(), time.time()
    assert await slots.claim(user_id=7, slot="w1/a", cap=3, now=now)

    removal = slots.release("w1/a")

    assert slots.held == {}
    assert await slots.renew(now + 1) == []
    await removal
    assert await slot_backend().count(7, now=now) == 0
    assert slots.release("w1/a") is None  # given back once


# --- the handshake -------------------------------------------------------------------------------
async def connect(user, path: str = "/ws/presence/"):
    comm = communicator(path, ticket=ticket_for(user))
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def test_the_socket_past_the_cap_is_closed_4409_and_a_closed_one_frees_a_slot(
    ws_user, ws_other_user, communicators, settings
):
    settings.REALTIME_MAX_SOCKETS_PER_USER = 2
    refusals = metrics.WS_CONNECTS.labels(app="comments", outcome="too_many_sockets")
    refused_before = refusals._value.get()
    first, second = await connect(ws_user), await connect(ws_user)
    communicators.extend([first, second])
    assert (await receive(first))["type"] == "session.welcome"
    assert (await receive(second))["type"] == "session.welcome"

    third = await connect(ws_user, "/ws/comments/notifications/")  # all apps count together
    refused_code = await close_code(third)
    other = await connect(ws_other_user)  # the cap is per user
    communicators.append(other)
    other_welcome = await receive(other)
    await first.disconnect()
    await counted(ws_user, 1)  # the slot goes back in a task of its own, right after
    fourth = await connect(ws_user)
    communicators.append(fourth)
    fourth_welcome = await receive(fourth)

    assert refused_code == CLOSE_TOO_MANY_SOCKETS
    assert refusals._value.get() == refused_before + 1
    assert other_welcome["type"] == "session.welcome"
    assert fourth_welcome["type"] == "session.welcome"
    assert await slot_backend().count(ws_user.pk, now=time.time()) == 2


class DyingConsumer(RealtimeConsumer):
    """Ends with an exception at its first frame, its websocket.disconnect never handled."""

    app = "probe"

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        raise RuntimeError("the consumer died")


dying_application = OriginValidator(
    RealtimeAuthMiddleware(URLRouter([path("ws/dying/", DyingConsumer.as_asgi())])), [ORIGIN]
)


async def test_a_consumer_that_dies_without_its_disconnect_gives_its_slot_back(ws_user, settings):
    settings.REALTIME_MAX_SOCKETS_PER_USER = 1
    comm = communicator("/ws/dying/", ticket=ticket_for(ws_user), application=dying_application)
    assert (await comm.connect(timeout=5))[0]
    assert (await receive(comm))["type"] == "session.welcome"
    await counted(ws_user, 1)

    await comm.send_to(text_data="{}")
    with pytest.raises(RuntimeError):
        await comm.wait(timeout=5)

    await counted(ws_user, 0)


async def counted(user, expected: int) -> None:
    for _ in range(50):
        if await slot_backend().count(user.pk, now=time.time()) == expected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"user {user.pk} still holds another number of slots than {expected}")


async def test_a_dead_workers_sockets_stop_counting_after_the_ttl(ws_user, communicators, settings):
    # Two slots left by a worker that died (never renewed): the handshake is refused while they
    # are live, admitted once they have lapsed.
    settings.REALTIME_MAX_SOCKETS_PER_USER = 2
    now = time.time()
    for name in ("dead:1/a", "dead:1/b"):
        assert await slot_backend().claim(ws_user.pk, name, cap=2, expires=now + 1.0, now=now)

    while_live = await connect(ws_user)
    refused_code = await close_code(while_live)
    await asyncio.sleep(max(0.0, now + 1.1 - time.time()))
    after = await connect(ws_user)
    communicators.append(after)

    assert refused_code == CLOSE_TOO_MANY_SOCKETS
    assert (await receive(after))["type"] == "session.welcome"


async def test_no_cap_when_the_setting_is_zero(ws_user, communicators, settings):
    settings.REALTIME_MAX_SOCKETS_PER_USER = 0
    opened = [await connect(ws_user) for _ in range(3)]
    communicators.extend(opened)

    assert [(await receive(comm))["type"] for comm in opened] == ["session.welcome"] * 3
    assert await slot_backend().count(ws_user.pk, now=time.time()) == 0
