"""RealtimeConsumer (config/realtime/consumer.py): the protocol every app consumer inherits."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.security.websocket import OriginValidator
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.urls import path

from config.errors import (
    CLOSE_FORBIDDEN,
    CLOSE_HEARTBEAT_TIMEOUT,
    CLOSE_INTERNAL,
    CLOSE_NOT_FOUND,
    CLOSE_RATE_LIMITED,
    AppError,
    ErrorCode,
)
from config.realtime.auth import RealtimeAuthMiddleware
from config.realtime.consumer import CLOSE_POLICY_VIOLATION, RealtimeConsumer, command
from monitoring import metrics
from tests.integration.ws import (
    ORIGIN,
    close_code,
    communicator,
    receive,
    request,
    send,
    ticket_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


class ProbeConsumer(RealtimeConsumer):
    """A consumer with handlers that fail, mounted behind the real Origin and auth middleware."""

    app = "probe"

    async def authorize(self) -> None:
        refusal = self.scope["url_route"]["kwargs"].get("refuse")
        if refusal in ("not_found", "forbidden"):
            raise AppError(ErrorCode(refusal))
        if refusal == "authorize-crash":
            raise RuntimeError("authorize exploded: database password=hunter2")

    async def on_connect(self) -> None:
        if self.scope["url_route"]["kwargs"].get("refuse") == "connect-crash":
            raise RuntimeError("on_connect exploded")

    @command("probe.handler.crash")
    async def on_crash(self, data: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("secret detail: password=hunter2 at /srv/app/config.py")

    @command("probe.echo.send")
    async def on_echo(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"echo": data}


probe_application = OriginValidator(
    RealtimeAuthMiddleware(
        URLRouter(
            [
                path("ws/probe/", ProbeConsumer.as_asgi()),
                path("ws/probe/<str:refuse>/", ProbeConsumer.as_asgi()),
            ]
        )
    ),
    [ORIGIN],
)


async def open_probe(user, communicators, route: str = "ws/probe/"):
    comm = communicator(f"/{route}", ticket=ticket_for(user), application=probe_application)
    communicators.append(comm)
    assert (await comm.connect())[0]
    return comm


# --- welcome and heartbeat ------------------------------------------------------------------


async def test_the_welcome_frame_names_user_connection_heartbeat_and_epoch(
    ws_user, open_ws, settings
):
    _, welcome = await open_ws(ws_user)

    data = welcome["data"]
    assert welcome == {"type": "session.welcome", "data": data}
    assert data["user"] == {"id": ws_user.pk, "username": ws_user.username}
    assert len(data["connection_id"]) == 16
    assert data["heartbeat_interval"] == settings.REALTIME_HEARTBEAT_SECONDS
    assert data["max_message_bytes"] == settings.REALTIME_MAX_MESSAGE_BYTES
    assert isinstance(data["epoch"], str) and data["epoch"]


async def test_two_connections_get_distinct_ids_and_the_same_epoch(ws_user, ws_other_user, open_ws):
    _, first = await open_ws(ws_user)
    _, second = await open_ws(ws_other_user)

    assert first["data"]["connection_id"] != second["data"]["connection_id"]
    assert first["data"]["epoch"] == second["data"]["epoch"]


async def test_a_heartbeat_is_acked_with_the_server_time(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)

    reply = await request(comm, "session.heartbeat", id="hb1")

    assert reply["type"] == "ack" and reply["id"] == "hb1"
    assert isinstance(reply["data"]["server_time"], float)


async def test_a_command_without_id_gets_no_ack(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)

    await send(comm, "session.heartbeat")

    assert await comm.receive_nothing(timeout=0.3)


# --- bad input: an error frame, and the socket stays open ------------------------------------


async def assert_still_open(comm) -> None:
    reply = await request(comm, "session.heartbeat", id="still-open")
    assert reply["type"] == "ack", reply


async def test_bad_json_gets_an_error_frame_and_the_socket_stays_open(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)

    await comm.send_to(text_data='{"id": "c1", "type": ')
    error = await receive(comm)

    assert error == {
        "type": "error",
        "id": None,
        "error": {"code": "bad_json", "message": "The message is not valid JSON.", "retry": False},
    }
    await assert_still_open(comm)


async def test_a_binary_frame_gets_bad_frame(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)

    await comm.send_to(bytes_data=b'{"id": "b1", "type": "session.heartbeat"}')
    error = await receive(comm)

    assert error["type"] == "error"
    assert error["id"] == "b1"
    assert error["error"]["code"] == "bad_frame"
    await assert_still_open(comm)


async def test_an_unknown_type_gets_unknown_type_with_the_command_id(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)

    error = await request(comm, "collab.op.submit", {"version": 1}, id="c42")

    assert error["id"] == "c42"
    assert error["error"]["code"] == "unknown_type"
    await assert_still_open(comm)


@pytest.mark.parametrize(
    "message_type",
    ["websocket.disconnect", "realtime.frame", "session.welcome", "websocket.receive"],
)
async def test_a_client_type_never_reaches_a_consumer_method(ws_user, open_ws, message_type):
    comm, _ = await open_ws(ws_user)

    error = await request(comm, message_type, {"frame": '{"type": "x"}'}, id="c1")

    assert error["error"]["code"] == "unknown_type"
    await assert_still_open(comm)


async def test_an_invalid_envelope_names_the_command_id_when_it_can(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)

    await comm.send_to(text_data=json.dumps({"id": "c7", "type": "session.heartbeat", "x": 1}))
    error = await receive(comm)

    assert (error["id"], error["error"]["code"]) == ("c7", "bad_frame")


async def test_an_oversize_frame_gets_too_large(ws_user, open_ws, settings):
    settings.REALTIME_MAX_MESSAGE_BYTES = 200
    comm, _ = await open_ws(ws_user)

    await send(comm, "session.heartbeat", {"pad": "€" * 100}, id="big")
    error = await receive(comm)

    assert error["error"]["code"] == "too_large"
    assert error["id"] is None  # a frame that is too large is not parsed, not even for its id
    await assert_still_open(comm)


async def test_a_deeply_nested_frame_gets_too_deep(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)

    depth = 10_000
    await comm.send_to(
        text_data='{"type":"session.heartbeat","data":{"a":' + "[" * depth + "]" * depth + "}}"
    )
    error = await receive(comm)

    assert error["error"]["code"] == "too_deep"
    await assert_still_open(comm)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("NaN", "invalid"),
        ("1e400", "invalid"),
        ("9007199254740992", "invalid"),
        ("9" * 5000, "bad_json"),
    ],
)
async def test_out_of_range_numbers_get_an_error_frame(ws_user, open_ws, value, code):
    comm, _ = await open_ws(ws_user)

    await comm.send_to(
        text_data='{"id":"n1","type":"session.heartbeat","data":{"x":' + value + "}}"
    )
    error = await receive(comm)

    assert error["error"]["code"] == code
    await assert_still_open(comm)


# --- rate limits and abuse ----------------------------------------------------------------------


async def test_a_rate_limited_command_gets_rate_limited_with_retry_after(
    ws_user, open_ws, settings
):
    settings.REALTIME_RATES = {**settings.REALTIME_RATES, "presence.room.join": "2/min"}
    comm, _ = await open_ws(ws_user)

    replies = [
        await request(comm, "presence.room.join", {"room": f"lobby.r{n}"}, id=f"j{n}")
        for n in range(3)
    ]

    assert [reply["type"] for reply in replies] == ["ack", "ack", "error"]
    error = replies[2]["error"]
    assert error["code"] == "rate_limited"
    assert error["retry"] is True
    assert 0 < error["retry_after"] <= 120


async def test_rate_limits_are_per_user_and_per_type(ws_user, ws_other_user, open_ws, settings):
    settings.REALTIME_RATES = {**settings.REALTIME_RATES, "presence.room.join": "1/min"}
    comm, _ = await open_ws(ws_user)
    other, _ = await open_ws(ws_other_user)
    same_user, _ = await open_ws(ws_user)
    join = {"room": "lobby.r"}

    assert (await request(comm, "presence.room.join", join))["type"] == "ack"
    assert (await request(other, "presence.room.join", join))["type"] == "ack"
    # Shared by all connections of one user: a second socket does not reset the count.
    assert (await request(same_user, "presence.room.join", join))["error"]["code"] == (
        "rate_limited"
    )
    assert (await request(comm, "session.heartbeat"))["type"] == "ack"


async def test_heartbeats_are_limited_per_connection_not_per_user(ws_user, open_ws, settings):
    settings.REALTIME_CONNECTION_RATES = {"session.heartbeat": "1/min"}
    comm, _ = await open_ws(ws_user)
    same_user, _ = await open_ws(ws_user)

    assert (await request(comm, "session.heartbeat"))["type"] == "ack"
    assert (await request(comm, "session.heartbeat"))["error"]["code"] == "rate_limited"
    # Every tab beats on its own socket: one busy socket does not starve the others.
    assert (await request(same_user, "session.heartbeat"))["type"] == "ack"


async def test_a_client_that_keeps_hitting_the_limit_is_closed_4429(ws_user, open_ws, settings):
    settings.REALTIME_CONNECTION_RATES = {"session.heartbeat": "1/min"}
    settings.REALTIME_ABUSE_LIMIT = 3
    comm, _ = await open_ws(ws_user)
    assert (await request(comm, "session.heartbeat"))["type"] == "ack"

    for n in range(3):
        reply = await request(comm, "session.heartbeat", id=f"h{n}")
        assert reply["error"]["code"] == "rate_limited"
    await send(comm, "session.heartbeat", id="last")

    assert (await receive(comm))["error"]["code"] == "rate_limited"
    assert await close_code(comm) == CLOSE_RATE_LIMITED


async def test_a_client_that_keeps_sending_garbage_is_closed_1008(ws_user, open_ws, settings):
    settings.REALTIME_ABUSE_LIMIT = 3
    comm, _ = await open_ws(ws_user)

    for _ in range(3):
        await comm.send_to(text_data="not json")
        assert (await receive(comm))["error"]["code"] == "bad_json"
    await comm.send_to(text_data="not json")

    assert (await receive(comm))["error"]["code"] == "bad_json"
    assert await close_code(comm) == CLOSE_POLICY_VIOLATION


async def test_not_found_answers_are_not_counted_as_abuse(ws_user, open_ws, settings):
    settings.REALTIME_ABUSE_LIMIT = 2
    comm, _ = await open_ws(ws_user)

    for n in range(5):
        reply = await request(comm, "presence.room.join", {"room": "document.42"}, id=f"j{n}")
        assert reply["error"]["code"] == "not_found"

    await assert_still_open(comm)


# --- heartbeat sweeper ------------------------------------------------------------------------


async def test_a_silent_connection_is_closed_4408_and_a_chatty_one_is_not(
    ws_user, ws_other_user, open_ws, settings
):
    settings.REALTIME_HEARTBEAT_SECONDS = 1  # the sweeper looks every max(1 s, interval / 3)
    settings.REALTIME_HEARTBEAT_TIMEOUT_SECONDS = 1
    silent, _ = await open_ws(ws_user)
    chatty, _ = await open_ws(ws_other_user)
    silent_closed = asyncio.Event()

    async def keep_talking() -> None:
        n = 0
        while not silent_closed.is_set():
            assert (await request(chatty, "session.heartbeat", id=f"k{n}"))["type"] == "ack"
            n += 1
            await asyncio.sleep(0.25)

    talking = asyncio.create_task(keep_talking())
    assert await close_code(silent, within=5) == CLOSE_HEARTBEAT_TIMEOUT
    silent_closed.set()
    await talking

    # The sweep that closed the silent socket left this one open.
    assert (await request(chatty, "session.heartbeat", id="after"))["type"] == "ack"


# --- handler failures and refusals ------------------------------------------------------------


async def test_an_exception_in_a_handler_gets_internal_without_exception_text(
    ws_user, communicators, caplog
):
    comm = await open_probe(ws_user, communicators)
    await receive(comm)  # welcome

    with caplog.at_level(logging.ERROR, logger="config.realtime.consumer"):
        await send(comm, "probe.handler.crash", {}, id="boom")
        raw = await comm.receive_from(timeout=5)

    assert json.loads(raw) == {
        "type": "error",
        "id": "boom",
        "error": {"code": "internal", "message": "Internal error.", "retry": True},
    }
    assert "secret" not in raw and "RuntimeError" not in raw and "Traceback" not in raw
    assert "secret detail" in caplog.text  # the operator gets the traceback, the client does not
    assert (await request(comm, "probe.echo.send", {"a": 1}))["data"] == {"echo": {"a": 1}}


async def test_internal_errors_are_not_counted_as_abuse(ws_user, communicators, settings):
    settings.REALTIME_ABUSE_LIMIT = 1
    comm = await open_probe(ws_user, communicators)
    await receive(comm)

    for n in range(3):
        assert (await request(comm, "probe.handler.crash", id=f"x{n}"))["error"][
            "code"
        ] == "internal"

    assert (await request(comm, "session.heartbeat"))["type"] == "ack"


@pytest.mark.parametrize(
    ("refusal", "code"), [("not_found", CLOSE_NOT_FOUND), ("forbidden", CLOSE_FORBIDDEN)]
)
async def test_authorize_refusals_close_with_their_code(ws_user, communicators, refusal, code):
    comm = await open_probe(ws_user, communicators, f"ws/probe/{refusal}/")

    assert await close_code(comm) == code
    await send(comm, "probe.echo.send", {"a": 1}, id="c1")
    assert await comm.receive_nothing(timeout=0.3)


async def test_a_crash_in_on_connect_closes_4500(ws_user, communicators):
    comm = await open_probe(ws_user, communicators, "ws/probe/connect-crash/")

    assert (await receive(comm))["type"] == "session.welcome"
    assert await close_code(comm) == CLOSE_INTERNAL


async def test_a_crash_in_authorize_closes_4500_and_processes_nothing(ws_user, communicators):
    comm = await open_probe(ws_user, communicators, "ws/probe/authorize-crash/")

    assert await close_code(comm) == CLOSE_INTERNAL
    await send(comm, "probe.echo.send", {"a": 1}, id="c1")
    assert await comm.receive_nothing(timeout=0.3)


# --- metrics ----------------------------------------------------------------------------------


async def test_the_connection_gauge_follows_connects_and_disconnects(ws_user, open_ws):
    gauge = metrics.WS_CONNECTIONS.labels(app="presence")
    before = gauge._value.get()

    comm, _ = await open_ws(ws_user)
    assert gauge._value.get() == before + 1
    await comm.disconnect()

    assert gauge._value.get() == before


async def test_a_channel_the_pubsub_layer_kept_is_dropped_when_the_consumer_ends():
    """django/channels_redis#276: the layer forgets a channel only when a pending receive() on
    it is cancelled; one whose last receive had completed stayed (found by the churn test)."""
    layer = get_channel_layer()
    assert isinstance(layer, RedisPubSubChannelLayer), "the tests run on the pub/sub layer"
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "realtime.frame", "frame": "{}"})
    await layer.receive(channel)  # completed, not cancelled: the layer keeps the queue
    assert channel in layer._get_layer().channels

    consumer = RealtimeConsumer()
    consumer.channel_layer, consumer.channel_name = layer, channel
    consumer._forget_channel()

    assert channel not in layer._get_layer().channels
    await asyncio.sleep(0.2)  # the unsubscribe runs in the background
    assert channel not in layer._get_layer()._get_shard(channel)._subscribed_to


async def test_a_subscription_the_pubsub_layer_failed_to_drop_is_dropped_when_the_consumer_ends():
    """The layer's own clean-up pops the channel, then its unsubscribe can be cancelled (Daphne's
    --application-close-timeout under overload): the subscription stayed (the churn test's
    "Unexpected exception while cleaning-up channel")."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "realtime.frame", "frame": "{}"})
    await layer.receive(channel)
    loop_layer = layer._get_layer()
    del loop_layer.channels[channel]  # what the layer's clean-up did before it was cancelled
    shard = loop_layer._get_shard(channel)
    assert channel in shard._subscribed_to

    consumer = RealtimeConsumer()
    consumer.channel_layer, consumer.channel_name = layer, channel
    consumer._forget_channel()
    await asyncio.sleep(0.2)

    assert channel not in shard._subscribed_to
