"""Events of a thread and the groups they go to: what every write shares.

    seq = _append(thread, "comments.comment.edited", {"comment": payload}, comment=comment)
    thread_group(thread.pk)  # the group its sockets join, and the stream name of its events
    return Result(payload, seq)  # or Result(payload, None) when nothing changed

``_append`` stores the thread's next event (the caller holds the thread's lock) and broadcasts it
after commit; ``_scrub`` blanks a deleted or hidden comment's text in the events before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comments.models import Comment, Thread, ThreadEvent
from config.realtime.broadcast import broadcast_on_commit
from config.realtime.groups import group_name

# Events whose data carries a comment's text: a delete or a hide blanks them for replays too.
_TEXT_EVENTS = (
    "comments.comment.created",
    "comments.comment.edited",
    "comments.comment.restored",
    "comments.attachment.added",
)


def thread_group(thread_id: int) -> str:
    """The channel-layer group of a thread's sockets, also the stream name of its events."""
    return group_name("comments", "thread", thread_id)


def target_group(target_kind: str, target_id: int) -> str:
    """Sockets following a target's threads: new ones, resolved and reopened ones."""
    return group_name("comments", "target", f"{target_kind}.{target_id}")


def notification_group(user_id: int) -> str:
    return group_name("comments", "notify", user_id)


@dataclass(frozen=True, slots=True)
class Result:
    data: dict[str, Any]
    seq: int | None  # the event made; None when nothing changed
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class ThreadResult:
    thread: dict[str, Any]
    comment: dict[str, Any]
    seq: int | None
    duplicate: bool = False


def _append(thread: Thread, event_type: str, data: dict[str, Any], *, comment=None) -> int:  # type: ignore[no-untyped-def]
    """Store the thread's next event and broadcast it after commit. Caller holds the lock."""
    thread.last_seq += 1
    Thread.objects.filter(pk=thread.pk).update(last_seq=thread.last_seq)
    ThreadEvent.objects.create(
        thread=thread, seq=thread.last_seq, type=event_type, data=data, comment=comment
    )
    group = thread_group(thread.pk)
    broadcast_on_commit(group, event_type, data, stream=group, seq=thread.last_seq, dedupe=True)
    return thread.last_seq


def _event_seq(comment: Comment, event_type: str) -> int | None:
    return (
        ThreadEvent.objects.filter(comment=comment, type=event_type)
        .values_list("seq", flat=True)
        .first()
    )


def _scrub(comment: Comment, payload: dict[str, Any]) -> None:
    """Earlier events replay the comment as it is now: a deleted text is not replayed."""
    ThreadEvent.objects.filter(comment=comment, type__in=_TEXT_EVENTS).update(
        data={"comment": payload}
    )
