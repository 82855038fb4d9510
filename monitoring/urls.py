from django.urls import path

from monitoring.api import SystemEventViewSet
from monitoring.staff_api import (
    AnnouncementViewSet,
    AppSwitchViewSet,
    ConnectionsViewSet,
    UserControlViewSet,
)

announcements = AnnouncementViewSet.as_view({"get": "list", "post": "create"})
announcement = AnnouncementViewSet.as_view({"get": "retrieve"})
announcement_withdraw = AnnouncementViewSet.as_view({"post": "withdraw"})

urlpatterns = [
    path("events/", SystemEventViewSet.as_view({"get": "list"}), name="monitoring-events"),
    path(
        "connections/",
        ConnectionsViewSet.as_view({"get": "list"}),
        name="monitoring-connections",
    ),
    path(
        "users/<bigid:user_id>/disconnect/",
        UserControlViewSet.as_view({"post": "disconnect"}),
        name="monitoring-user-disconnect",
    ),
    path("apps/", AppSwitchViewSet.as_view({"get": "list"}), name="monitoring-apps"),
    path(
        "apps/<str:app>/",
        AppSwitchViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="monitoring-app",
    ),
    path("announcements/", announcements, name="monitoring-announcements"),
    path("announcements/<bigid:announcement_id>/", announcement, name="monitoring-announcement"),
    path(
        "announcements/<bigid:announcement_id>/withdraw/",
        announcement_withdraw,
        name="monitoring-announcement-withdraw",
    ),
]
