"""REST for staff controls (DESIGN section 1, monitoring): live connection counts, disconnecting
a user, switching an app's real-time features, announcements.

GET  /api/monitoring/connections/                    staff
POST /api/monitoring/users/<id>/disconnect/          staff with monitoring.disconnect_user
GET  /api/monitoring/apps/, PATCH apps/<app>/        staff; PATCH with monitoring.change_appswitch
GET  /api/monitoring/announcements/[<id>/]           anyone signed in (the live ones); staff: all
POST /api/monitoring/announcements/                  staff with monitoring.add_announcement
POST /api/monitoring/announcements/<id>/withdraw/    staff with monitoring.change_announcement
"""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from config.errors import AppError, ErrorCode
from config.rest import ServiceViewSet
from monitoring import controls
from monitoring.events import client_ip
from monitoring.serializers import (
    AnnouncementInputSerializer,
    AnnouncementOutputSerializer,
    AnnouncementQuerySerializer,
    AnnouncementStaffOutputSerializer,
    AppSwitchInputSerializer,
    AppSwitchOutputSerializer,
    ConnectionsOutputSerializer,
    DisconnectOutputSerializer,
)


class StaffPermission(BasePermission):
    """Staff only (403 for others, as the staff socket's 4403); an action named in the view's
    ``action_perms`` also needs that Django permission (superusers have them all)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_staff):
            return False
        perm = getattr(view, "action_perms", {}).get(view.action)
        return perm is None or user.has_perm(perm)


class StaffViewSet(ServiceViewSet):
    permission_classes = [IsAuthenticated, StaffPermission]
    action_perms: ClassVar[dict[str, str]] = {}


class ConnectionsViewSet(StaffViewSet):
    pagination_class = None  # one overview, not pages: the schema must not describe pages

    @extend_schema(responses={200: ConnectionsOutputSerializer})
    def list(self, request: Request) -> Response:
        """Open sockets per app on every worker, as each reported them in the last seconds."""
        return Response(controls.connections_overview())


class UserControlViewSet(StaffViewSet):
    action_perms: ClassVar[dict[str, str]] = {"disconnect": "monitoring.disconnect_user"}

    @extend_schema(request=None, responses={202: DisconnectOutputSerializer})
    def disconnect(self, request: Request, user_id: int) -> Response:
        """Close every socket of the user on every worker (4401); they may sign in again
        unless the account is deactivated."""
        user = controls.user_disconnect(user_id=user_id, by=request.user, ip=client_ip(request))
        body = DisconnectOutputSerializer({"user": user}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class AppSwitchViewSet(StaffViewSet):
    pagination_class = None  # one switch per app, all at once: not pages
    inputs = {"partial_update": AppSwitchInputSerializer}
    action_perms: ClassVar[dict[str, str]] = {"partial_update": "monitoring.change_appswitch"}

    @extend_schema(responses={200: AppSwitchOutputSerializer(many=True)})
    def list(self, request: Request) -> Response:
        return Response(AppSwitchOutputSerializer(controls.app_switches(), many=True).data)

    @extend_schema(responses={200: AppSwitchOutputSerializer})
    def retrieve(self, request: Request, app: str) -> Response:
        return Response(AppSwitchOutputSerializer(controls.app_switch_get(app=app)).data)

    @extend_schema(responses={200: AppSwitchOutputSerializer})
    def partial_update(self, request: Request, app: str) -> Response:
        """Off: the app's sockets are closed and new ones refused with 4503 on every worker
        (within REALTIME_CONTROL_REFRESH_SECONDS at most); its REST API keeps working."""
        data = self.valid(request.data)
        switch = controls.app_switch_set(app=app, by=request.user, ip=client_ip(request), **data)
        return Response(AppSwitchOutputSerializer(switch).data)


class AnnouncementViewSet(StaffViewSet):
    inputs = {"create": AnnouncementInputSerializer, "list": AnnouncementQuerySerializer}
    action_perms: ClassVar[dict[str, str]] = {
        "create": "monitoring.add_announcement",
        "withdraw": "monitoring.change_announcement",
    }

    def get_permissions(self) -> list[BasePermission]:
        if self.action in ("list", "retrieve"):
            return [IsAuthenticated()]  # what every socket is sent, anyone signed in may read
        return super().get_permissions()

    def _staff(self) -> bool:
        return bool(self.request.user.is_staff)

    def _output(self, announcement: Any) -> dict[str, Any]:
        serializer = (
            AnnouncementStaffOutputSerializer if self._staff() else AnnouncementOutputSerializer
        )
        return serializer(announcement).data

    def _visible(self, live: bool) -> Any:
        return controls.announcements_live() if live else controls.announcements_all()

    @extend_schema(
        parameters=[AnnouncementQuerySerializer],
        responses={200: AnnouncementStaffOutputSerializer(many=True)},
    )
    def list(self, request: Request) -> Response:
        """The live announcements; staff see every one, newest first (``?live=true``: live)."""
        query = self.valid(request.query_params)
        live = not self._staff() or query.get("live", False)
        page = self.paginate_queryset(self._visible(live))
        return self.get_paginated_response([self._output(a) for a in page])

    @extend_schema(responses={200: AnnouncementStaffOutputSerializer})
    def retrieve(self, request: Request, announcement_id: int) -> Response:
        announcement = self._visible(not self._staff()).filter(pk=announcement_id).first()
        if announcement is None:
            raise AppError(ErrorCode.NOT_FOUND, "No such announcement.")
        return Response(self._output(announcement))

    @extend_schema(responses={201: AnnouncementStaffOutputSerializer})
    def create(self, request: Request) -> Response:
        """Sent at once to every connected socket on every worker, and to every socket that
        connects before it expires or is withdrawn (``monitoring.announcement.published``)."""
        data = self.valid(request.data)
        announcement = controls.announcement_create(by=request.user, ip=client_ip(request), **data)
        return Response(self._output(announcement), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: AnnouncementStaffOutputSerializer})
    def withdraw(self, request: Request, announcement_id: int) -> Response:
        """Every socket gets ``monitoring.announcement.withdrawn``; new ones no longer get it."""
        announcement = controls.announcement_withdraw(
            announcement_id=announcement_id, by=request.user, ip=client_ip(request)
        )
        return Response(self._output(announcement))
