"""``/ws/presence/``: status, activity, rooms, watching users, and room signals (DESIGN 7).

Every command acts for the user of the authenticated connection; no message names the user it
acts for, so nobody can set presence for someone else.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from config.errors import AppError, ErrorCode
from config.realtime.consumer import RealtimeConsumer, command
from presence.rooms import Room, parse_room_state
from presence.services import room_authorize, signal_send, users_presence, watch_group
from presence.state import Choice
from presence.tracking import MAX_TEXT

MAX_ROOMS_PER_CONNECTION = 50


class PresenceConsumer(RealtimeConsumer):
    app = "presence"

    async def on_connect(self) -> None:
        self.rooms: dict[str, Room] = {}
        self.watched: set[int] = set()

    @command("presence.status.set")
    async def on_status_set(self, data: dict[str, Any]) -> dict[str, Any]:
        choice = _choice(data.get("status"))
        await self.presence.set_choice(choice)
        return {"status": choice.value}

    @command("presence.activity.set")
    async def on_activity_set(self, data: dict[str, Any]) -> dict[str, Any]:
        activity = _label(data, "activity")
        location = _label(data, "location")
        await self.presence.set_activity(activity=activity, location=location)
        return {"activity": activity, "location": location}

    @command("presence.room.join")
    async def on_room_join(self, data: dict[str, Any]) -> dict[str, Any]:
        room = await room_authorize(user=self.user, room_name=data.get("room"))
        state = parse_room_state(data.get("state", "viewing"))
        if room.name not in self.rooms and len(self.rooms) >= MAX_ROOMS_PER_CONNECTION:
            raise AppError(ErrorCode.INVALID, "Too many rooms on one connection.")
        # Group first: a member who joins right after us must reach us.
        await self.join_group(room.group)
        try:
            members = await self.presence.join_room(room, state)
        except AppError:
            if room.name not in self.rooms:
                await self.leave_group(room.group)
            raise
        self.rooms[room.name] = room
        return {"room": room.name, "members": members}

    @command("presence.room.update")
    async def on_room_update(self, data: dict[str, Any]) -> dict[str, Any]:
        room = self._joined(data)
        state = parse_room_state(data.get("state"))
        await self.presence.set_room_state(room, state)
        return {"room": room.name, "state": state}

    @command("presence.room.leave")
    async def on_room_leave(self, data: dict[str, Any]) -> dict[str, Any]:
        room = self.rooms.pop(self._joined(data).name)
        await self.presence.leave_room(room)
        await self.leave_group(room.group)
        return {"room": room.name}

    @command("presence.user.watch")
    async def on_user_watch(self, data: dict[str, Any]) -> dict[str, Any]:
        ids = _user_ids(data)
        if len(self.watched | set(ids)) > settings.PRESENCE_MAX_WATCHED:
            raise AppError(
                ErrorCode.INVALID, f"Watch at most {settings.PRESENCE_MAX_WATCHED} users."
            )
        for user_id in ids:
            if user_id not in self.watched:
                await self.join_group(watch_group(user_id))
                self.watched.add(user_id)
        return {"users": await users_presence(user_ids=ids)}

    @command("presence.user.unwatch")
    async def on_user_unwatch(self, data: dict[str, Any]) -> dict[str, Any]:
        ids = _user_ids(data)
        for user_id in ids:
            if user_id in self.watched:
                self.watched.discard(user_id)
                await self.leave_group(watch_group(user_id))
        return {"ids": ids}

    @command("presence.signal.send")
    async def on_signal_send(self, data: dict[str, Any]) -> dict[str, Any]:
        await signal_send(user=self.user, room=self._joined(data), payload=data.get("data", {}))
        return {}

    def _joined(self, data: dict[str, Any]) -> Room:
        name = data.get("room")
        room = self.rooms.get(name) if isinstance(name, str) else None
        if room is None:
            raise AppError(ErrorCode.INVALID, "Join the room first.")
        return room


def _choice(value: object) -> Choice:
    try:
        return Choice(value)
    except ValueError:
        choices = ", ".join(c.value for c in Choice)
        raise AppError(ErrorCode.INVALID, f"'status' must be one of: {choices}.") from None


def _label(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
        raise AppError(ErrorCode.INVALID, f"'{key}' must be a string of at most {MAX_TEXT}.")
    return value


def _user_ids(data: dict[str, Any]) -> list[int]:
    ids = data.get("ids")
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= settings.PRESENCE_MAX_WATCHED
        or not all(type(i) is int and i > 0 for i in ids)
    ):
        raise AppError(ErrorCode.INVALID, "'ids' must be a non-empty list of user ids.")
    return list(dict.fromkeys(ids))
