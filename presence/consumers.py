"""``/ws/presence/``: heartbeat, rooms and room signals (DESIGN section 7)."""

from __future__ import annotations

from typing import Any

from config.errors import AppError, ErrorCode
from config.realtime.consumer import RealtimeConsumer, command
from presence.rooms import Room
from presence.services import room_join, signal_send

MAX_ROOMS_PER_CONNECTION = 50


class PresenceConsumer(RealtimeConsumer):
    app = "presence"

    async def on_connect(self) -> None:
        self.rooms: dict[str, Room] = {}

    @command("presence.room.join")
    async def on_room_join(self, data: dict[str, Any]) -> dict[str, Any]:
        room = await room_join(user=self.user, room_name=data.get("room"))
        if room.name not in self.rooms:
            if len(self.rooms) >= MAX_ROOMS_PER_CONNECTION:
                raise AppError(ErrorCode.INVALID, "Too many rooms on one connection.")
            await self.join_group(room.group)
            self.rooms[room.name] = room
        return {"room": room.name}

    @command("presence.room.leave")
    async def on_room_leave(self, data: dict[str, Any]) -> dict[str, Any]:
        room = self.rooms.pop(self._joined(data).name)
        await self.leave_group(room.group)
        return {"room": room.name}

    @command("presence.signal.send")
    async def on_signal_send(self, data: dict[str, Any]) -> dict[str, Any]:
        await signal_send(user=self.user, room=self._joined(data), payload=data.get("data", {}))
        return {}

    def _joined(self, data: dict[str, Any]) -> Room:
        room = self.rooms.get(data.get("room"))  # type: ignore[arg-type]
        if room is None:
            raise AppError(ErrorCode.INVALID, "Join the room first.")
        return room
