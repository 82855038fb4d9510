"""The presence of this worker's connections: one ``ConnectionPresence`` per WebSocket.

Every RealtimeConsumer builds one (setting ``REALTIME_PRESENCE_TRACKER``), so a user counts as
present on any app's socket; apps use it for their rooms:

    await self.presence.join_room(Room("document", "42"), "viewing")  # -> member list
    await self.presence.set_room_state(room, "editing")
    await self.presence.leave_room(room)

One ``WorkerPresence`` per event loop keeps the local connections live in the store (one bulk
refresh every third of the TTL, not a write per heartbeat), notices users going idle, and reaps
connections that lapsed on workers that died.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from dataclasses import replace
from typing import Any

from django.conf import settings

from config.errors import AppError, ErrorCode
from monitoring import metrics
from presence.rooms import Room
from presence.services import (
    presence_publish,
    presence_reap,
    presence_save,
    room_cap,
    room_members,
)
from presence.state import Choice, ConnectionState, needs_input_write, turned_idle
from presence.store import Member, get_presence_store

log = logging.getLogger(__name__)

MAX_TEXT = 200  # activity and location: short labels, not documents
INPUT_WRITE_WAIT_SECONDS = 0.25  # a Redis write takes < 1 ms when Redis is well


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("a late presence write failed: %r", task.exception())


def _ttl() -> float:
    return float(settings.PRESENCE_TTL_SECONDS)


class ConnectionPresence:
    def __init__(self, user: Any, connection_id: str) -> None:
        self.user_id: int = user.pk
        self.member: Member = (user.pk, connection_id)
        self.state = ConnectionState(name=user.get_username(), last_input=time.time())
        self.open = False

    async def _save(self, cause: str) -> None:
        await presence_save(
            user_id=self.user_id,
            connection_id=self.member[1],
            connection=self.state,
            ttl=_ttl(),
            cause=cause,
        )

    async def opened(self) -> None:
        worker_presence().add(self)
        self.open = True
        await self._save("connected")

    async def closed(self) -> None:
        if not self.open:
            return
        self.open = False
        worker_presence().discard(self)
        await get_presence_store().drop_connection(self.member)
        await presence_publish(user_id=self.user_id, cause="disconnected")

    async def resave(self) -> None:
        """After a stall long enough for another worker to reap this live connection."""
        if self.open:
            await self._save("resaved")

    async def input(self) -> None:
        """The user did something on this connection (a command, or a heartbeat saying so)."""
        now = time.time()
        if needs_input_write(self.state.last_input, now, settings.PRESENCE_AWAY_SECONDS):
            self.state = replace(self.state, last_input=now)
            # Every command comes through here, ops included: a slow store (Redis stalled)
            # must not hold their answers (RELIABILITY F4). Soft state: the write may finish
            # late, in the background, and the bulk refresh repeats it anyway.
            saving = asyncio.ensure_future(self._save("input"))
            await asyncio.wait([saving], timeout=INPUT_WRITE_WAIT_SECONDS)
            if saving.done():
                saving.result()
            else:
                saving.add_done_callback(_log_failure)

    async def set_choice(self, choice: Choice) -> None:
        """For all of the user's connections, on every worker."""
        await get_presence_store().set_choice(self.user_id, choice)
        await presence_publish(user_id=self.user_id, cause="choice")

    async def set_activity(self, *, activity: str | None, location: str | None) -> None:
        now = time.time()
        self.state = replace(
            self.state, activity=activity, location=location, set_at=now, last_input=now
        )
        await self._save("activity")

    async def join_room(self, room: Room, state: str) -> list[dict[str, Any]]:
        """Enter a room (ROOM_FULL when its kind's cap is reached) and list its members."""
        now = time.time()
        cap = room_cap(room)
        # Without a cap, saving the connection enters the room; with one, count and enter first.
        if cap is not None and room.name not in self.state.rooms:
            entered = await get_presence_store().enter_room(
                self.member, room.name, cap=cap, expires=now + _ttl(), now=now
            )
            if not entered:
                raise AppError(ErrorCode.ROOM_FULL, "This room is full.")
        await self._set_room(room.name, state)
        return await room_members(room_name=room.name, viewer_id=self.user_id)

    async def set_room_state(self, room: Room, state: str) -> None:
        if room.name not in self.state.rooms:
            raise AppError(ErrorCode.INVALID, "Join the room first.")
        if self.state.rooms[room.name][0] != state:
            await self._set_room(room.name, state)

    async def _set_room(self, room_name: str, state: str) -> None:
        rooms = {**self.state.rooms, room_name: (state, time.time())}
        self.state = replace(self.state, rooms=rooms)
        await self._save("room")

    async def leave_room(self, room: Room) -> None:
        if room.name not in self.state.rooms:
            return
        rooms = {name: value for name, value in self.state.rooms.items() if name != room.name}
        self.state = replace(self.state, rooms=rooms)
        await get_presence_store().leave_room(self.member, room.name)
        await self._save("room")


