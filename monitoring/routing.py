from django.urls import path

from monitoring.consumers import StaffEventsConsumer

websocket_urlpatterns = [
    path("ws/monitoring/events/", StaffEventsConsumer.as_asgi()),
]
