from django.urls import path

from comments.consumers import NotificationConsumer, ThreadConsumer

websocket_urlpatterns = [
    path("ws/comments/threads/<int:thread_id>/", ThreadConsumer.as_asgi()),
    path("ws/comments/notifications/", NotificationConsumer.as_asgi()),
]
