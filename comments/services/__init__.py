"""Writes to threads, comments, reactions and notifications (DESIGN sections 5 and 8).

    result = comment_create(user=ann, thread_id=7, body="Ship it, @bob?", client_msg_id="m-41")
    result.data       # the comment, as events and REST carry it
    result.seq        # the thread event it made (the original one for a resubmission)
    result.duplicate  # True when the key had been used: nothing new was stored or sent

Each write locks its thread's row, appends a ``ThreadEvent`` with the thread's next ``seq``
(gap-free: the lock orders writers on every worker), commits, and only then broadcasts the
event to the thread's group. A write that changes nothing (a second delete, a reaction that
is there already) stores and sends nothing and answers with ``seq`` None.

One module per sub-domain, imported in this order (each only from those before it): ``events``
(groups, results, appending events) and ``checks`` (input), ``notifications``, ``comments``,
``threads``, ``reactions``, ``attachments``. Import from this package, not from its modules.
"""

from comments.services.attachments import MAX_NAME, attachment_add
from comments.services.checks import MAX_CLIENT_MSG_ID, MAX_CODE_LANGUAGE, Text
from comments.services.comments import (
    comment_create,
    comment_delete,
    comment_edit,
    comment_moderate,
)
from comments.services.events import (
    Result,
    ThreadResult,
    notification_group,
    target_group,
    thread_group,
)
from comments.services.notifications import notifications_mark_read
from comments.services.reactions import reaction_set
from comments.services.threads import (
    MAX_TARGET_KEY,
    THREAD_GONE,
    target_threads_delete,
    thread_create,
    thread_delete,
    thread_resolve,
)

__all__ = [
    "MAX_CLIENT_MSG_ID",
    "MAX_CODE_LANGUAGE",
    "MAX_NAME",
    "MAX_TARGET_KEY",
    "THREAD_GONE",
    "Result",
    "Text",
    "ThreadResult",
    "attachment_add",
    "comment_create",
    "comment_delete",
    "comment_edit",
    "comment_moderate",
    "notification_group",
    "notifications_mark_read",
    "reaction_set",
    "target_group",
    "target_threads_delete",
    "thread_create",
    "thread_delete",
    "thread_group",
    "thread_resolve",
]