class WorkerPresence:
    """This event loop's connections, kept live in the store by one task."""

    def __init__(self) -> None:
        self.connections: dict[Member, ConnectionPresence] = {}
        self.users: Counter[int] = Counter()
        self._task: asyncio.Task[None] | None = None

    def add(self, connection: ConnectionPresence) -> None:
        self.connections[connection.member] = connection
        self.users[connection.user_id] += 1
        self._gauges()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._keep_live())

    def discard(self, connection: ConnectionPresence) -> None:
        if self.connections.pop(connection.member, None) is not None:
            self.users[connection.user_id] -= 1
            if self.users[connection.user_id] <= 0:
                del self.users[connection.user_id]
        self._gauges()

    def _gauges(self) -> None:
        metrics.PRESENCE_CONNECTIONS.set(len(self.connections))
        metrics.PRESENCE_USERS.set(len(self.users))

    async def _keep_live(self) -> None:
        # Runs while this loop holds connections; reaping others' lapsed connections is also
        # done by the REST reads, so a worker with no sockets need not poll.
        tick = min(float(settings.PRESENCE_REAP_SECONDS), _ttl() / 3)
        last_tick = last_refresh = time.time()
        while self.connections:
            await asyncio.sleep(tick)
            now = time.time()
            try:
                if now - last_refresh >= _ttl() / 3:
                    await self.refresh()
                    last_refresh = now
                await self._publish_idle(before=last_tick, now=now)
                await presence_reap()
            except Exception:  # Redis away for a moment must not end presence for this worker
                log.warning("presence upkeep failed", exc_info=True)
            last_tick = now

    async def refresh(self) -> None:
        live = list(self.connections.values())
        rooms: dict[str, list[Member]] = {}
        for connection in live:
            for room in connection.state.rooms:
                rooms.setdefault(room, []).append(connection.member)
        lapsed = await get_presence_store().refresh(
            [c.member for c in live], rooms, expires=time.time() + _ttl()
        )
        for member in lapsed:
            if (connection := self.connections.get(member)) is not None:
                await connection.resave()

    async def _publish_idle(self, *, before: float, now: float) -> None:
        away_after = settings.PRESENCE_AWAY_SECONDS
        idle_users = {
            c.user_id
            for c in self.connections.values()
            if turned_idle(c.state.last_input, before=before, now=now, away_after=away_after)
        }
        for user_id in sorted(idle_users):
            await presence_publish(user_id=user_id, cause="idle")


_workers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WorkerPresence] = (
    weakref.WeakKeyDictionary()
)


def worker_presence() -> WorkerPresence:
    loop = asyncio.get_running_loop()
    worker = _workers.get(loop)
    if worker is None:
        worker = _workers[loop] = WorkerPresence()
    return worker
