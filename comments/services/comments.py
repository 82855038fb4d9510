"""Comments: post (or reply), edit, delete, and moderate them; mentions and replies notify.

``_editable`` and ``_live`` are shared with reactions and attachments: the comment locked with
its thread, and the check that it was neither deleted nor hidden.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from comments.mentions import mentioned_usernames
from comments.models import Comment, CommentRevision, NotificationKind, Thread
from comments.selectors import comment_of, comment_payload, thread_for_user, visible_user_ids
from comments.services.checks import Text, _client_msg_id, _id, _text
from comments.services.events import Result, _append, _event_seq, _scrub
from comments.services.notifications import _notify
from comments.targets import can_delete
from config.errors import AppError, ErrorCode

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
    earlier = thread.comments.exclude(pk=comment.pk).order_by("created_at", "id")
    first = earlier.values_list("author_id").first()
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
