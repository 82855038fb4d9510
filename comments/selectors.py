"""Reads of threads, comments and notifications, with the permission check every caller needs,
and the one shape each takes on the wire (events, acks, snapshots and REST alike).

    thread, kind, role = thread_for_user(user=user, thread_id=7)
    comment_payload(comment)    # {"id", "thread_id", "parent_id", "author", "body", ...}
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet

from comments.models import Comment, Notification, Reaction, Thread, ThreadEvent
from comments.targets import TARGET_KINDS, Anchor, TargetKind, can_read
from config.errors import AppError, ErrorCode
from config.realtime.resume import MAX_REPLAY, gap_free, replayable

MAX_SNAPSHOT_COMMENTS = 500  # a longer thread sends its latest; REST pages through the rest
EXCERPT = 140


def target_role(*, user: Any, target_kind: str, target_id: int) -> tuple[TargetKind, str]:
    """The target's kind and the user's role there; NOT_FOUND if they may not see it."""
    kind = TARGET_KINDS.get(target_kind)
    role = (
        kind.role(target_id, user.pk)
        if kind is not None and getattr(user, "is_authenticated", False)
        else None
    )
    if kind is None or not can_read(role):
        raise AppError(ErrorCode.NOT_FOUND, f"No such {target_kind.replace('_', ' ')}.")
    return kind, role  # type: ignore[return-value]


def thread_for_user(
    *, user: Any, thread_id: int, lock: bool = False
) -> tuple[Thread, TargetKind, str]:
    """The thread, its target's kind and the user's role on the target; NOT_FOUND for a thread
    that does not exist or whose target the user may not see (the same answer, DESIGN 8).
    ``lock`` takes the thread's row lock, which orders its events across workers."""
    threads = Thread.objects.select_for_update() if lock else Thread.objects.all()
    thread = threads.filter(pk=thread_id).first()
    if thread is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such thread.")
    try:
        kind, role = target_role(
            user=user, target_kind=thread.target_kind, target_id=thread.target_id
        )
    except AppError:
        raise AppError(ErrorCode.NOT_FOUND, "No such thread.") from None
    return thread, kind, role


def may_see_thread(*, user: Any, thread_id: int) -> bool:
    try:
        thread_for_user(user=user, thread_id=thread_id)
    except AppError:
        return False
    return True


def visible_user_ids(*, thread: Thread, user_ids: list[int]) -> set[int]:
    """Those of ``user_ids`` who may see the thread's target (and so be mentioned in it)."""
    kind = TARGET_KINDS.get(thread.target_kind)
    if kind is None or not user_ids:
        return set()
    return set(kind.roles(thread.target_id, user_ids))


# --- comments ----------------------------------------------------------------------------------


def comments_with_relations(comments: QuerySet[Comment]) -> QuerySet[Comment]:
    """What ``comment_payload`` reads, in a fixed number of queries for any number of them."""
    return comments.select_related("author").prefetch_related(
        "mentions",
        "attachments",
        Prefetch("reactions", queryset=Reaction.objects.order_by("id")),
    )


def comment_of(comment_id: int) -> Comment:
    return comments_with_relations(Comment.objects.filter(pk=comment_id)).get()


def user_ref(user: Any) -> dict[str, Any] | None:
    return None if user is None else {"id": user.pk, "username": user.get_username()}


def reaction_summary(reactions: list[Reaction]) -> list[dict[str, Any]]:
    """``[{"kind": "like", "count": 2, "users": [3, 9]}]``, kinds in order of first reaction."""
    users: dict[str, list[int]] = defaultdict(list)
    for reaction in reactions:
        users[reaction.kind].append(reaction.user_id)
    return [{"kind": kind, "count": len(ids), "users": ids} for kind, ids in users.items()]


def comment_payload(comment: Comment) -> dict[str, Any]:
    """A comment as every reader gets it. Deleted or hidden: its shape stays, its text goes."""
    gone = comment.deleted_at is not None or comment.hidden_at is not None
    return {
        "id": comment.pk,
        "thread_id": comment.thread_id,
        "parent_id": comment.parent_id,
        "author": user_ref(comment.author),
        "body": "" if gone else comment.body,
        "code": "" if gone else comment.code,
        "code_language": "" if gone else comment.code_language,
        "mentions": [] if gone else [user_ref(user) for user in comment.mentions.all()],
        "attachments": [] if gone else [attachment_payload(a) for a in comment.attachments.all()],
        "reactions": [] if gone else reaction_summary(list(comment.reactions.all())),
        "client_msg_id": comment.client_msg_id,
        "created_at": comment.created_at.isoformat(),
        "edited_at": _time(comment.edited_at),
        "deleted": comment.deleted_at is not None,
        "hidden": comment.hidden_at is not None,
    }


def attachment_payload(attachment: Any) -> dict[str, Any]:
    return {
        "id": attachment.pk,
        "name": attachment.name,
        "size": attachment.size,
        "content_type": attachment.content_type,
        # Served through the API, which checks the thread's permissions, never from MEDIA_URL.
        "url": f"/api/comments/attachments/{attachment.pk}/",
    }


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat()


# --- threads -----------------------------------------------------------------------------------


def thread_payload(thread: Thread, anchor: Anchor | None = None) -> dict[str, Any]:
    """A thread as every reader gets it. ``anchor``: the stored one moved to a later version."""
    if anchor is None and thread.anchor_version is not None:
        anchor = Anchor(thread.anchor_start, thread.anchor_end, thread.anchor_version)  # type: ignore[arg-type]
    return {
        "id": thread.pk,
        "target": {"kind": thread.target_kind, "id": thread.target_id, "key": thread.target_key},
        "anchor": None
        if anchor is None
        else {"start": anchor.start, "end": anchor.end, "version": anchor.version},
        "created_by": user_ref(thread.created_by),
        "created_at": thread.created_at.isoformat(),
        "resolved": thread.resolved_at is not None,
        "resolved_at": _time(thread.resolved_at),
        "resolved_by": user_ref(thread.resolved_by),
        "seq": thread.last_seq,
    }


