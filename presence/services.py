"""Presence services for every app: rooms, member lists, publishing transitions, signals.

Other apps reach presence through their consumer's ``self.presence`` (presence/tracking.py),
which calls these; REST views call the read side directly.

    room = await room_authorize(user=user, room_name="lobby.main")
    members = await room_members(room_name="lobby.main", viewer_id=user.pk)
    await presence_publish(user_id=7, cause="closed")   # broadcasts only if the view changed

What observers hear (the group of every room the user is in or left, plus their watchers):

- ``presence.user.changed`` ``{"user", "status", "activity", "location"}`` on stream
  ``presence.user.<id>`` with a growing ``seq``; a socket in several of those groups gets it once.
- ``presence.member.joined`` / ``presence.member.updated`` ``{"room", "member", "version"}`` and
  ``presence.member.left`` ``{"room", "user", "version"}`` to the room concerned.

Never a connection id or an address: a member is a user id, a name, a status and a state.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from config.errors import AppError, ErrorCode
from config.realtime.broadcast import abroadcast
from config.realtime.groups import group_name
from config.realtime.orm import database_sync_to_async
from monitoring import metrics
from presence.rooms import ROOM_KINDS, Room, RoomRule, parse_room, room_group
from presence.state import (
    Choice,
    ConnectionState,
    PublicView,
    changes,
    public_view,
    room_states,
)
from presence.store import Decide, Published, get_presence_store

MAX_SIGNAL_BYTES = 4096
MAX_USERS_PER_QUERY = 100


def watch_group(user_id: int) -> str:
    return group_name("presence", "user", user_id)


def user_stream(user_id: int) -> str:
    return f"presence.user.{user_id}"


# --- rooms -------------------------------------------------------------------------------------


def _room_and_rule(room_name: object) -> tuple[Room, RoomRule]:
    room = parse_room(room_name)
    rule = ROOM_KINDS.rule(room.kind)
    if rule is None:  # unregistered since parse_room looked: treat as any unknown kind
        raise AppError(ErrorCode.NOT_FOUND, "No such room.")
    return room, rule


async def room_authorize(*, user: Any, room_name: object) -> Room:
    """The room, if ``user`` may see it; INVALID for a malformed name, NOT_FOUND otherwise."""
    room, rule = _room_and_rule(room_name)
    if ROOM_KINDS.is_open(room.kind):
        allowed = rule(user, room.key)
    else:  # the rule reads the database
        allowed = await database_sync_to_async(rule)(user, room.key)
    if not allowed:
        raise AppError(ErrorCode.NOT_FOUND, "No such room.")
    return room


def room_authorize_sync(*, user: Any, room_name: object) -> Room:
    """The same check for sync callers (REST views)."""
    room, rule = _room_and_rule(room_name)
    if not rule(user, room.key):
        raise AppError(ErrorCode.NOT_FOUND, "No such room.")
    return room


def room_cap(room: Room) -> int | None:
    return settings.PRESENCE_ROOM_CAPS.get(room.kind)


async def room_members(*, room_name: str, viewer_id: int | None = None) -> list[dict[str, Any]]:
    """Who is in a room, as published: two store round trips, whatever the room's size.

    A user who is invisible is in no room for others; ``viewer_id`` still sees themself.
    """
    views = await get_presence_store().room_views(room_name, now=time.time())
    members = [
        member_entry(user_id, view, room_name)
        for user_id, view in sorted(views.items())
        if room_name in view.rooms
    ]
    if viewer_id in views and room_name not in views[viewer_id].rooms:
        members.append(await _own_entry(viewer_id, room_name))
    return members


async def _own_entry(user_id: int, room_name: str) -> dict[str, Any]:
    connections, choice = await get_presence_store().user(user_id)
    # What others would see if the user were not invisible.
    visible = Choice.ONLINE if choice is Choice.INVISIBLE else choice
    return member_entry(user_id, _decide(connections, visible, time.time()), room_name)


def member_entry(user_id: int, view: PublicView, room_name: str) -> dict[str, Any]:
    return {
        "user": {"id": user_id, "username": view.name},
        "status": view.status.value,
        "state": view.rooms.get(room_name),
        "activity": view.activity,
        "location": view.location,
    }


# --- users -------------------------------------------------------------------------------------


async def users_presence(*, user_ids: Iterable[int]) -> list[dict[str, Any]]:
    """What others see of these users; ids that were never online read as offline."""
    views = await get_presence_store().views(user_ids)
    return [user_entry(user_id, view) for user_id, view in views.items()]


def user_entry(user_id: int, view: PublicView) -> dict[str, Any]:
    return {
        "user": {"id": user_id, "username": view.name},
        "status": view.status.value,
        "activity": view.activity,
        "location": view.location,
    }


async def presence_reap() -> int:
    """Drop connections whose worker stopped refreshing them, and tell their observers."""
    claimed = await get_presence_store().claim_expired(now=time.time())
    metrics.PRESENCE_REAPED.inc(len(claimed))
    for user_id in sorted({user_id for user_id, _ in claimed}):
        await presence_publish(user_id=user_id, cause="lapsed")
    return len(claimed)


# --- publishing --------------------------------------------------------------------------------


def _decide(connections: dict[str, ConnectionState], choice: Choice, now: float) -> PublicView:
    return public_view(
        connections.values(), choice, now=now, away_after=settings.PRESENCE_AWAY_SECONDS
    )


def _decider(now: float) -> Decide:
    return lambda connections, choice: _decide(connections, choice, now)


async def presence_publish(*, user_id: int, cause: str) -> bool:
    """Recompute what others see of a user; broadcast once if it changed. True if it did."""
    now = time.time()
    published = await get_presence_store().publish(user_id, _decider(now), now=now)
    return await _announce_published(user_id, published, cause)


async def presence_save(
    *, user_id: int, connection_id: str, connection: ConnectionState, ttl: float, cause: str
) -> bool:
    """Save one connection's state, then publish as ``presence_publish`` does."""
    now = time.time()
    published = await get_presence_store().save_and_publish(
        user_id, connection_id, connection, expires=now + ttl, decide=_decider(now), now=now
    )
    return await _announce_published(user_id, published, cause)


