"""Notifications: made for mentions, replies and reactions, sent to the recipient's group after
commit; marking them read."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from comments.models import Comment, Notification
from comments.selectors import notification_payload, unread_count
from comments.services.events import notification_group
from config.errors import AppError, ErrorCode
from config.realtime.broadcast import broadcast_on_commit


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
