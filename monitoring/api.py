"""REST for staff: the system event log, newest first, filtered by kind, severity and since.

GET /api/monitoring/events/?kind=login_failed,security_alert&severity=critical&since=120
Others get 403 (forbidden), as the staff socket closes with 4403: this is a route for a role,
not someone else's object, so there is nothing to hide behind a 404.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from config.rest import ServiceViewSet
from monitoring.selectors import events_filtered
from monitoring.serializers import EventOutputSerializer, EventQuerySerializer


class SystemEventViewSet(ServiceViewSet):
    permission_classes = [IsAuthenticated, IsAdminUser]
    inputs = {"list": EventQuerySerializer}

    @extend_schema(
        parameters=[EventQuerySerializer], responses={200: EventOutputSerializer(many=True)}
    )
    def list(self, request: Request) -> Response:
        query = self.valid(request.query_params)
        events = events_filtered(
            kinds=query.get("kind", ()),
            severities=query.get("severity", ()),
            since=query.get("since"),
        )
        page = self.paginate_queryset(events)
        return self.get_paginated_response(EventOutputSerializer(page, many=True).data)
