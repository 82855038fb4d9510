"""Reactions: a user adds or removes their own, and the comment's author is told once."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from comments.models import Comment, Notification, NotificationKind, Reaction
from comments.selectors import reaction_summary, visible_user_ids
from comments.services.checks import _reaction_kind
from comments.services.comments import _editable, _live
from comments.services.events import Result, _append
from comments.services.notifications import _notify


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
