"""REST routes of comments (DESIGN section 4), mounted at ``/api/comments/``."""

from __future__ import annotations

from django.urls import path

import config.rest  # noqa: F401  (registers the bigid route converter)
from comments.views import (
    AttachmentViewSet,
    CommentAttachmentViewSet,
    CommentViewSet,
    NotificationViewSet,
    ReactionViewSet,
    ThreadViewSet,
)

THREAD = "threads/<bigid:thread_id>/"
COMMENT = "comments/<bigid:comment_id>/"

urlpatterns = [
    path(
        "threads/",
        ThreadViewSet.as_view({"get": "list", "post": "create"}),
        name="comments-threads",
    ),
    path(THREAD, ThreadViewSet.as_view({"get": "retrieve"}), name="comments-thread"),
    path(
        f"{THREAD}resolve/",
        ThreadViewSet.as_view({"post": "resolve"}),
        name="comments-thread-resolve",
    ),
    path(
        f"{THREAD}reopen/",
        ThreadViewSet.as_view({"post": "reopen"}),
        name="comments-thread-reopen",
    ),
    path(
        f"{THREAD}events/",
        ThreadViewSet.as_view({"get": "events"}),
        name="comments-thread-events",
    ),
    path(
        "comments/",
        CommentViewSet.as_view({"get": "list", "post": "create"}),
        name="comments-comments",
    ),
    path(
        COMMENT,
        CommentViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="comments-comment",
    ),
    path(
        f"{COMMENT}revisions/",
        CommentViewSet.as_view({"get": "revisions"}),
        name="comments-comment-revisions",
    ),
    path(
        f"{COMMENT}reactions/",
        ReactionViewSet.as_view({"get": "list", "post": "create"}),
        name="comments-reactions",
    ),
    path(
        f"{COMMENT}reactions/<str:kind>/",
        ReactionViewSet.as_view({"delete": "destroy"}),
        name="comments-reaction",
    ),
    path(
        f"{COMMENT}attachments/",
        CommentAttachmentViewSet.as_view({"post": "create"}),
        name="comments-attachments",
    ),
    path(
        "attachments/<bigid:attachment_id>/",
        AttachmentViewSet.as_view({"get": "retrieve"}),
        name="comments-attachment",
    ),
    path(
        "notifications/",
        NotificationViewSet.as_view({"get": "list"}),
        name="comments-notifications",
    ),
    path(
        "notifications/read/",
        NotificationViewSet.as_view({"post": "read"}),
        name="comments-notifications-read",
    ),
    path(
        "notifications/read-all/",
        NotificationViewSet.as_view({"post": "read_all"}),
        name="comments-notifications-read-all",
    ),
]
