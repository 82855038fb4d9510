from django.urls import path

from collab.consumers import DocumentConsumer

websocket_urlpatterns = [
    path("ws/collab/documents/<int:document_id>/", DocumentConsumer.as_asgi()),
]
