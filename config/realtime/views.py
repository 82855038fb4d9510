"""REST side of the realtime layer: WebSocket tickets."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import TicketRateThrottle
from config.realtime.sessions import session_ref
from config.realtime.tickets import ticket_issue


class TicketView(APIView):
    """A single-use ticket for a WebSocket handshake (``?ticket=``), valid on any worker."""

    throttle_classes = [TicketRateThrottle]

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "TicketOutput",
                {"ticket": serializers.CharField(), "expires_in": serializers.IntegerField()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        # Asked for with the session cookie: the socket will end with this session (logout,
        # expiry). With a token: it lives as long as the token does.
        by_session = isinstance(request.successful_authenticator, SessionAuthentication)
        session = session_ref(request.session.session_key) if by_session else None
        ticket = ticket_issue(user_id=request.user.pk, session=session)
        return Response(
            {"ticket": ticket, "expires_in": settings.REALTIME_TICKET_TTL_SECONDS},
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )
