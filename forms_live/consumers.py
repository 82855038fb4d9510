"""The three sockets of a form (DESIGN sections 4, 5 and 8; issue 6).

``/ws/forms/<id>/edit/`` (members; viewers watch, owners and editors change): on join
``forms.form.snapshot`` ``{"form", "conflicts", "revision", "members"}``, or with
``?since=<revision>`` the missed changes in order, then ``forms.form.resumed``. Every change
is an event on stream ``forms.form.<id>`` with ``seq`` = the form revision, exactly once and in
order (gaps filled from PostgreSQL). Who edits which field is the presence room ``form.<id>``:
``forms.field.focus`` sets one's state to ``editing:<key>``.

``/ws/forms/<id>/fill/`` (anyone signed in, on a published form): on join
``forms.fill.snapshot`` ``{"form", "submission"}``, resuming one's submission (by account, or
``?submission=<token>`` on an anonymous form). Updates are acked with the validation feedback
and progress at once; status changes come as ``forms.submission.changed``.

``/ws/forms/<id>/dashboard/`` (owners and editors): on join ``forms.dashboard.snapshot``
``{"form", "analytics", "submissions"}``; then ``forms.dashboard.updated`` ``{"submissions",
"analytics"}`` at most every DASHBOARD_EVERY seconds, with the latest state of each submission
that changed since the last one.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from config.errors import AppError, ErrorCode
from config.realtime.consumer import RealtimeConsumer, command
from config.realtime.envelope import encode_event
from config.realtime.ordered import OrderedStreamConsumer, query_param, since_param
from config.realtime.orm import database_sync_to_async
from config.realtime.resume import gap_free, replayable
from config.rest import MAX_ID
from forms_live import services
from forms_live.permissions import can_build
from forms_live.selectors import (
    changes_between,
    dashboard_snapshot,
    edit_snapshot,
    fields_of,
    form_payload,
    form_revision,
    form_role,
    form_stats,
    form_to_fill,
    respondent_payload,
)
from presence.rooms import Room

DASHBOARD_EVERY = 0.25  # seconds: a few updates a second at most, however busy the form
DASHBOARD_FLUSH = "forms.dashboard.flush"  # the message a dashboard sends itself to flush


def _change_frame(change: Any, stream: str) -> tuple[int, str]:
    return change.revision, encode_event(
        change.type, change.data, stream=stream, seq=change.revision
    )


class FormConsumer(RealtimeConsumer):
    """What the three sockets share: the form id from the route, ids checked."""

    app = "forms"

    def form_id_from_route(self) -> int:
        form_id = int(self.scope["url_route"]["kwargs"]["form_id"])
        if form_id > MAX_ID:
            raise AppError(ErrorCode.NOT_FOUND, "No such form.")
        return form_id


class FormEditConsumer(FormConsumer, OrderedStreamConsumer):
    async def authorize(self) -> None:
        self.form_id = self.form_id_from_route()
        self.role = await database_sync_to_async(form_role)(user=self.user, form_id=self.form_id)
        if self.role is None:
            raise AppError(ErrorCode.NOT_FOUND, "No such form.")

    async def on_connect(self) -> None:
        self.stream = services.form_group(self.form_id)
        self.room = Room("form", str(self.form_id))
        await self.join_group(self.stream)
        await self.join_group(self.room.group)  # presence.member.*: who edits which field
        since = since_param(self.scope)
        missed = None
        if since is not None:
            missed = await database_sync_to_async(self._missed_since)(since)
        members = await self.presence.join_room(self.room, "viewing")
        if missed is None:
            snapshot = await database_sync_to_async(edit_snapshot)(form_id=self.form_id)
            snapshot["members"] = members
            await self.send_frame("event", encode_event("forms.form.snapshot", snapshot))
            self.sent = snapshot["revision"]
        else:
            revision, frames = missed
            await self.send_stream_frames(frames)
            self.sent = revision
            data = {"revision": revision, "members": members}
            await self.send_frame("event", encode_event("forms.form.resumed", data))

    def _missed_since(self, since: int) -> tuple[int, list[tuple[int, str]]] | None:
        """The changes after ``since`` if they are all still there, else None (a snapshot)."""
        revision = form_revision(form_id=self.form_id)
        if not replayable(since, revision):
            return None
        changes = changes_between(form_id=self.form_id, after=since, upto=revision)
        if not gap_free([c.revision for c in changes], since, revision):
            return None
        return revision, [_change_frame(c, self.stream) for c in changes]

    async def read_missed(self, after: int, upto: int) -> list[tuple[int, str]]:
        missed = await self.read(changes_between, form_id=self.form_id, after=after, upto=upto)
        return [_change_frame(change, self.stream) for change in missed]

    async def _change(self, write: Any, data: dict[str, Any], **fields: Any) -> dict[str, Any]:
        result = await self.write(
            write,
            user=self.user,
            form_id=self.form_id,
            client_msg_id=data.get("client_msg_id"),
            **fields,
        )
        return {
            "revision": result.revision,
            "outcome": result.outcome,
            "duplicate": result.duplicate,
            "data": result.data,
        }

    @command("forms.field.add")
    async def on_field_add(self, data: dict[str, Any]) -> dict[str, Any]:
        names = ("key", "type", "label", "help", "required", "rules", "options", "position")
        given = {name: data[name] for name in names if name in data}
        given.setdefault("key", None)
        given.setdefault("type", None)
        given.setdefault("label", None)
        return await self._change(
            services.field_add, data, base_revision=data.get("base_revision"), **given
        )

    @command("forms.field.remove")
    async def on_field_remove(self, data: dict[str, Any]) -> dict[str, Any]:
        return await self._change(
            services.field_remove,
            data,
            base_revision=data.get("base_revision"),
            key=data.get("key"),
        )

    @command("forms.field.move")
    async def on_field_move(self, data: dict[str, Any]) -> dict[str, Any]:
        return await self._change(
            services.field_move,
            data,
            base_revision=data.get("base_revision"),
            key=data.get("key"),
            position=data.get("position"),
        )

    @command("forms.field.change")
    async def on_field_change(self, data: dict[str, Any]) -> dict[str, Any]:
        return await self._change(
            services.field_change,
            data,
            base_revision=data.get("base_revision"),
            key=data.get("key"),
            prop=data.get("prop"),
            value=data.get("value"),
        )

    @command("forms.conflict.resolve")
    async def on_conflict_resolve(self, data: dict[str, Any]) -> dict[str, Any]:
        return await self._change(
            services.conflict_resolve,
            data,
            conflict_id=data.get("conflict_id"),
            resolution=data.get("resolution"),
            value=data.get("value"),
        )

    @command("forms.form.change")
    async def on_form_change(self, data: dict[str, Any]) -> dict[str, Any]:
        return await self._change(
            services.form_change,
            data,
            base_revision=data.get("base_revision"),
            prop=data.get("prop"),
            value=data.get("value"),
        )

    @command("forms.field.focus")
    async def on_field_focus(self, data: dict[str, Any]) -> dict[str, Any]:
        """``{"key": "email"}``: I am editing that field; ``{"key": null}``: none."""
        key = data.get("key")
        if key is not None and (
            not isinstance(key, str) or not key.isascii() or not 0 < len(key) <= 64
        ):
            raise AppError(ErrorCode.INVALID, "'key' must be a field key or null.")
        if not can_build(self.role):
            raise AppError(ErrorCode.FORBIDDEN, "Viewers do not edit fields.")
        await self.presence.set_room_state(
            self.room, "viewing" if key is None else f"editing:{key}"
        )
        return {}


class FormFillConsumer(FormConsumer):
    async def authorize(self) -> None:
        self.form_id = self.form_id_from_route()
        await database_sync_to_async(form_to_fill)(form_id=self.form_id)

    async def on_connect(self) -> None:
        headers = dict(self.scope.get("headers", []))
        user_agent = headers.get(b"user-agent", b"").decode("latin-1")
        submission = await database_sync_to_async(services.submission_start)(
            user=self.user,
            form_id=self.form_id,
            user_agent=user_agent,
            token=query_param(self.scope, "submission"),
        )
        self.token = submission.token
        await self.join_group(services.respondent_group(self.token))
        # A client that reconnects says so (?resumed=1): the same page is not viewed again.
        viewed = query_param(self.scope, "resumed") is None
        snapshot = await database_sync_to_async(self._snapshot)(submission, viewed)
        await self.send_frame("event", encode_event("forms.fill.snapshot", snapshot))

    def _snapshot(self, submission: Any, viewed: bool) -> dict[str, Any]:
        if viewed:
            services.form_viewed(form_id=self.form_id)
        form = form_to_fill(form_id=self.form_id)
        return {
            "form": form_payload(form, fields_of(form.pk)),
            "submission": respondent_payload(submission),
        }

    @command("forms.submission.update")
    async def on_update(self, data: dict[str, Any]) -> dict[str, Any]:
        result = await database_sync_to_async(services.submission_update)(
            user=self.user, form_id=self.form_id, token=self.token, values=data.get("values")
        )
        return {"submission": result.data, "revision": result.revision}

    @command("forms.submission.submit")
    async def on_submit(self, data: dict[str, Any]) -> dict[str, Any]:
        result = await database_sync_to_async(services.submission_submit)(
            user=self.user, form_id=self.form_id, token=self.token
        )
        return {
            "submission": result.data,
            "revision": result.revision,
            "duplicate": result.duplicate,
        }


class FormDashboardConsumer(FormConsumer):
    async def authorize(self) -> None:
        self.form_id = self.form_id_from_route()
        role = await database_sync_to_async(form_role)(user=self.user, form_id=self.form_id)
        if role is None:
            raise AppError(ErrorCode.NOT_FOUND, "No such form.")
        if not can_build(role):
            raise AppError(ErrorCode.FORBIDDEN, "The dashboard is for owners and editors.")

    async def on_connect(self) -> None:
        self.pending: dict[int, dict[str, Any]] = {}  # submission id -> its latest state
        self.flush_at: float | None = None
        self.last_flush = 0.0
        await self.join_group(services.dashboard_group(self.form_id))
        snapshot = await database_sync_to_async(dashboard_snapshot)(
            form_id=self.form_id, now=time.time()
        )
        await self.send_frame("event", encode_event("forms.dashboard.snapshot", snapshot))

    async def realtime_frame(self, message: dict[str, Any]) -> None:
        key = message.get("dedupe")
        if key is None or not key[0].startswith("forms.submission."):
            await super().realtime_frame(message)
            return
        if self._seen_before(*key):
            return
        submission = json.loads(message["frame"])["data"]["submission"]
        self.pending[submission["id"]] = submission
        self._flush_soon()

    async def forms_form_viewed(self, message: dict[str, Any]) -> None:
        self._flush_soon()  # services.FORM_VIEWED: the view shows in the next update's figures

    def _flush_soon(self) -> None:
        if self.flush_at is None:
            loop = asyncio.get_running_loop()
            self.flush_at = max(loop.time(), self.last_flush + DASHBOARD_EVERY)
            self.message_self_at(self.flush_at, DASHBOARD_FLUSH)

    async def forms_dashboard_flush(self, message: dict[str, Any]) -> None:
        changed, self.pending = list(self.pending.values()), {}
        self.flush_at = None
        self.last_flush = asyncio.get_running_loop().time()
        stats = await database_sync_to_async(form_stats)(form_id=self.form_id, now=time.time())
        data = {"submissions": changed, "analytics": stats.summary()}
        await self.send_frame("event", encode_event("forms.dashboard.updated", data))
