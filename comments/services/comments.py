"""Writes to threads, comments, reactions and notifications (DESIGN sections 5 and 8).

    result = comment_create(user=ann, thread_id=7, body="Ship it, @bob?", client_msg_id="m-41")
    result.data       # the comment, as events and REST carry it
    result.seq        # the thread event it made (the original one for a resubmission)
    result.duplicate  # True when the key had been used: nothing new was stored or sent

Each write locks its thread's row, appends a ``ThreadEvent`` with the thread's next ``seq``
(gap-free: the lock orders writers on every worker), commits, and only then broadcasts the
event to the thread's group. A write that changes nothing (a second delete, a reaction that
is there already) stores and sends nothing and answers with ``seq`` None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from comments.files import HEAD_BYTES, sniff_content_type
from comments.mentions import mentioned_usernames
from comments.models import (
    MAX_BODY,
    Attachment,
    Comment,
    CommentRevision,
    Notification,
    NotificationKind,
    Reaction,
    ReactionKind,
    TargetKind,
    Thread,
    ThreadEvent,
)
from comments.selectors import (
    comment_of,
    comment_payload,
    notification_payload,
    reaction_summary,
    target_role,
    thread_for_user,
    thread_payload,
    unread_count,
    visible_user_ids,
)
from comments.targets import Anchor, can_delete, can_resolve
from config.errors import AppError, ErrorCode
from config.realtime.broadcast import broadcast_on_commit
from config.realtime.groups import group_name

MAX_CLIENT_MSG_ID = 64
MAX_TARGET_KEY = 64
MAX_CODE_LANGUAGE = 32
MAX_NAME = 200  # of an attachment
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


# --- input checks ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    body: str
    code: str
    code_language: str


def _text(body: object, code: object = "", code_language: object = "") -> Text:
    if not isinstance(body, str) or not body.strip():
        raise AppError(ErrorCode.INVALID, "'body' must be text and not empty.")
    if len(body) > MAX_BODY:
        raise AppError(ErrorCode.TOO_LARGE, f"'body' is limited to {MAX_BODY} characters.")
    code = "" if code is None else code
    code_language = "" if code_language is None else code_language
    if not isinstance(code, str) or not isinstance(code_language, str):
        raise AppError(ErrorCode.INVALID, "'code' and 'code_language' must be text.")
    if len(code) > settings.COMMENTS_MAX_CODE_CHARS:
        limit = settings.COMMENTS_MAX_CODE_CHARS
        raise AppError(ErrorCode.TOO_LARGE, f"'code' is limited to {limit} characters.")
    if len(code_language) > MAX_CODE_LANGUAGE or not all(
        ch.isascii() and (ch.isalnum() or ch in "+#-._") for ch in code_language
    ):
        raise AppError(ErrorCode.INVALID, "'code_language' must be up to 32 of [A-Za-z0-9+#-._].")
    if code_language and not code:
        raise AppError(ErrorCode.INVALID, "'code_language' needs 'code'.")
    if "\x00" in body or "\x00" in code:  # PostgreSQL text cannot hold NUL: a DataError, a 500
        raise AppError(ErrorCode.INVALID, "'body' and 'code' must not contain NUL characters.")
    return Text(body=body, code=code, code_language=code_language.lower())


def _client_msg_id(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CLIENT_MSG_ID or "\x00" in value:
        raise AppError(
            ErrorCode.INVALID, f"'client_msg_id' must be 1 to {MAX_CLIENT_MSG_ID} characters."
        )
    return value


def _id(value: object, name: str) -> int:
    if type(value) is not int or not 0 < value < 2**63:
        raise AppError(ErrorCode.INVALID, f"'{name}' must be a positive integer.")
    return value


def _reaction_kind(value: object) -> str:
    if value not in ReactionKind.values:
        raise AppError(
            ErrorCode.INVALID, f"'kind' must be one of: {', '.join(ReactionKind.values)}."
        )
    return value  # type: ignore[return-value]


# --- events ------------------------------------------------------------------------------------


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


# --- threads -----------------------------------------------------------------------------------


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


# --- comments ----------------------------------------------------------------------------------

_CREATED = "comments.comment.created"


def comment_create(
    *,
    user: Any,
    thread_id: int,
    body: object,
    client_msg_id: object,
    parent_id: object = None,
    code: object = "",
    code_language: object = "",
) -> Result:
    """A comment, or a reply to ``parent_id`` of the same thread; idempotent on the key."""
    text, key = _text(body, code, code_language), _client_msg_id(client_msg_id)
    thread_id = _id(thread_id, "thread_id")
    parent = None if parent_id is None else _id(parent_id, "parent_id")
    try:
        return _comment_create(user, thread_id, text, key, parent)
    except IntegrityError:  # the same key twice at once: the loser finds the winner's comment
        return _comment_create(user, thread_id, text, key, parent)


@transaction.atomic
def _comment_create(
    user: Any, thread_id: int, text: Text, key: str, parent_id: int | None
) -> Result:
    thread, _, _ = thread_for_user(user=user, thread_id=thread_id, lock=True)
    existing = Comment.objects.filter(thread=thread, author=user, client_msg_id=key).first()
    if existing is not None:
        return Result(
            comment_payload(comment_of(existing.pk)), _event_seq(existing, _CREATED), True
        )
    parent = None
    if parent_id is not None:
        parent = Comment.objects.filter(pk=parent_id, thread=thread).first()
        if parent is None:
            raise AppError(ErrorCode.INVALID, "'parent_id' must be a comment of this thread.")
    comment = _comment_store(thread, user, text, key, parent=parent)
    payload = comment_payload(comment)  # _comment_store filled what it reads
    return Result(payload, _append(thread, _CREATED, {"comment": payload}, comment=comment))


def _comment_store(
    thread: Thread, user: Any, text: Text, key: str, *, parent: Comment | None
) -> Comment:
    """Store a new comment, link and notify whom it mentions and answers. Its relations are
    known, so they are set on it, not read back: ``comment_payload`` reads it with no query."""
    comment = Comment.objects.create(
        thread=thread,
        parent=parent,
        author=user,
        body=text.body,
        code=text.code,
        code_language=text.code_language,
        client_msg_id=key,
    )
    named = _named_users(comment.body)
    replied_to = _replied_to(thread, comment, parent)
    asked = [u.pk for u in named] + ([replied_to] if replied_to is not None else [])
    visible = visible_user_ids(thread=thread, user_ids=asked)  # one read for both
    mentioned = [u for u in named if u.pk in visible]
    if mentioned:
        comment.mentions.add(*mentioned)
    comment._prefetched_objects_cache = {  # type: ignore[attr-defined]
        "mentions": mentioned,
        "attachments": [],
        "reactions": [],
    }
    for mentioned_user in mentioned:
        if mentioned_user.pk != user.pk:
            _notify(mentioned_user.pk, NotificationKind.MENTION, actor=user, comment=comment)
    mentioned_ids = {u.pk for u in mentioned}
    if replied_to in visible and replied_to not in mentioned_ids | {user.pk}:
        _notify(replied_to, NotificationKind.REPLY, actor=user, comment=comment)  # type: ignore[arg-type]
    return comment


def _replied_to(thread: Thread, comment: Comment, parent: Comment | None) -> int | None:
    """Whom a comment answers: its parent's author, or else the thread's first comment's."""
    if parent is not None:
        return parent.author_id
    first = thread.comments.exclude(pk=comment.pk).order_by("id").values_list("author_id").first()
    return None if first is None else first[0]


