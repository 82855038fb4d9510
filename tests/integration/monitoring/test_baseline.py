"""The bare relay the fan-out load test compares us with (monitoring/baseline.py): it relays, it
refuses anonymous sockets and bad room names, and it is not routed unless asked for."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from monitoring import routing
from monitoring.baseline import BareRelayConsumer, LeanRelayConsumer
from tests.factories import UserFactory

TIMEOUT = 5


def bare(user, room: str = "room1", consumer=BareRelayConsumer) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(consumer.as_asgi(), f"/ws/bench/bare/?room={room}")
    comm.scope["user"] = user
    return comm


@pytest.mark.parametrize("consumer", [BareRelayConsumer, LeanRelayConsumer])
async def test_relays_every_text_frame_to_every_socket_of_the_room(transactional_db, consumer):
    alice, bob, carol = (
        bare(UserFactory.build(pk=1), consumer=consumer),
        bare(UserFactory.build(pk=2), consumer=consumer),
        bare(UserFactory.build(pk=3), room="room2", consumer=consumer),
    )
    for comm in (alice, bob, carol):
        assert (await comm.connect(timeout=TIMEOUT))[0]

    await alice.send_to(text_data='{"m":1}')

    assert await alice.receive_from(timeout=TIMEOUT) == '{"m":1}'  # the sender too
    assert await bob.receive_from(timeout=TIMEOUT) == '{"m":1}'
    assert await carol.receive_nothing(timeout=0.2)  # another room
    for comm in (alice, bob, carol):
        await comm.disconnect()


async def test_refuses_anonymous_sockets(transactional_db):
    connected, close_code = await bare(AnonymousUser()).connect(timeout=TIMEOUT)

    assert (connected, close_code) == (False, 4401)


@pytest.mark.parametrize("room", ["", "a.b", "x" * 81, "caf%C3%A9"])
async def test_refuses_bad_room_names(transactional_db, room):
    connected, close_code = await bare(UserFactory.build(pk=1), room=room).connect(timeout=TIMEOUT)

    assert (connected, close_code) == (False, 4400)


def test_not_routed_unless_the_load_test_asks_for_it(settings):
    assert settings.REALTIME_BARE_BASELINE is False
    assert all("bench" not in str(route.pattern) for route in routing.websocket_urlpatterns)
