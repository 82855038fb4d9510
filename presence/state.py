"""A user's presence from their live connections, and what of it to broadcast. Pure.

Each live WebSocket connection of a user (any app, any worker, any device) is a
``ConnectionState``; the user's choice (``Choice``) applies to all of them. Stored as JSON:

    {"input": 1700000000.5, "activity": "editing", "location": "/docs/42", "set_at": 1700000000.1,
     "rooms": {"document.42": ["editing", 1700000000.4]}, "name": "ada"}

``public_view`` turns a user's connections into what others see:

    PublicView(status="online", activity="editing", location="/docs/42",
               rooms={"document.42": "editing"})

- online: some connection had input within ``away_after`` seconds; away: none had;
- busy / away: the user chose it; offline: no connection left;
- invisible: the user chose it, and others see exactly what they would see if the user were
  offline (no activity, no location, in no room).

``changes(before, after)`` says what is worth broadcasting: nothing unless the view changed,
so heartbeats and repeated writes never reach observers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    """What others see."""

    ONLINE = "online"
    AWAY = "away"
    BUSY = "busy"
    OFFLINE = "offline"


class Choice(StrEnum):
    """What a user sets for all of their connections. ``online`` means "decide from my input"."""

    ONLINE = "online"
    AWAY = "away"
    BUSY = "busy"
    INVISIBLE = "invisible"


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """One live connection. Times are epoch seconds, passed in by the caller."""

    name: str  # the user's display name, so whoever publishes needs no database
    last_input: float
    activity: str | None = None
    location: str | None = None
    set_at: float = 0.0  # when activity/location were set: the latest connection's pair shows
    rooms: Mapping[str, tuple[str, float]] = field(default_factory=dict)  # room -> (state, since)


@dataclass(frozen=True, slots=True)
class PublicView:
    status: Status
    activity: str | None = None
    location: str | None = None
    rooms: Mapping[str, str] = field(default_factory=dict)  # room -> state
    name: str = ""

    def user_fields(self) -> tuple[object, ...]:
        """What ``presence.user.changed`` carries; the name alone never makes a change."""
        return (self.status, self.activity, self.location)


OFFLINE = PublicView(status=Status.OFFLINE)


def status_of(
    connections: Iterable[ConnectionState], choice: Choice, *, now: float, away_after: float
) -> Status:
    """The status others see."""
    live = list(connections)
    if not live or choice is Choice.INVISIBLE:
        return Status.OFFLINE
    if choice is Choice.BUSY:
        return Status.BUSY
    if choice is Choice.AWAY:
        return Status.AWAY
    active = any(now - c.last_input < away_after for c in live)
    return Status.ONLINE if active else Status.AWAY


def public_view(
    connections: Iterable[ConnectionState], choice: Choice, *, now: float, away_after: float
) -> PublicView:
    live = list(connections)
    status = status_of(live, choice, now=now, away_after=away_after)
    if status is Status.OFFLINE:
        return OFFLINE
    latest = max(live, key=_recency)
    return PublicView(
        status=status,
        activity=latest.activity,
        location=latest.location,
        rooms=room_states(live),
        name=latest.name,
    )


def _recency(c: ConnectionState) -> tuple[object, ...]:
    # Ties (same clock reading on two tabs) are broken on what is shown, so the view never
    # depends on the order the store returns connections in.
    shown = (c.activity is not None, c.activity or "", c.location is not None, c.location or "")
    return (c.set_at, c.last_input, *shown, c.name)


def room_states(connections: Iterable[ConnectionState]) -> dict[str, str]:
    """Each room the user is in, with the state most recently set by any of their connections."""
    newest: dict[str, tuple[float, str]] = {}
    for connection in connections:
        for room, (state, since) in connection.rooms.items():
            if room not in newest or (since, state) > newest[room]:
                newest[room] = (since, state)
    return {room: state for room, (_, state) in sorted(newest.items())}


@dataclass(frozen=True, slots=True)
class Changes:
    """What one transition broadcasts: a user event and per-room member events."""

    user_changed: bool = False
    joined: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    left: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.user_changed or bool(self.joined or self.updated or self.left)

    @property
    def rooms(self) -> tuple[str, ...]:
        """Every room whose members must hear of this transition."""
        return tuple(sorted({*self.joined, *self.updated, *self.left}))


def changes(before: PublicView, after: PublicView) -> Changes:
    if before == after:
        return Changes()
    old, new = before.rooms, after.rooms
    return Changes(
        user_changed=before.user_fields() != after.user_fields(),
        joined=tuple(sorted(new.keys() - old.keys())),
        updated=tuple(sorted(r for r in new.keys() & old.keys() if new[r] != old[r])),
        left=tuple(sorted(old.keys() - new.keys())),
    )


def needs_input_write(stored_input: float, now: float, away_after: float) -> bool:
    """Whether fresh input must be written through to the store.

    Writing every keystroke would cost a store write per heartbeat per tab; writing only when
    the stored time is older than a tenth of ``away_after`` shows someone away at most 10 %
    early, and an away user's first input is always written (it is older than that).
    """
    return now - stored_input >= away_after / 10


def turned_idle(last_input: float, *, before: float, now: float, away_after: float) -> bool:
    """Whether a connection crossed the idle threshold between two checks."""
    return before - last_input < away_after <= now - last_input


# --- JSON forms kept in the store ------------------------------------------------------------


def dump_connection(connection: ConnectionState) -> str:
    return json.dumps(
        {
            "name": connection.name,
            "input": connection.last_input,
            "activity": connection.activity,
            "location": connection.location,
            "set_at": connection.set_at,
            "rooms": {room: list(pair) for room, pair in connection.rooms.items()},
        },
        separators=(",", ":"),
    )


def load_connection(text: str) -> ConnectionState:
    raw = json.loads(text)
    return ConnectionState(
        name=raw["name"],
        last_input=raw["input"],
        activity=raw["activity"],
        location=raw["location"],
        set_at=raw["set_at"],
        rooms={room: (state, since) for room, (state, since) in raw["rooms"].items()},
    )


def dump_view(view: PublicView, version: int) -> str:
    return json.dumps(
        {
            "v": version,
            "status": view.status.value,
            "activity": view.activity,
            "location": view.location,
            "rooms": dict(view.rooms),
            "name": view.name,
        },
        separators=(",", ":"),
    )


def load_view(text: str | None) -> tuple[PublicView, int]:
    """The stored view and its version; nothing stored reads as offline at version 0."""
    if text is None:
        return OFFLINE, 0
    raw = json.loads(text)
    view = PublicView(
        status=Status(raw["status"]),
        activity=raw["activity"],
        location=raw["location"],
        rooms=raw["rooms"],
        name=raw["name"],
    )
    return view, raw["v"]


def next_version(previous: int, now: float) -> int:
    """Versions only grow, even after the stored view lapsed: milliseconds, or one more."""
    return max(previous + 1, int(now * 1000))