async def _announce_published(user_id: int, published: Published | None, cause: str) -> bool:
    if published is None:
        return False
    before, after, version = published
    metrics.PRESENCE_TRANSITIONS.labels(cause=cause).inc()
    await _announce(user_id, before, after, version)
    return True


async def _announce(user_id: int, before: PublicView, after: PublicView, version: int) -> None:
    diff = changes(before, after)
    user = {"id": user_id, "username": after.name or before.name}
    if diff.user_changed:
        data = {**user_entry(user_id, after), "user": user}
        groups = [watch_group(user_id)] + [room_group(r) for r in {*before.rooms, *after.rooms}]
        for group in groups:
            # One transition reaches a socket through every room it shares with the user:
            # stream and seq let it drop the copies (RealtimeConsumer.realtime_frame).
            await abroadcast(
                group,
                "presence.user.changed",
                data,
                stream=user_stream(user_id),
                seq=version,
                dedupe=True,
            )
    for kind, rooms in (("joined", diff.joined), ("updated", diff.updated)):
        for room in rooms:
            member = {**member_entry(user_id, after, room), "user": user}
            data = {"room": room, "member": member, "version": version}
            await abroadcast(room_group(room), f"presence.member.{kind}", data)
    for room in diff.left:
        data = {"room": room, "user": user, "version": version}
        await abroadcast(room_group(room), "presence.member.left", data)


# --- signals -----------------------------------------------------------------------------------


async def signal_send(*, user: Any, room: Room, payload: object) -> None:
    """An ephemeral signal to every member of a room, the sender included (the echo tells it the
    signal went out). Soft state: nothing is stored, delivery is best effort."""
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


async def presence_overview() -> list[dict[str, Any]]:
    """Every connected user with what others see and what they chose (the admin page)."""
    store = get_presence_store()
    now = time.time()
    user_ids = sorted(await store.online_user_ids(now=now))
    views = await store.views(user_ids)
    rows = []
    for user_id in user_ids:
        connections, choice = await store.user(user_id)
        if not connections:
            continue
        rows.append(
            {
                "user_id": user_id,
                "username": max(connections.values(), key=lambda c: c.set_at).name,
                "status": views[user_id].status.value,
                "choice": choice.value,
                "connections": len(connections),
                "rooms": room_states(connections.values()),
                "activity": views[user_id].activity,
                "location": views[user_id].location,
                "last_input": datetime.fromtimestamp(
                    max(c.last_input for c in connections.values()), tz=UTC
                ),
            }
        )
    return rows
