"""The notifications page: the signed-in user's own notifications, newest first.

Thin, as collab/pages.py: the first page is read with the selectors the REST list and the
notifications socket read (the user's own notifications only, excerpts dropped where the user
lost the target), and comments/static/comments/notifications.js does the rest: older pages over
REST, new ones and read marks live over ``/ws/comments/notifications/``, marking read over REST.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from comments.selectors import (
    UNREAD_COUNT_CAP,
    notification_payloads,
    notifications_for,
    unread_count,
)

PAGE_SIZE = 20


@login_required
@require_http_methods(["GET"])
def notifications_page(request: HttpRequest) -> HttpResponse:
    user_id = request.user.pk
    # One more than shown says whether an older page exists, without a count over the inbox.
    page = list(notifications_for(user_id=user_id)[: PAGE_SIZE + 1])
    unread = unread_count(user_id=user_id)
    initial = {
        "notifications": notification_payloads(page[:PAGE_SIZE], user_id=user_id),
        "more": len(page) > PAGE_SIZE,
        "unread": unread,
        "page_size": PAGE_SIZE,
        "unread_cap": UNREAD_COUNT_CAP,
    }
    context = {"initial": initial, "unread_label": unread_label(unread)}
    return render(request, "comments/notifications.html", context)


def unread_label(unread: int) -> str:
    """The count as a badge shows it: the count stops at UNREAD_COUNT_CAP, so that is "99+"."""
    return f"{UNREAD_COUNT_CAP - 1}+" if unread >= UNREAD_COUNT_CAP else str(unread)
