"""Threads: start one on a target with its first comment (anchored in a document), resolve and
reopen it, delete it. Thread events also go to the target's group."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from comments.models import Attachment, TargetKind, Thread
from comments.selectors import (
    comment_of,
    comment_payload,
    target_role,
    thread_for_user,
    thread_payload,
)
from comments.services.checks import Text, _client_msg_id, _id, _text
from comments.services.comments import _CREATED, _comment_store
from comments.services.events import (
    Result,
    ThreadResult,
    _append,
    _event_seq,
    target_group,
    thread_group,
)
from comments.targets import Anchor, can_resolve
from config.errors import AppError, ErrorCode
from config.realtime.broadcast import broadcast_on_commit, group_send_on_commit
from config.realtime.envelope import encode_event

MAX_TARGET_KEY = 64


def thread_create(
    *,
    user: Any,
    target_kind: object,
    target_id: object,
    body: object,
    client_msg_id: object,
    target_key: object = "",
    anchor: object = None,
    code: object = "",
    code_language: object = "",
) -> ThreadResult:
    """A thread on a target with its first comment (events 1 and 2); idempotent on the key."""
    if target_kind not in TargetKind.values:
        raise AppError(
            ErrorCode.INVALID, f"'target_kind' must be one of: {', '.join(TargetKind.values)}."
        )
    target_id = _id(target_id, "target_id")
    target_key = "" if target_key is None else target_key
    if not isinstance(target_key, str) or len(target_key) > MAX_TARGET_KEY or "\x00" in target_key:
        raise AppError(
            ErrorCode.INVALID, f"'target_key' must be up to {MAX_TARGET_KEY} characters."
        )
    text, key = _text(body, code, code_language), _client_msg_id(client_msg_id)
    kind, _ = target_role(user=user, target_kind=target_kind, target_id=target_id)  # type: ignore[arg-type]
    found = _anchor(anchor, kind)
    if found is not None:
        found = kind.move_anchors(target_id, [found])[0]  # type: ignore[misc]
    try:
        return _thread_create(user, target_kind, target_id, target_key, found, text, key)  # type: ignore[arg-type]
    except IntegrityError:  # the same key twice at once: the loser finds the winner's thread
        return _thread_create(user, target_kind, target_id, target_key, found, text, key)  # type: ignore[arg-type]


def _anchor(value: object, kind: Any) -> Anchor | None:
    if value is None:
        return None
    if kind.move_anchors is None:
        raise AppError(ErrorCode.INVALID, f"Threads on a {kind.name} take no anchor.")
    fields = ("start", "end", "version")
    if not isinstance(value, dict) or set(value) != set(fields):
        raise AppError(ErrorCode.INVALID, '\'anchor\' must be {"start", "end", "version"}.')
    numbers = [value[name] for name in fields]
    if not all(type(n) is int and 0 <= n < 2**53 for n in numbers) or numbers[0] > numbers[1]:
        raise AppError(ErrorCode.INVALID, "'anchor' positions must be integers with start <= end.")
    return Anchor(*numbers)


@transaction.atomic
def _thread_create(
    user: Any,
    target_kind: str,
    target_id: int,
    target_key: str,
    anchor: Anchor | None,
    text: Text,
    key: str,
) -> ThreadResult:
    existing = Thread.objects.filter(created_by=user, client_msg_id=key).first()
    if existing is not None:
        first = existing.comments.order_by("id").first()
        if first is None:  # cannot happen: a thread is created with its first comment
            raise AppError(ErrorCode.CONFLICT, "That 'client_msg_id' was used.")
        payload = comment_payload(comment_of(first.pk))
        return ThreadResult(thread_payload(existing), payload, _event_seq(first, _CREATED), True)
    thread = Thread.objects.create(
        target_kind=target_kind,
        target_id=target_id,
        target_key=target_key,
        anchor_start=None if anchor is None else anchor.start,
        anchor_end=None if anchor is None else anchor.end,
        anchor_version=None if anchor is None else anchor.version,
        created_by=user,
        client_msg_id=key,
    )
    data = _thread_data(thread)
    _append(thread, "comments.thread.created", data)
    _to_target(thread, "comments.thread.created", data)
    comment = _comment_store(thread, user, text, key, parent=None)
    payload = comment_payload(comment)
    seq = _append(thread, _CREATED, {"comment": payload}, comment=comment)
    return ThreadResult(thread_payload(thread), payload, seq)


def _thread_data(thread: Thread) -> dict[str, Any]:
    """The data of a thread event, made before it is appended: its ``seq`` is that event's."""
    return {"thread": {**thread_payload(thread), "seq": thread.last_seq + 1}}


def _to_target(thread: Thread, event_type: str, data: dict[str, Any]) -> None:
    group = thread_group(thread.pk)
    broadcast_on_commit(
        target_group(thread.target_kind, thread.target_id),
        event_type,
        data,
        stream=group,
        seq=thread.last_seq,
        dedupe=True,
    )


@transaction.atomic
def thread_resolve(*, user: Any, thread_id: int, resolved: bool) -> Result:
    """Resolve (``resolved``) or reopen a thread: its target's editors and owners, and whoever
    started it."""
    thread, _, role = thread_for_user(user=user, thread_id=_id(thread_id, "thread_id"), lock=True)
    if not can_resolve(role, is_thread_author=thread.created_by_id == user.pk):
        raise AppError(ErrorCode.FORBIDDEN, "Only editors and the thread's author resolve it.")
    if (thread.resolved_at is not None) == resolved:
        return Result({"thread": thread_payload(thread)}, None)
    thread.resolved_at = timezone.now() if resolved else None
    thread.resolved_by = user if resolved else None
    thread.save(update_fields=["resolved_at", "resolved_by"])
    event_type = "comments.thread.resolved" if resolved else "comments.thread.reopened"
    data = _thread_data(thread)
    seq = _append(thread, event_type, data)
    _to_target(thread, event_type, data)
    return Result(data, seq)


# --- deleting ----------------------------------------------------------------------------------

# The layer message a thread's sockets get when the thread is gone: they tell the client and
# close (4404), as for a thread that never existed.
THREAD_GONE = "comments.thread.gone"


@transaction.atomic
def thread_delete(*, thread_id: int) -> bool:
    """Delete a thread with everything in it (staff, from the admin, which checks who may).
    Its sockets and the target's followers are told after commit; its files go then too."""
    return _threads_delete(Thread.objects.filter(pk=thread_id)) > 0


@transaction.atomic
def target_threads_delete(*, target_kind: str, target_id: int) -> int:
    """Delete every thread on a target that is being deleted (its app calls this in the
    same transaction), so no thread outlives what it was about."""
    return _threads_delete(Thread.objects.filter(target_kind=target_kind, target_id=target_id))


def _threads_delete(threads: QuerySet[Thread]) -> int:
    locked = list(threads.select_for_update().order_by("pk"))
    if not locked:
        return 0
    files = list(
        Attachment.objects.filter(comment__thread__in=locked).values_list("file", flat=True)
    )
    Thread.objects.filter(pk__in=[t.pk for t in locked]).delete()
    for thread in locked:
        data = {"thread": {"id": thread.pk}}
        gone = {"type": THREAD_GONE, "frame": encode_event("comments.thread.deleted", data)}
        group_send_on_commit(thread_group(thread.pk), gone)
        broadcast_on_commit(
            target_group(thread.target_kind, thread.target_id), "comments.thread.deleted", data
        )
    # Files are not rows: removed only once the rows are surely gone.
    transaction.on_commit(lambda: [default_storage.delete(name) for name in files if name])
    return len(locked)
