"""What the comments viewsets share: their base class (input serializers by action, the write
throttle), the path parameters of the schema, the upload parser, the notifications' pages.

    class ThreadViewSet(CommentsViewSet):
        inputs = {"create": ThreadInputSerializer}  # self.valid(request.data) checks with it
        writes = frozenset({"create"})              # these also count against comments_write
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from comments.models import Comment
from comments.selectors import may_see_thread, unread_count
from config.api import SharedRateThrottle
from config.errors import AppError, ErrorCode
from config.rest import Pagination, ServiceViewSet

# The URLs' converter admits 0 to 2**63 - 1; without these the schema would call them strings.
THREAD_ID = OpenApiParameter("thread_id", int, OpenApiParameter.PATH)
COMMENT_ID = OpenApiParameter("comment_id", int, OpenApiParameter.PATH)
ATTACHMENT_ID = OpenApiParameter("attachment_id", int, OpenApiParameter.PATH)
KIND = OpenApiParameter("kind", str, OpenApiParameter.PATH, description="A reaction kind.")
# What a multipart body may hold beyond the file itself: boundaries, headers, the file's name.
MULTIPART_OVERHEAD = 64 * 1024


class CommentWriteThrottle(SharedRateThrottle):
    """Every write to threads and comments, counted together per user, on top of the default."""

    scope = "comments_write"


class AttachmentParser(MultiPartParser):
    """Multipart, refused before it is parsed when it cannot hold a file within the limit."""

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH", "") if request is not None else ""
        limit = settings.COMMENTS_MAX_ATTACHMENT_BYTES
        if str(length).isdigit() and int(length) > limit + MULTIPART_OVERHEAD:
            raise AppError(ErrorCode.TOO_LARGE, f"Files are limited to {limit} bytes.")
        return super().parse(stream, media_type, parser_context)


class NotificationPagination(Pagination):
    """The project's pages, with the caller's unread count beside them."""

    def get_paginated_response(self, data: list[Any]) -> Response:
        response = super().get_paginated_response(data)
        response.data["unread"] = unread_count(user_id=self.request.user.pk)  # type: ignore[union-attr]
        return response

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["unread"] = {"type": "integer", "example": 3}
        paginated["required"] = [*paginated.get("required", []), "unread"]
        return paginated


class CommentsViewSet(ServiceViewSet):
    """Comments routes: writes also count against the shared ``comments_write`` rate."""

    write_throttle = CommentWriteThrottle


def _visible_comment(user: Any, comment_id: int, comments: QuerySet[Comment]) -> Comment:
    comment = comments.filter(pk=comment_id).first()
    if comment is None or not may_see_thread(user=user, thread_id=comment.thread_id):
        raise AppError(ErrorCode.NOT_FOUND, "No such comment.")
    return comment


def _gone(comment: Comment) -> bool:
    return comment.deleted_at is not None or comment.hidden_at is not None
