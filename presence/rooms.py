"""Room names and who may join them. Pure.

A room is ``<kind>.<key>``: ``lobby.main``, later ``collab.doc.42``'s room ``document.42``.
Each kind names a rule for who may join; the lobby is open to every signed-in user. Apps add
their kinds (with a permission check) when they bring rooms of their own.

    room = parse_room("lobby.main")       # Room(kind="lobby", key="main")
    room.group                            # "presence.room.lobby.main"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from config.errors import AppError, ErrorCode
from config.realtime.groups import group_name

_ROOM = re.compile(r"^(?P<kind>[a-z][a-z_]{0,15})\.(?P<key>[A-Za-z0-9_-]{1,64})\Z")
OPEN_KINDS = frozenset({"lobby"})


@dataclass(frozen=True, slots=True)
class Room:
    kind: str
    key: str

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.key}"

    @property
    def group(self) -> str:
        return group_name("presence", "room", self.name)


def parse_room(value: object) -> Room:
    if not isinstance(value, str) or not (match := _ROOM.match(value)):
        raise AppError(
            ErrorCode.INVALID,
            "'room' must look like 'lobby.main': a kind, a dot, 1-64 of [A-Za-z0-9_-].",
        )
    if match["kind"] not in OPEN_KINDS:
        # Kinds without a rule yet are closed; the answer does not say whether the room exists.
        raise AppError(ErrorCode.NOT_FOUND, "No such room.")
    return Room(kind=match["kind"], key=match["key"])