def _named_users(body: str) -> list[Any]:
    """Active users a body names with @, case-insensitively, in order of id (who may see the
    thread is the caller's question)."""
    names = mentioned_usernames(body)
    if not names:
        return []
    lookup = Q()
    for name in names:
        lookup |= Q(username__iexact=name)
    users = get_user_model().objects.filter(lookup, is_active=True).only("pk", "username")
    return list(users.order_by("pk"))


def _mention(comment: Comment, *, already: set[int]) -> set[int]:
    """Link the users an edited body mentions who may see the thread, and notify those not in
    ``already``. Names of users who may not see it stay plain text: nothing is revealed."""
    named = _named_users(comment.body)
    visible = visible_user_ids(thread=comment.thread, user_ids=[u.pk for u in named])
    comment.mentions.set(visible)
    for user_id in sorted(visible - already - {comment.author_id}):
        _notify(user_id, NotificationKind.MENTION, actor=comment.author, comment=comment)
    return visible


def _editable(user: Any, comment_id: object, in_thread: int | None) -> tuple[Thread, str, Comment]:
    """The comment locked with its thread, and the user's role; NOT_FOUND if they may not see
    it, or if it is not in ``in_thread`` (a thread's socket reaches only that thread's)."""
    comment_id = _id(comment_id, "comment_id")
    thread_id = Comment.objects.filter(pk=comment_id).values_list("thread_id", flat=True).first()
    if thread_id is None or in_thread not in (None, thread_id):
        raise AppError(ErrorCode.NOT_FOUND, "No such comment.")
    try:
        thread, _, role = thread_for_user(user=user, thread_id=thread_id, lock=True)
    except AppError:
        raise AppError(ErrorCode.NOT_FOUND, "No such comment.") from None
    return thread, role, Comment.objects.select_for_update().get(pk=comment_id)


