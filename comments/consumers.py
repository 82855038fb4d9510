"""``/ws/comments/threads/<id>/`` and ``/ws/comments/notifications/`` (DESIGN sections 4, 5, 8).

A thread socket gets ``comments.thread.snapshot`` ``{"thread", "comments", "more", "seq",
"members"}`` on join, or with ``?since=<seq>`` the events it missed, in order, then
``comments.thread.resumed`` ``{"seq", "members"}``. After that it gets every thread event exactly
once and in ``seq`` order (a gap, from a broadcast lost or late, is filled from PostgreSQL), its
own writes' events included: the ack carries the result, the event follows.

Typing is soft state: ``comments.typing.start`` is relayed as ``comments.typing.started``
``{"user", "expires_in"}`` at most every ``expires_in / 2`` seconds per socket, and lapses by
itself (``comments.typing.stopped``) ``COMMENTS_TYPING_SECONDS`` after the last start; clients
also drop it after ``expires_in`` should the socket's worker die. The socket is in the presence
room ``thread.<id>`` as viewing, commenting, typing or idle.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings

from comments import services
from comments.models import TargetKind
from comments.selectors import (
    events_between,
    may_see_thread,
    notification_payloads,
    notifications_for,
    target_role,
    thread_open,
    unread_count,
)
from comments.services import notification_group, target_group, thread_group
from config.errors import CLOSE_NOT_FOUND, AppError, ErrorCode
from config.realtime.broadcast import abroadcast
from config.realtime.consumer import RealtimeConsumer, command
from config.realtime.envelope import encode_event
from config.realtime.ordered import OrderedStreamConsumer, since_param
from config.realtime.orm import database_sync_to_async
from config.rest import MAX_ID
from presence.rooms import Room

# States a client may set in the thread's room; "typing" is set by typing itself.
CLIENT_STATES = ("viewing", "commenting", "idle")
LATEST_NOTIFICATIONS = 20
MAX_MISSED_NOTIFICATIONS = 200
# The message a socket sends itself when its typing lapses: handled in turn with its frames.
TYPING_LAPSED = "comments.typing.lapsed"


def _event_frame(event: Any, stream: str) -> tuple[int, str]:
    return event.seq, encode_event(event.type, event.data, stream=stream, seq=event.seq)


class ThreadConsumer(OrderedStreamConsumer):
    app = "comments"

    async def authorize(self) -> None:
        self.thread_id = int(self.scope["url_route"]["kwargs"]["thread_id"])
        if self.thread_id > MAX_ID or not await database_sync_to_async(may_see_thread)(
            user=self.user, thread_id=self.thread_id
        ):
            raise AppError(ErrorCode.NOT_FOUND, "No such thread.")

    async def on_connect(self) -> None:
        self.group = self.stream = thread_group(self.thread_id)
        self.room = Room("thread", str(self.thread_id))
        self.state = "viewing"  # what the client said it does; typing shows over it
        self.typing_until: float | None = None
        self.typing_relayed_at = 0.0
        self.typing_timer: asyncio.TimerHandle | None = None
        # Subscribed before reading: an event committed meanwhile arrives after, and is dropped
        # if the read already had it.
        await self.join_group(self.group)
        await self.join_group(self.room.group)  # presence.member.joined / updated / left
        opening = await database_sync_to_async(thread_open)(
            thread_id=self.thread_id, since=since_param(self.scope)
        )
        members = await self.presence.join_room(self.room, self.state)
        if opening.thread is not None:
            data = {
                "thread": opening.thread,
                "comments": opening.comments,
                "more": opening.more,
                "seq": opening.seq,
                "members": members,
            }
            await self.send_frame("event", encode_event("comments.thread.snapshot", data))
        else:
            await self.send_stream_frames([_event_frame(e, self.group) for e in opening.missed])
            data = {"seq": opening.seq, "members": members}
            await self.send_frame("event", encode_event("comments.thread.resumed", data))
        self.sent = opening.seq

    async def on_disconnect(self, code: int) -> None:
        if self.typing_until is not None:
            await self._typing_stopped(leaving=True)

    # --- writes: each commits, then its event reaches every viewer ---------------------------
    @command("comments.comment.create")
    async def on_comment_create(self, data: dict[str, Any]) -> dict[str, Any]:
        result = await self.write(
            services.comment_create,
            user=self.user,
            thread_id=self.thread_id,
            body=data.get("body"),
            client_msg_id=data.get("client_msg_id"),
            parent_id=data.get("parent_id"),
            code=data.get("code", ""),
            code_language=data.get("code_language", ""),
        )
        if self.typing_until is not None:  # the comment it was about is posted
            await self._typing_stopped()
        return {"comment": result.data, "seq": result.seq, "duplicate": result.duplicate}

    @command("comments.comment.edit")
    async def on_comment_edit(self, data: dict[str, Any]) -> dict[str, Any]:
        result = await self.write(
            services.comment_edit,
            user=self.user,
            comment_id=data.get("comment_id"),
            body=data.get("body"),
            code=data.get("code"),
            code_language=data.get("code_language"),
            in_thread=self.thread_id,
        )
        return {"comment": result.data, "seq": result.seq}

    @command("comments.comment.delete")
    async def on_comment_delete(self, data: dict[str, Any]) -> dict[str, Any]:
        result = await self.write(
            services.comment_delete,
            user=self.user,
            comment_id=data.get("comment_id"),
            in_thread=self.thread_id,
        )
        return {"comment": result.data, "seq": result.seq}

    @command("comments.reaction.add")
    async def on_reaction_add(self, data: dict[str, Any]) -> dict[str, Any]:
        return await self._react(data, present=True)

    @command("comments.reaction.remove")
    async def on_reaction_remove(self, data: dict[str, Any]) -> dict[str, Any]:
        return await self._react(data, present=False)

    async def _react(self, data: dict[str, Any], *, present: bool) -> dict[str, Any]:
        result = await self.write(
            services.reaction_set,
            user=self.user,
            comment_id=data.get("comment_id"),
            kind=data.get("kind"),
            present=present,
            in_thread=self.thread_id,
        )
        return {**result.data, "seq": result.seq}

    @command("comments.thread.resolve")
    async def on_thread_resolve(self, data: dict[str, Any]) -> dict[str, Any]:
        return await self._resolve(resolved=True)

    @command("comments.thread.reopen")
    async def on_thread_reopen(self, data: dict[str, Any]) -> dict[str, Any]:
        return await self._resolve(resolved=False)

    async def _resolve(self, *, resolved: bool) -> dict[str, Any]:
        result = await self.write(
            services.thread_resolve, user=self.user, thread_id=self.thread_id, resolved=resolved
        )
        return {**result.data, "seq": result.seq}

    # --- soft state: typing and what the viewer is doing --------------------------------------
    @command("comments.typing.start")
    async def on_typing_start(self, data: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        now, lasting = loop.time(), settings.COMMENTS_TYPING_SECONDS
        relay = self.typing_until is None or now - self.typing_relayed_at >= lasting / 2
        self.typing_until = now + lasting
        if self.typing_timer is None:
            self.typing_timer = self.message_self_at(self.typing_until, TYPING_LAPSED)
        if relay:  # at most one relay per half lifetime: clients keep it alive in between
            self.typing_relayed_at = now
            started = {"user": self._user_ref(), "expires_in": lasting}
            await abroadcast(self.group, "comments.typing.started", started)
            await self.presence.set_room_state(self.room, "typing")
        return {"expires_in": lasting}

    @command("comments.typing.stop")
    async def on_typing_stop(self, data: dict[str, Any]) -> dict[str, Any]:
        if self.typing_until is not None:
            await self._typing_stopped()
        return {}

    @command("comments.presence.set")
    async def on_presence_set(self, data: dict[str, Any]) -> dict[str, Any]:
        state = data.get("state")
        if state not in CLIENT_STATES:
            raise AppError(
                ErrorCode.INVALID, f"'state' must be one of: {', '.join(CLIENT_STATES)}."
            )
        self.state = state
        if self.typing_until is None:
            await self.presence.set_room_state(self.room, state)
        return {"state": state}

    async def comments_typing_lapsed(self, message: dict[str, Any]) -> None:
        self.typing_timer = None
        if self.typing_until is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self.typing_until:  # started again meanwhile: check again then
            self.typing_timer = self.message_self_at(self.typing_until, TYPING_LAPSED)
            return
        await self._typing_stopped()

    async def _typing_stopped(self, *, leaving: bool = False) -> None:
        self.typing_until = None
        if self.typing_timer is not None:
            self.typing_timer.cancel()
            self.typing_timer = None
        await abroadcast(self.group, "comments.typing.stopped", {"user": self._user_ref()})
        if not leaving:  # a closed socket leaves the room with its connection
            await self.presence.set_room_state(self.room, self.state)

    def _user_ref(self) -> dict[str, Any]:
        return {"id": self.user.pk, "username": self.user.get_username()}

    async def comments_thread_gone(self, message: dict[str, Any]) -> None:
        """The thread was deleted: say so, then close as for a thread that never existed."""
        await self.send_frame("event", message["frame"])
        await self.close(code=CLOSE_NOT_FOUND)

    async def read_missed(self, after: int, upto: int) -> list[tuple[int, str]]:
        missed = await self.read(events_between, thread_id=self.thread_id, after=after, upto=upto)
        return [_event_frame(event, self.group) for event in missed]


class NotificationConsumer(RealtimeConsumer):
    """The user's own notifications live, with the unread count; optionally the new, resolved
    and reopened threads of targets the user follows (``comments.target.watch``).

    On join: ``comments.notifications.snapshot`` ``{"unread", "notifications"}``: the latest,
    or with ``?since=<notification id>`` those after it (newest first)."""

    app = "comments"

    async def on_connect(self) -> None:
        self.watched: set[str] = set()
        await self.join_group(notification_group(self.user.pk))
        snapshot = await database_sync_to_async(self._snapshot)(since_param(self.scope))
        await self.send_frame("event", encode_event("comments.notifications.snapshot", snapshot))

    def _snapshot(self, since: int | None) -> dict[str, Any]:
        notifications = notifications_for(user_id=self.user.pk)
        if since is None:
            page = notifications[:LATEST_NOTIFICATIONS]
        else:
            page = notifications.filter(pk__gt=since)[:MAX_MISSED_NOTIFICATIONS]
        return {
            "unread": unread_count(user_id=self.user.pk),
            "notifications": notification_payloads(list(page), user_id=self.user.pk),
        }

    @command("comments.notifications.read")
    async def on_read(self, data: dict[str, Any]) -> dict[str, Any]:
        """``{"ids": [...]}`` marks those read, ``{"all": true}`` every one."""
        every = data.get("all", False)
        if not isinstance(every, bool) or every == ("ids" in data):
            raise AppError(ErrorCode.INVALID, "Send either 'ids' or 'all': true.")
        return await database_sync_to_async(services.notifications_mark_read)(
            user=self.user, ids=None if every else data.get("ids")
        )

    @command("comments.target.watch")
    async def on_target_watch(self, data: dict[str, Any]) -> dict[str, Any]:
        group = await self._target_group(data)
        if group not in self.watched:
            if len(self.watched) >= settings.COMMENTS_MAX_WATCHED_TARGETS:
                limit = settings.COMMENTS_MAX_WATCHED_TARGETS
                raise AppError(ErrorCode.INVALID, f"A socket follows at most {limit} targets.")
            await self.join_group(group)
            self.watched.add(group)
        return {}

    @command("comments.target.unwatch")
    async def on_target_unwatch(self, data: dict[str, Any]) -> dict[str, Any]:
        group = await self._target_group(data)
        if group in self.watched:
            self.watched.discard(group)
            await self.leave_group(group)
        return {}

    async def _target_group(self, data: dict[str, Any]) -> str:
        kind, target_id = data.get("target_kind"), data.get("target_id")
        if (
            kind not in TargetKind.values
            or type(target_id) is not int
            or not 0 < target_id <= MAX_ID
        ):
            raise AppError(ErrorCode.INVALID, "Send 'target_kind' and a positive 'target_id'.")
        await database_sync_to_async(target_role)(
            user=self.user, target_kind=kind, target_id=target_id
        )
        return target_group(kind, target_id)
