"""broadcast_on_commit (config/realtime/broadcast.py): after commit, never on rollback.

A presence connection joined to a lobby room listens on that room's group, through the real
Redis channel layer. The "service" runs as sync code in a real transaction, as services do.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth import get_user_model
from django.db import transaction

from config.realtime.broadcast import abroadcast, broadcast_on_commit
from presence.rooms import parse_room
from tests.integration.ws import drain, receive, request

pytestmark = pytest.mark.django_db(transaction=True)


async def listener(open_ws, user, room_name: str):
    comm, _ = await open_ws(user)
    reply = await request(comm, "presence.room.join", {"room": room_name})
    assert reply["type"] == "ack", reply
    await drain(comm)  # the room hears of our arrival; these tests listen for their own frames
    return comm, parse_room(room_name).group


class Boom(Exception):
    pass


async def test_a_broadcast_is_delivered_only_after_commit(ws_user, open_ws):
    comm, group = await listener(open_ws, ws_user, "lobby.commit")
    heard_before_commit = []

    @sync_to_async
    def service() -> None:
        with transaction.atomic():
            get_user_model().objects.filter(pk=ws_user.pk).update(first_name="Ada")
            broadcast_on_commit(group, "test.user.renamed", {"name": "Ada"}, stream=group, seq=7)
            silent = async_to_sync(comm.receive_nothing)(timeout=0.3)
            heard_before_commit.append(not silent)

    await service()

    assert heard_before_commit == [False]
    assert await receive(comm) == {
        "type": "test.user.renamed",
        "stream": group,
        "seq": 7,
        "data": {"name": "Ada"},
    }


async def test_a_broadcast_is_never_delivered_on_rollback(ws_user, open_ws):
    comm, group = await listener(open_ws, ws_user, "lobby.rollback")

    @sync_to_async
    def service() -> None:
        with transaction.atomic():
            get_user_model().objects.filter(pk=ws_user.pk).update(first_name="Bob")
            broadcast_on_commit(group, "test.user.renamed", {"name": "Bob"})
            raise Boom

    with pytest.raises(Boom):
        await service()

    assert await comm.receive_nothing(timeout=0.5)
    assert (
        await sync_to_async(lambda: get_user_model().objects.get(pk=ws_user.pk).first_name)() == ""
    )


async def test_a_rolled_back_savepoint_drops_only_its_own_broadcasts(ws_user, open_ws):
    comm, group = await listener(open_ws, ws_user, "lobby.savepoint")

    @sync_to_async
    def service() -> None:
        with transaction.atomic():
            broadcast_on_commit(group, "test.step.done", {"step": 1})
            try:
                with transaction.atomic():
                    broadcast_on_commit(group, "test.step.done", {"step": 2})
                    raise Boom
            except Boom:
                pass
            broadcast_on_commit(group, "test.step.done", {"step": 3})

    await service()

    assert [(await receive(comm))["data"]["step"] for _ in range(2)] == [1, 3]
    assert await comm.receive_nothing(timeout=0.3)


async def test_broadcasts_of_one_process_arrive_in_commit_order(ws_user, open_ws):
    comm, group = await listener(open_ws, ws_user, "lobby.order")

    @sync_to_async
    def service(n: int) -> None:
        with transaction.atomic():
            broadcast_on_commit(group, "test.item.created", {"n": n}, stream=group, seq=n)

    for n in range(1, 21):
        await service(n)

    assert [(await receive(comm))["seq"] for _ in range(20)] == list(range(1, 21))


async def test_abroadcast_sends_at_once_to_every_member(ws_user, ws_other_user, open_ws):
    first, group = await listener(open_ws, ws_user, "lobby.now")
    second, _ = await listener(open_ws, ws_other_user, "lobby.now")
    await drain(first)  # the second member's arrival

    await abroadcast(group, "test.signal.sent", {"x": 1})

    expected = {"type": "test.signal.sent", "data": {"x": 1}}
    assert await receive(first) == expected
    assert await receive(second) == expected