def _live(comment: Comment) -> None:
    if comment.deleted_at is not None or comment.hidden_at is not None:
        raise AppError(ErrorCode.CONFLICT, "This comment was deleted or hidden.")


@transaction.atomic
def comment_edit(
    *,
    user: Any,
    comment_id: object,
    body: object,
    in_thread: int | None = None,
    code: object = None,
    code_language: object = None,
) -> Result:
    """The author changes the text; the text before goes to the history. ``code`` None keeps it."""
    thread, _, comment = _editable(user, comment_id, in_thread)
    if comment.author_id != user.pk:
        raise AppError(ErrorCode.FORBIDDEN, "Only the author edits a comment.")
    _live(comment)
    code = comment.code if code is None else code
    if code_language is None:  # kept, unless the snippet goes
        code_language = comment.code_language if code else ""
    text = _text(body, code, code_language)
    if (text.body, text.code, text.code_language) == (
        comment.body,
        comment.code,
        comment.code_language,
    ):
        return Result(comment_payload(comment_of(comment.pk)), None)
    CommentRevision.objects.create(comment=comment, body=comment.body, code=comment.code)
    before = set(comment.mentions.values_list("pk", flat=True))
    comment.body, comment.code, comment.code_language = text.body, text.code, text.code_language
    comment.edited_at = timezone.now()
    comment.save(update_fields=["body", "code", "code_language", "edited_at"])
    _mention(comment, already=before)
    payload = comment_payload(comment_of(comment.pk))
    return Result(
        payload, _append(thread, "comments.comment.edited", {"comment": payload}, comment=comment)
    )


@transaction.atomic
def comment_delete(*, user: Any, comment_id: object, in_thread: int | None = None) -> Result:
    """Soft: the comment keeps its place (replies stay under it), its text goes everywhere."""
    thread, role, comment = _editable(user, comment_id, in_thread)
    if not can_delete(role, is_comment_author=comment.author_id == user.pk):
        raise AppError(ErrorCode.FORBIDDEN, "Only the author or the owner deletes a comment.")
    if comment.deleted_at is not None:
        return Result(comment_payload(comment_of(comment.pk)), None)
    comment.deleted_at = timezone.now()
    comment.save(update_fields=["deleted_at"])
    payload = comment_payload(comment_of(comment.pk))
    _scrub(comment, payload)
    return Result(
        payload, _append(thread, "comments.comment.deleted", {"comment": payload}, comment=comment)
    )


@transaction.atomic
def comment_moderate(*, moderator: Any, comment_id: int, hidden: bool) -> Result:
    """Staff hide a comment (its text goes from every reader and replay) or restore it.
    Called from the admin, which has already checked the moderator's permission."""
    thread_id = Comment.objects.filter(pk=comment_id).values_list("thread_id", flat=True).first()
    if thread_id is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such comment.")
    # The thread's lock before the comment's, as every other write takes them: the other order
    # deadlocks against an edit or a reaction on the same comment.
    thread = Thread.objects.select_for_update().get(pk=thread_id)
    comment = Comment.objects.select_for_update().get(pk=comment_id)
    if (comment.hidden_at is not None) == hidden:
        return Result(comment_payload(comment_of(comment.pk)), None)
    comment.hidden_at = timezone.now() if hidden else None
    comment.hidden_by = moderator if hidden else None
    comment.save(update_fields=["hidden_at", "hidden_by"])
    payload = comment_payload(comment_of(comment.pk))
    if hidden:
        _scrub(comment, payload)
    event_type = "comments.comment.hidden" if hidden else "comments.comment.restored"
    return Result(payload, _append(thread, event_type, {"comment": payload}, comment=comment))


# --- reactions ---------------------------------------------------------------------------------


@transaction.atomic
def reaction_set(
    *, user: Any, comment_id: object, kind: object, present: bool, in_thread: int | None = None
) -> Result:
    """Add (``present``) or remove the user's reaction of one kind; doing it twice is a no-op."""
    kind = _reaction_kind(kind)
    thread, _, comment = _editable(user, comment_id, in_thread)
    _live(comment)
    mine = Reaction.objects.filter(comment=comment, user=user, kind=kind)
    if present:
        # No race to lose: the comment's row is locked. (get_or_create would add a savepoint.)
        changed = not mine.exists()
        if changed:
            Reaction.objects.create(comment=comment, user=user, kind=kind)
            if comment.author_id not in (None, user.pk):
                _notify_reaction(comment, actor=user)
    else:
        changed = mine.delete()[0] > 0
    data = {
        "comment_id": comment.pk,
        "kind": kind,
        "user": {"id": user.pk, "username": user.get_username()},
        "reactions": reaction_summary(list(comment.reactions.order_by("id"))),
    }
    if not changed:
        return Result(data, None)
    event_type = "comments.reaction.added" if present else "comments.reaction.removed"
    return Result(data, _append(thread, event_type, data, comment=comment))


