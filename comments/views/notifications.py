"""REST for the caller's own notifications: list them, mark them read."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from comments.models import Notification
from comments.selectors import notification_payloads, notifications_for
from comments.serializers import (
    NotificationOutputSerializer,
    NotificationQuerySerializer,
    NotificationsReadInputSerializer,
    NotificationsReadOutputSerializer,
)
from comments.services import notifications_mark_read
from comments.views.base import CommentsViewSet, NotificationPagination


class NotificationViewSet(CommentsViewSet):
    """The caller's own notifications, newest first, and marking them read."""

    pagination_class = NotificationPagination
    inputs = {"list": NotificationQuerySerializer, "read": NotificationsReadInputSerializer}

    def get_queryset(self) -> QuerySet[Any]:
        return Notification.objects.none()

    @extend_schema(
        parameters=[NotificationQuerySerializer],
        responses={200: NotificationOutputSerializer(many=True)},
    )
    def list(self, request: Request) -> Response:
        unread = self.valid(request.query_params)["unread"]
        notifications = notifications_for(user_id=request.user.pk)
        if unread is not None:
            notifications = notifications.filter(read_at__isnull=unread)
        page = self.paginate_queryset(notifications)
        payloads = notification_payloads(list(page), user_id=request.user.pk)  # type: ignore[arg-type]
        return self.get_paginated_response(payloads)

    @extend_schema(
        request=NotificationsReadInputSerializer,
        responses={200: NotificationsReadOutputSerializer},
        description="Others' ids are ignored.",
    )
    def read(self, request: Request) -> Response:
        ids = self.valid(request.data)["ids"]
        return Response(notifications_mark_read(user=request.user, ids=ids))

    @extend_schema(request=None, responses={200: NotificationsReadOutputSerializer})
    def read_all(self, request: Request) -> Response:
        return Response(notifications_mark_read(user=request.user))
