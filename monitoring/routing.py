from django.conf import settings
from django.urls import path

from monitoring.consumers import StaffEventsConsumer

websocket_urlpatterns = [
    path("ws/monitoring/events/", StaffEventsConsumer.as_asgi()),
]

if settings.REALTIME_BARE_BASELINE:  # the load test's baseline, never on by default
    from monitoring.baseline import BareRelayConsumer, LeanRelayConsumer

    websocket_urlpatterns += [
        path("ws/bench/bare/", BareRelayConsumer.as_asgi()),
        path("ws/bench/lean/", LeanRelayConsumer.as_asgi()),
    ]
