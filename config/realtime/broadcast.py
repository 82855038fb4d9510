"""Broadcasts to a group, after the transaction that caused them commits.

Services (never consumers) call these, so a change made over REST reaches WebSocket clients
exactly as one made over WebSocket does:

    with transaction.atomic():
        comment = Comment.objects.create(...)
        broadcast_on_commit(group, "comments.comment.created", data, stream=group, seq=7)

The frame is encoded once here; every receiving consumer sends the same text as it is.
"""

from __future__ import annotations

import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.db import transaction

from config.realtime import outbox
from config.realtime.envelope import encode_event
from monitoring import metrics

# The channel-layer message type every RealtimeConsumer handles (method realtime_frame).
FRAME_MESSAGE = "realtime.frame"


def _layer_message(  # type: ignore[no-untyped-def]
    event_type: str, data: dict[str, Any], stream: str | None, seq: int | None, dedupe: bool
):
    message = {
        "type": FRAME_MESSAGE,
        "frame": encode_event(event_type, data, stream=stream, seq=seq),
    }
    if dedupe:
        # A socket that receives one (stream, seq) through several groups sends it once, and
        # never a lower seq of that stream after a higher one (RealtimeConsumer.realtime_frame).
        if stream is None or seq is None:
            raise ValueError("dedupe needs a stream and a seq")
        message["dedupe"] = [stream, seq]
    return message


def broadcast_on_commit(
    group: str,
    event_type: str,
    data: dict[str, Any],
    *,
    stream: str | None = None,
    seq: int | None = None,
    dedupe: bool = False,
) -> None:
    """From sync code (a service in a transaction): send once the transaction commits."""
    group_send_on_commit(group, _layer_message(event_type, data, stream, seq, dedupe))


def group_send_on_commit(group: str, message: dict[str, Any]) -> None:
    """Any channel-layer message to a group, once the transaction commits.

    Posted to the worker's outbox, which sends in commit order on the event loop: the ORM
    thread, and with it the write's answer, never waits on Redis (config/realtime/outbox.py).
    """
    transaction.on_commit(lambda: outbox.post(group, _stamped(message), group_send))


def _stamped(message: dict[str, Any]) -> dict[str, Any]:
    if message.get("type") != FRAME_MESSAGE:
        return message
    # Wall clock: the receiving worker may be another process or host (delivery latency).
    return {**message, "sent_at": time.time()}


async def group_send(group: str, message: dict[str, Any]) -> None:
    """group_send that stamps frames with the send time and counts the layer's failures."""
    if "sent_at" not in message:  # a frame from the outbox is stamped when it was committed
        message = _stamped(message)
    try:
        await get_channel_layer().group_send(group, message)
    except Exception as error:
        metrics.LAYER_SEND_FAILURES.labels(reason=_failure_reason(error)).inc()
        raise


def _failure_reason(error: Exception) -> str:
    if isinstance(error, ChannelFull):
        return "channel_full"
    if isinstance(error, TimeoutError):
        return "timeout"
    if type(error).__module__.startswith("redis") or isinstance(error, OSError):
        return "redis"
    return "other"


async def abroadcast(
    group: str,
    event_type: str,
    data: dict[str, Any],
    *,
    stream: str | None = None,
    seq: int | None = None,
    dedupe: bool = False,
) -> None:
    """From async code, for soft state with nothing to commit (signals, typing, cursors)."""
    await group_send(group, _layer_message(event_type, data, stream, seq, dedupe))