def _notify_reaction(comment: Comment, *, actor: Any) -> None:
    # An author who lost the target is told nothing of it, as with mentions and replies.
    if not visible_user_ids(thread=comment.thread, user_ids=[comment.author_id]):  # type: ignore[list-item]
        return
    # One unread reaction notice per reacting user and comment: toggling is not a stream of pings.
    unread = Notification.objects.filter(
        recipient_id=comment.author_id,
        kind=NotificationKind.REACTION,
        actor=actor,
        comment=comment,
        read_at__isnull=True,
    )
    if not unread.exists():
        _notify(comment.author_id, NotificationKind.REACTION, actor=actor, comment=comment)  # type: ignore[arg-type]


# --- attachments -------------------------------------------------------------------------------


@transaction.atomic
def attachment_add(
    *, user: Any, comment_id: object, upload: Any, in_thread: int | None = None
) -> Result:
    """A file on one's own comment: size and type (read from its bytes) within the settings."""
    thread, _, comment = _editable(user, comment_id, in_thread)
    if comment.author_id != user.pk:
        raise AppError(ErrorCode.FORBIDDEN, "Only the author adds files to a comment.")
    _live(comment)
    limit = settings.COMMENTS_MAX_ATTACHMENT_BYTES
    if upload.size > limit:
        raise AppError(ErrorCode.TOO_LARGE, f"Files are limited to {limit} bytes.")
    if upload.size == 0:
        raise AppError(ErrorCode.INVALID, "The file is empty.")
    if comment.attachments.count() >= settings.COMMENTS_MAX_ATTACHMENTS:
        raise AppError(
            ErrorCode.INVALID, f"A comment holds at most {settings.COMMENTS_MAX_ATTACHMENTS} files."
        )
    name = (upload.name or "file").rsplit("/", 1)[-1][-MAX_NAME:]
    upload.seek(0)
    content_type = sniff_content_type(upload.read(HEAD_BYTES), name=name)
    upload.seek(0)
    if content_type not in settings.COMMENTS_ATTACHMENT_TYPES:
        allowed = ", ".join(settings.COMMENTS_ATTACHMENT_TYPES)
        raise AppError(ErrorCode.INVALID, f"Files must be one of: {allowed}.")
    Attachment.objects.create(
        comment=comment, file=upload, name=name, size=upload.size, content_type=content_type
    )
    payload = comment_payload(comment_of(comment.pk))
    return Result(
        payload, _append(thread, "comments.attachment.added", {"comment": payload}, comment=comment)
    )


# --- notifications -----------------------------------------------------------------------------


def _notify(recipient_id: int, kind: str, *, actor: Any, comment: Comment) -> None:
    notification = Notification.objects.create(
        recipient_id=recipient_id, kind=kind, actor=actor, thread=comment.thread, comment=comment
    )
    data = {
        "notification": notification_payload(notification),
        "unread": unread_count(user_id=recipient_id),
    }
    broadcast_on_commit(notification_group(recipient_id), "comments.notification.created", data)


@transaction.atomic
def notifications_mark_read(*, user: Any, ids: object = None) -> dict[str, Any]:
    """Mark the user's notifications read: those of ``ids``, or all when ``ids`` is None.
    Others' ids are ignored: the answer never says whether they exist."""
    unread = Notification.objects.filter(recipient_id=user.pk, read_at__isnull=True)
    if ids is not None:
        if (
            not isinstance(ids, list)
            or len(ids) > 1000
            or not all(type(i) is int and 0 < i < 2**63 for i in ids)
        ):
            raise AppError(ErrorCode.INVALID, "'ids' must be a list of up to 1000 ids.")
        unread = unread.filter(pk__in=ids)
    marked = sorted(unread.values_list("pk", flat=True))
    if marked:
        Notification.objects.filter(pk__in=marked).update(read_at=timezone.now())
    data = {"ids": marked, "unread": unread_count(user_id=user.pk)}
    if marked:
        broadcast_on_commit(notification_group(user.pk), "comments.notifications.read", data)
    return data
