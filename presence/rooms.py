"""Room names, and the rule of each room kind for who may see and join it. Pure.

A room is ``<kind>.<key>``: ``lobby.main``, ``document.42``, ``thread.7``. Each kind has a rule
``(user, key) -> bool``; an app registers the kinds it brings, with its own permission check,
when it starts (``AppConfig.ready``). The lobby is open to every signed-in user.

    ROOM_KINDS.register("document", lambda user, key: can_view_document(user, key))
    room = parse_room("lobby.main")       # Room(kind="lobby", key="main")
    room.group                            # "presence.room.lobby.main"
    ROOM_KINDS.rule("lobby")              # the rule, or None for a kind nobody registered
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config.errors import AppError, ErrorCode
from config.realtime.groups import group_name

_ROOM = re.compile(r"^(?P<kind>[a-z][a-z_]{0,15})\.(?P<key>[A-Za-z0-9_-]{1,64})\Z")
# A state, optionally about one thing in the room: "editing", "editing:email" (a form field).
_STATE = re.compile(r"^[a-z][a-z_]{0,23}(:[A-Za-z0-9_-]{1,64})?\Z")

RoomRule = Callable[[Any, str], bool]


@dataclass(frozen=True, slots=True)
class Room:
    kind: str
    key: str

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.key}"

    @property
    def group(self) -> str:
        return room_group(self.name)


def room_group(name: str) -> str:
    return group_name("presence", "room", name)


def parse_room(value: object) -> Room:
    """A well-formed room name of a registered kind; INVALID or NOT_FOUND otherwise."""
    if not isinstance(value, str) or not (match := _ROOM.match(value)):
        raise AppError(
            ErrorCode.INVALID,
            "'room' must look like 'lobby.main': a kind, a dot, 1-64 of [A-Za-z0-9_-].",
        )
    if ROOM_KINDS.rule(match["kind"]) is None:
        # Kinds without a rule are closed; the answer does not say whether the room exists.
        raise AppError(ErrorCode.NOT_FOUND, "No such room.")
    return Room(kind=match["kind"], key=match["key"])


def parse_room_state(value: object) -> str:
    """A member's state in a room: ``viewing``, ``editing``, ``typing``... chosen by each app,
    optionally with what it is about after a colon: ``editing:email``."""
    if not isinstance(value, str) or not _STATE.match(value):
        raise AppError(
            ErrorCode.INVALID,
            "'state' must be 1-24 of [a-z_], starting with a letter, then optionally a colon "
            "and 1-64 of [A-Za-z0-9_-].",
        )
    return value


def everyone(user: Any, key: str) -> bool:
    """The rule of open kinds: every signed-in user (the only users that get this far)."""
    return True


class RoomKinds:
    def __init__(self) -> None:
        self._rules: dict[str, RoomRule] = {}

    def register(self, kind: str, rule: RoomRule) -> None:
        if not _ROOM.match(f"{kind}.x"):
            raise ValueError(f"Not a valid room kind: {kind!r}")
        self._rules[kind] = rule

    def rule(self, kind: str) -> RoomRule | None:
        return self._rules.get(kind)

    def is_open(self, kind: str) -> bool:
        """Open kinds need no database: callers skip the thread hop for them."""
        return self._rules.get(kind) is everyone


ROOM_KINDS = RoomKinds()
ROOM_KINDS.register("lobby", everyone)
