"""REST for comment threads, comments, reactions, attachments and notifications.

Bodies are the payloads of ``comments.selectors``, as WebSocket events carry them; a write
answers what the thread socket's ack holds: the changed object and the ``seq`` of the event it
made (None when nothing changed). A resubmitted ``client_msg_id`` answers 200 with the original
instead of 201. ``DELETE comments/<id>/`` answers 200 with the deleted comment (its text gone),
as the ``comments.comment.deleted`` event shows it.

Every route reads the thread through ``thread_for_user`` or a service that does: a thread,
comment or attachment whose target the caller may not see answers 404, as one that does not
exist; a role too low for the action answers 403. Writes also count against ``comments_write``.

One module per sub-domain: ``base`` (the shared viewset class, parameters, parser, pages),
``threads``, ``comments`` (with reactions and attachments) and ``notifications``.
"""

from comments.views.comments import (
    AttachmentViewSet,
    CommentAttachmentViewSet,
    CommentViewSet,
    ReactionViewSet,
)
from comments.views.notifications import NotificationViewSet
from comments.views.threads import ThreadViewSet

__all__ = [
    "AttachmentViewSet",
    "CommentAttachmentViewSet",
    "CommentViewSet",
    "NotificationViewSet",
    "ReactionViewSet",
    "ThreadViewSet",
]
