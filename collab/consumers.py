"""``/ws/collab/documents/<id>/``: edit a document together (DESIGN sections 4-6).

On join: ``collab.document.snapshot`` ``{"content", "version", "members"}``, or with
``?since=<version>`` the missed ``collab.op.applied`` events in order and then
``collab.document.resumed`` ``{"version", "members"}``. Every socket then gets every op exactly
once and in version order: the layer is only a fast path, so a gap (a broadcast lost or late,
or one's own op acked ahead of others' broadcasts) is filled from PostgreSQL before going on.
"""

from __future__ import annotations

from typing import Any

from collab import ot
from collab.selectors import (
    document_open,
    document_role,
    op_applied_data,
    operations_between,
)
from collab.services import document_group, operation_submit
from config.errors import AppError, ErrorCode
from config.realtime.broadcast import abroadcast
from config.realtime.consumer import command
from config.realtime.envelope import encode_event
from config.realtime.ordered import OrderedStreamConsumer, since_param
from config.realtime.orm import database_sync_to_async
from presence.rooms import Room

MAX_CLIENT_ID = 64


class DocumentConsumer(OrderedStreamConsumer):
    app = "collab"

    async def authorize(self) -> None:
        self.document_id = int(self.scope["url_route"]["kwargs"]["document_id"])
        if self.document_id >= 2**63:
            raise AppError(ErrorCode.NOT_FOUND, "No such document.")
        role = await database_sync_to_async(document_role)(
            user=self.user, document_id=self.document_id
        )
        if role is None:
            raise AppError(ErrorCode.NOT_FOUND, "No such document.")

    async def on_connect(self) -> None:
        self.group = self.stream = document_group(self.document_id)  # seq = version
        self.room = Room("document", str(self.document_id))
        self.editing = False
        # Subscribed before reading: an op committed meanwhile arrives after, and is dropped
        # if the read already had it.
        await self.join_group(self.group)
        await self.join_group(self.room.group)  # presence.member.joined / updated / left
        opening = await database_sync_to_async(document_open)(
            document_id=self.document_id, since=since_param(self.scope)
        )
        members = await self.presence.join_room(self.room, "viewing")
        if opening.content is not None:
            data = {"content": opening.content, "version": opening.version, "members": members}
            await self.send_frame("event", encode_event("collab.document.snapshot", data))
        else:
            await self.send_stream_frames([_applied(op, self.group) for op in opening.missed])
            data = {"version": opening.version, "members": members}
            await self.send_frame("event", encode_event("collab.document.resumed", data))
        self.sent = opening.version

    @command("collab.op.submit")
    async def on_op_submit(self, data: dict[str, Any]) -> dict[str, Any]:
        result = await self.write(
            operation_submit,
            document_id=self.document_id,
            base_version=data.get("version"),
            op=data.get("op"),
            client_id=data.get("client_id"),
            seq=data.get("seq"),
            user=self.user,
        )
        # Everything before our op first: the ack must find the client at version - 1.
        await self.catch_up(result.version - 1)
        self.sent = max(self.sent, result.version)
        if not self.editing:
            self.editing = True
            await self.presence.set_room_state(self.room, "editing")
        return {"version": result.version}

    @command("collab.cursor.set")
    async def on_cursor_set(self, data: dict[str, Any]) -> dict[str, Any]:
        version, cursor, selection, client_id = _cursor_input(data)
        if version > self.sent:
            raise AppError(ErrorCode.INVALID, "'version' is newer than any this socket was sent.")
        if version < self.sent:
            later = await database_sync_to_async(operations_between)(
                document_id=self.document_id, after=version, upto=self.sent
            )
            if len(later) != self.sent - version:
                raise AppError(ErrorCode.CONFLICT, "That version is too old; resync.")
            for operation in later:
                cursor = ot.transform_cursor(cursor, operation.op)
                selection = [ot.transform_cursor(p, operation.op) for p in selection]
        moved = {
            "user": {"id": self.user.pk, "username": self.user.get_username()},
            "client_id": client_id,
            "version": self.sent,
            "cursor": cursor,
            "selection": selection or None,
        }
        await abroadcast(self.group, "collab.cursor.moved", moved)
        return {"version": self.sent, "cursor": cursor}

    async def read_missed(self, after: int, upto: int) -> list[tuple[int, str]]:
        missed = await self.read(
            operations_between, document_id=self.document_id, after=after, upto=upto
        )
        return [_applied(operation, self.group) for operation in missed]


def _applied(operation: Any, stream: str) -> tuple[int, str]:
    """An op as the ``collab.op.applied`` frame a broadcast of it carries."""
    data = op_applied_data(operation)
    return operation.version, encode_event(
        "collab.op.applied", data, stream=stream, seq=operation.version
    )


def _cursor_input(data: dict[str, Any]) -> tuple[int, int, list[int], str | None]:
    version, cursor = data.get("version"), data.get("cursor")
    selection = data.get("selection") or []
    client_id = data.get("client_id")
    positions = [version, cursor, *selection] if isinstance(selection, list) else None
    if (
        positions is None
        or len(selection) not in (0, 2)
        or not all(type(p) is int and 0 <= p < 2**53 for p in positions)
    ):
        raise AppError(
            ErrorCode.INVALID,
            "Send 'version' and 'cursor' as integers, and 'selection' as [start, end] if any.",
        )
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 64):
        raise AppError(ErrorCode.INVALID, "'client_id' must be a string of at most 64.")
    return version, cursor, selection, client_id  # type: ignore[return-value]
