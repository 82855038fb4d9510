"""``/ws/presence/``: rooms and room signals through the real Redis channel layer."""

from __future__ import annotations

import pytest

from presence.consumers import MAX_ROOMS_PER_CONNECTION
from presence.services import MAX_SIGNAL_BYTES
from tests.integration.ws import drain, next_of, none_of, receive, request

SIGNAL = "presence.signal.received"

pytestmark = pytest.mark.django_db(transaction=True)


async def join(comm, room: str) -> dict:
    reply = await request(comm, "presence.room.join", {"room": room}, id="join")
    assert reply["type"] == "ack", reply
    await drain(comm, quiet=0.1)  # our own arrival, announced to the room
    return reply


async def next_event(comm) -> dict:
    """The next signal, skipping presence events (members joining, status changes)."""
    return await next_of(comm, SIGNAL)


async def no_signal(comm) -> bool:
    return await none_of(comm, SIGNAL)


async def test_joining_a_lobby_room_is_acked_with_its_name(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)

    reply = await request(comm, "presence.room.join", {"room": "lobby.main"}, id="j1")

    assert reply["type"] == "ack"
    assert reply["data"]["room"] == "lobby.main"


async def test_joining_twice_is_the_same_as_once(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)
    await join(comm, "lobby.twice")
    await join(comm, "lobby.twice")

    await request(comm, "presence.signal.send", {"room": "lobby.twice", "data": {"n": 1}})

    assert (await next_event(comm))["data"]["data"] == {"n": 1}
    assert await no_signal(comm)  # one membership, one copy


async def test_two_members_of_a_room_both_receive_a_signal(ws_user, ws_other_user, open_ws):
    alice, _ = await open_ws(ws_user)
    bob, _ = await open_ws(ws_other_user)
    await join(alice, "lobby.pair")
    await join(bob, "lobby.pair")

    reply = await request(
        alice, "presence.signal.send", {"room": "lobby.pair", "data": {"emoji": "tada"}}
    )

    assert reply == {"type": "ack", "id": "c1", "data": {}}
    expected = {
        "type": "presence.signal.received",
        "data": {
            "room": "lobby.pair",
            "from": {"id": ws_user.pk, "username": ws_user.username},
            "data": {"emoji": "tada"},
        },
    }
    assert await next_event(alice) == expected  # the sender hears its own echo
    assert await next_event(bob) == expected


async def test_a_signal_reaches_only_its_room(ws_user, ws_other_user, open_ws):
    alice, _ = await open_ws(ws_user)
    bob, _ = await open_ws(ws_other_user)
    await join(alice, "lobby.one")
    await join(bob, "lobby.two")

    await request(alice, "presence.signal.send", {"room": "lobby.one", "data": {}})

    assert (await next_event(alice))["data"]["room"] == "lobby.one"
    assert await no_signal(bob)


async def test_a_signal_to_a_room_not_joined_is_invalid(ws_user, ws_other_user, open_ws):
    alice, _ = await open_ws(ws_user)
    bob, _ = await open_ws(ws_other_user)
    await join(bob, "lobby.closed")

    reply = await request(
        alice, "presence.signal.send", {"room": "lobby.closed", "data": {}}, id="s1"
    )

    assert reply["id"] == "s1"
    assert reply["error"]["code"] == "invalid"
    assert await no_signal(bob)


async def test_after_leaving_a_room_its_signals_stop_and_sending_is_invalid(
    ws_user, ws_other_user, open_ws
):
    alice, _ = await open_ws(ws_user)
    bob, _ = await open_ws(ws_other_user)
    await join(alice, "lobby.leave")
    await join(bob, "lobby.leave")

    reply = await request(alice, "presence.room.leave", {"room": "lobby.leave"}, id="l1")
    await request(bob, "presence.signal.send", {"room": "lobby.leave", "data": {"n": 2}})

    assert reply == {"type": "ack", "id": "l1", "data": {"room": "lobby.leave"}}
    assert (await next_event(bob))["data"]["data"] == {"n": 2}
    assert await no_signal(alice)
    again = await request(alice, "presence.signal.send", {"room": "lobby.leave", "data": {}})
    assert again["error"]["code"] == "invalid"


async def test_leaving_a_room_not_joined_is_invalid(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)

    reply = await request(comm, "presence.room.leave", {"room": "lobby.never"})

    assert reply["error"]["code"] == "invalid"


@pytest.mark.parametrize("room", ["document.42", "thread.7", "form.1"])
async def test_rooms_of_kinds_that_are_not_open_are_not_found(ws_user, open_ws, room):
    comm, _ = await open_ws(ws_user)

    reply = await request(comm, "presence.room.join", {"room": room}, id="j9")

    assert reply["id"] == "j9"
    assert reply["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "room", [None, 7, "", "lobby", "lobby.a b", "lobby.main\n", ["lobby.main"]]
)
async def test_malformed_room_names_are_invalid(ws_user, open_ws, room):
    comm, _ = await open_ws(ws_user)

    reply = await request(comm, "presence.room.join", {"room": room})

    assert reply["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    ("payload", "code"), [([1, 2], "invalid"), ("hi", "invalid"), (None, "invalid")]
)
async def test_a_signal_payload_must_be_an_object(ws_user, open_ws, payload, code):
    comm, _ = await open_ws(ws_user)
    await join(comm, "lobby.payload")

    reply = await request(comm, "presence.signal.send", {"room": "lobby.payload", "data": payload})

    assert reply["error"]["code"] == code


async def test_an_oversize_signal_is_too_large_and_not_sent(ws_user, ws_other_user, open_ws):
    alice, _ = await open_ws(ws_user)
    bob, _ = await open_ws(ws_other_user)
    await join(alice, "lobby.big")
    await join(bob, "lobby.big")

    reply = await request(
        alice, "presence.signal.send", {"room": "lobby.big", "data": {"x": "a" * MAX_SIGNAL_BYTES}}
    )

    assert reply["error"]["code"] == "too_large"
    assert await no_signal(bob)


async def test_a_signal_with_a_lone_surrogate_is_invalid_not_internal(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)
    await join(comm, "lobby.surrogate")

    await comm.send_to(
        text_data='{"id":"u1","type":"presence.signal.send",'
        '"data":{"room":"lobby.surrogate","data":{"x":"\\ud800"}}}'
    )
    reply = await receive(comm)

    assert (reply["id"], reply["error"]["code"]) == ("u1", "invalid")


async def test_one_connection_may_join_at_most_the_room_cap(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)
    for n in range(MAX_ROOMS_PER_CONNECTION):
        await join(comm, f"lobby.r{n}")

    reply = await request(comm, "presence.room.join", {"room": "lobby.onemore"})

    assert reply["error"]["code"] == "invalid"
    await join(comm, "lobby.r0")  # rejoining one already joined is still fine


async def test_a_disconnected_member_leaves_its_rooms(ws_user, ws_other_user, open_ws):
    alice, _ = await open_ws(ws_user)
    bob, _ = await open_ws(ws_other_user)
    await join(alice, "lobby.gone")
    await join(bob, "lobby.gone")

    await alice.disconnect()
    await request(bob, "presence.signal.send", {"room": "lobby.gone", "data": {"n": 3}})

    assert (await next_event(bob))["data"]["data"] == {"n": 3}
