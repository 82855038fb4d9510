from django.urls import path

from monitoring.api import SystemEventViewSet

urlpatterns = [
    path("events/", SystemEventViewSet.as_view({"get": "list"}), name="monitoring-events"),
]