def thread_payloads(threads: list[Thread]) -> list[dict[str, Any]]:
    """Payloads with every anchor moved to its target's current version: one read of each
    target's later edits, however many threads anchor in it."""
    anchored: dict[tuple[str, int], list[Thread]] = defaultdict(list)
    for thread in threads:
        if thread.anchor_version is not None:
            anchored[(thread.target_kind, thread.target_id)].append(thread)
    moved: dict[int, Anchor] = {}
    for (kind_name, target_id), group in anchored.items():
        kind = TARGET_KINDS.get(kind_name)
        if kind is None or kind.move_anchors is None:
            continue
        stored = [Anchor(t.anchor_start, t.anchor_end, t.anchor_version) for t in group]  # type: ignore[arg-type]
        for thread, anchor in zip(group, kind.move_anchors(target_id, stored), strict=True):
            moved[thread.pk] = anchor
    return [thread_payload(thread, moved.get(thread.pk)) for thread in threads]


def threads_of_target(*, target_kind: str, target_id: int, target_key: str | None = None):  # type: ignore[no-untyped-def]
    threads = Thread.objects.filter(target_kind=target_kind, target_id=target_id)
    if target_key is not None:
        threads = threads.filter(target_key=target_key)
    # The count groups rows, which drops the model's ordering: say it again.
    return (
        threads.select_related("created_by", "resolved_by")
        .annotate(comment_count=Count("comments", filter=Q(comments__deleted_at__isnull=True)))
        .order_by("-created_at", "-id")
    )


# --- resume ------------------------------------------------------------------------------------


def events_between(*, thread_id: int, after: int, upto: int | None = None) -> list[ThreadEvent]:
    events = ThreadEvent.objects.filter(thread_id=thread_id, seq__gt=after)
    if upto is not None:
        events = events.filter(seq__lte=upto)
    return list(events.order_by("seq"))


@dataclass(frozen=True, slots=True)
class ThreadOpening:
    """What a socket gets on join: a snapshot, or the events it missed since ``since``."""

    seq: int
    thread: dict[str, Any] | None  # None: replay ``missed`` instead
    comments: list[dict[str, Any]]
    more: bool  # older comments than the snapshot holds exist
    missed: list[ThreadEvent]


def thread_open(*, thread_id: int, since: int | None) -> ThreadOpening:
    thread = Thread.objects.select_related("created_by", "resolved_by").filter(pk=thread_id).first()
    if thread is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such thread.")
    current = thread.last_seq
    if replayable(since, current, MAX_REPLAY):
        missed = events_between(thread_id=thread_id, after=since, upto=current)
        if gap_free([event.seq for event in missed], since, current):  # type: ignore[arg-type]
            return ThreadOpening(current, None, [], False, missed)
    latest = list(
        comments_with_relations(thread.comments.order_by("-created_at", "-id"))[
            : MAX_SNAPSHOT_COMMENTS + 1
        ]
    )
    more = len(latest) > MAX_SNAPSHOT_COMMENTS
    comments = [comment_payload(c) for c in reversed(latest[:MAX_SNAPSHOT_COMMENTS])]
    return ThreadOpening(current, thread_payloads([thread])[0], comments, more, [])


# --- notifications -----------------------------------------------------------------------------


# A badge count stops here ("99+"): counting costs a read per unread row, and runs on every
# notification, so an inbox nobody reads must not make each new one slower. The exact number
# is the ``count`` of ``GET /api/comments/notifications/?unread=true``.
UNREAD_COUNT_CAP = 100


def unread_count(*, user_id: int) -> int:
    """Unread notifications of the user, up to UNREAD_COUNT_CAP."""
    unread = Notification.objects.filter(recipient_id=user_id, read_at__isnull=True)
    return unread.values("pk")[:UNREAD_COUNT_CAP].count()


def notifications_for(*, user_id: int) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient_id=user_id).select_related(
        "actor", "thread", "comment"
    )


def notification_payload(notification: Notification) -> dict[str, Any]:
    comment, thread = notification.comment, notification.thread
    gone = comment.deleted_at is not None or comment.hidden_at is not None
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "actor": user_ref(notification.actor),
        "thread_id": thread.pk,
        "comment_id": comment.pk,
        "target": {"kind": thread.target_kind, "id": thread.target_id, "key": thread.target_key},
        "excerpt": "" if gone else comment.body[:EXCERPT],
        "created_at": notification.created_at.isoformat(),
        "read_at": _time(notification.read_at),
    }


def notification_payloads(
    notifications: list[Notification], *, user_id: int
) -> list[dict[str, Any]]:
    """The user's notifications as they may read them now: where they have since lost the
    target, the excerpt goes (one role read per target on the page, not per notification)."""
    targets = {(n.thread.target_kind, n.thread.target_id) for n in notifications}
    lost = set()
    for kind_name, target_id in targets:
        kind = TARGET_KINDS.get(kind_name)
        if kind is None or kind.role(target_id, user_id) is None:
            lost.add((kind_name, target_id))
    payloads = []
    for notification in notifications:
        payload = notification_payload(notification)
        if (notification.thread.target_kind, notification.thread.target_id) in lost:
            payload["excerpt"] = ""
        payloads.append(payload)
    return payloads
