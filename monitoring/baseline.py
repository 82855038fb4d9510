"""The bare Channels consumer the fan-out load test compares us with (issue 9, DESIGN section 9).

It does only what any Channels relay must: join the group named in the query string, relay
every text frame to that group, and write every group message to its socket. No envelope, no
validation, no rate limit, no presence, no metrics. The load test runs the same clients against
it and against ``/ws/presence/`` on the same Daphne workers, Redis and channel layer, so the
ratio of the two shows what our protocol costs over Channels itself.

``LeanRelayConsumer`` is the same relay without the one thing stock Channels (>= 4.2) does on
every message: a hop to the ORM thread to close stale database connections (``dispatch`` calls
``aclose_old_connections``), which our consumers skip too (config/realtime/consumer.py). Against
it, the ratio shows what our protocol itself costs; against the stock relay, what a team gets
from us over a plain Channels consumer.

Both are routed only when ``REALTIME_BARE_BASELINE`` is on (``loadtest fanout --baseline --spawn
N`` sets it for its workers): they are benchmark fixtures, not an API. Even then they refuse
anonymous sockets, so a worker left with the flag on relays only between signed-in users.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer

GROUP_PREFIX = "bare."
ROOM_MAX_LENGTH = 80  # Channels group names must stay under 100 characters


class BareRelayConsumer(AsyncWebsocketConsumer):
    group = ""

    async def connect(self) -> None:
        room = parse_qs(self.scope.get("query_string", b"").decode()).get("room", [""])[0]
        user = self.scope.get("user")
        if not room or len(room) > ROOM_MAX_LENGTH or not room.isascii() or not room.isalnum():
            await self.close(code=4400)
            return
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = GROUP_PREFIX + room
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self.channel_layer.group_send(self.group, {"type": "relay", "text": text_data})

    async def relay(self, message: dict[str, str]) -> None:
        await self.send(text_data=message["text"])

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)


class LeanRelayConsumer(BareRelayConsumer):
    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
