from django.urls import path

from config.realtime.views import TicketView

urlpatterns = [path("tickets/", TicketView.as_view(), name="realtime-ticket")]
