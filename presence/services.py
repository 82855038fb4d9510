"""Presence services: joining rooms and broadcasting ephemeral room signals.

Signals are soft state (DESIGN section 5): nothing is stored, delivery is best effort, and every
member of the room receives them, the sender included (the echo tells it the signal went out).

    room = await room_join(user=user, room_name="lobby.main")
    await signal_send(user=user, room=room, payload={"emoji": "tada"})
"""

from __future__ import annotations

from typing import Any

from config.errors import AppError, ErrorCode
from config.realtime.broadcast import abroadcast
from presence.rooms import Room, parse_room

MAX_SIGNAL_BYTES = 4096


async def room_join(*, user: Any, room_name: object) -> Room:
    """The room the user may join, or AppError(INVALID / NOT_FOUND)."""
    return parse_room(room_name)


async def signal_send(*, user: Any, room: Room, payload: object, sent_at: object = None) -> None:
    if not isinstance(payload, dict):
        raise AppError(ErrorCode.INVALID, "'data' must be a JSON object.")
    # The envelope caps the frame; this keeps one signal from costing a 64 KiB fan-out.
    if len(repr(payload)) > MAX_SIGNAL_BYTES:
        raise AppError(ErrorCode.TOO_LARGE, f"Signals are limited to {MAX_SIGNAL_BYTES} bytes.")
    data: dict[str, Any] = {
        "room": room.name,
        "from": {"id": user.pk, "username": user.get_username()},
        "data": payload,
    }
    await abroadcast(room.group, "presence.signal.received", data)
