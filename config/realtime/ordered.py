"""A consumer that follows one durable stream and sends it exactly once, in ``seq`` order.

A document's ops and a thread's events are each one stream with a gap-free ``seq``, kept in
PostgreSQL (DESIGN section 5). The channel layer is only a fast path: a broadcast may be lost
(a full channel, a Redis restart) or overtaken (two workers commit one after the other, their
broadcasts arrive the other way round). So each socket remembers the last ``seq`` it was sent,
drops what it already had, and fills a gap from the database before sending anything later:

    class ThreadConsumer(OrderedStreamConsumer):
        async def read_missed(self, after, upto):        # frames of after < seq <= upto
            return [(e.seq, frame_of(e)) for e in await events_between(...)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from config.realtime.consumer import RealtimeConsumer
from config.realtime.orm import database_sync_to_async, in_turn, once_more_if_the_connection_died

T = TypeVar("T")


def query_param(scope: dict[str, Any], name: str) -> str | None:
    """One value of the socket's query string (``?since=12``), or None."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else None


def since_param(scope: dict[str, Any]) -> int | None:
    """``?since=<seq>``; None when absent or unreadable (a fresh snapshot is always correct)."""
    value = query_param(scope, "since")
    if not value or not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


class OrderedStreamConsumer(RealtimeConsumer):
    # Set in on_connect: the stream followed (the name broadcasts carry in ``dedupe``), and the
    # last seq this socket was sent; nothing older is ever sent again.
    stream: str = ""
    sent: int = -1

    async def read_missed(self, after: int, upto: int) -> list[tuple[int, str]]:
        """The stream's frames with ``after < seq <= upto`` from the database, in order."""
        raise NotImplementedError

    async def read(self, selector: Callable[..., T], **arguments: Any) -> T:
        """A read of the stream (gap fills, on the way to an ack too), tried once more on a
        fresh connection if PostgreSQL ended the one it had."""
        return await database_sync_to_async(once_more_if_the_connection_died)(selector, **arguments)

    async def write(self, service: Callable[..., T], **arguments: Any) -> T:
        """A service that writes to this socket's stream, in turn with this worker's other
        writes to it (config/realtime/orm.py ``in_turn``)."""
        async with in_turn(self.stream):
            return await database_sync_to_async(once_more_if_the_connection_died)(
                service, **arguments
            )

    async def catch_up(self, upto: int) -> None:
        """Send everything after ``self.sent`` up to ``upto`` from the database."""
        if upto > self.sent:
            await self.send_stream_frames(await self.read_missed(self.sent, upto))

    async def send_stream_frames(self, frames: list[tuple[int, str]]) -> None:
        for seq, frame in frames:
            await self.send_frame("event", frame)
            self.sent = seq

    async def realtime_frame(self, message: dict[str, Any]) -> None:
        key = message.get("dedupe")
        if key is None or key[0] != self.stream:
            await super().realtime_frame(message)
            return
        seq = key[1]
        if seq <= self.sent:
            return  # had it: read at join or in a catch-up (or one's own op, acked)
        await self.catch_up(seq - 1)
        await self.send_frame("event", message["frame"])
        self.sent = seq
        self.observe_delivery(message)  # stream frames too: ops, comments, form changes
