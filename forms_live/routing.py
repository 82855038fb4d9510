from django.urls import path

from forms_live.consumers import FormDashboardConsumer, FormEditConsumer, FormFillConsumer

websocket_urlpatterns = [
    path("ws/forms/<int:form_id>/edit/", FormEditConsumer.as_asgi()),
    path("ws/forms/<int:form_id>/fill/", FormFillConsumer.as_asgi()),
    path("ws/forms/<int:form_id>/dashboard/", FormDashboardConsumer.as_asgi()),
]
