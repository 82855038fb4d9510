"""REST reads of presence: users by id, and a room's members (only for who may see the room)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from presence.serializers import (
    RoomPresenceOutputSerializer,
    UsersPresenceOutputSerializer,
    UsersPresenceQuerySerializer,
)
from presence.services import (
    presence_reap,
    room_authorize_sync,
    room_members,
    users_presence,
)


@async_to_sync
async def _fresh_users(user_ids: list[int]) -> list[dict]:
    # Reaping first: with no socket on any worker, no worker polls for lapsed connections.
    await presence_reap()
    return await users_presence(user_ids=user_ids)


@async_to_sync
async def _fresh_members(room_name: str, viewer_id: int) -> list[dict]:
    await presence_reap()
    return await room_members(room_name=room_name, viewer_id=viewer_id)


class UsersPresenceView(APIView):
    """What others see of these users: status, activity and location."""

    @extend_schema(
        parameters=[OpenApiParameter("ids", str, required=True, description="e.g. 3,7,12")],
        responses={200: UsersPresenceOutputSerializer},
    )
    def get(self, request: Request) -> Response:
        query = UsersPresenceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response({"results": _fresh_users(query.validated_data["ids"])})


class RoomPresenceView(APIView):
    """Who is in a room now; 404 for a room you may not see, as for one that does not exist."""

    @extend_schema(responses={200: RoomPresenceOutputSerializer})
    def get(self, request: Request, room: str) -> Response:
        found = room_authorize_sync(user=request.user, room_name=room)
        members = _fresh_members(found.name, request.user.pk)
        return Response({"room": found.name, "members": members})
