from django.urls import path

from monitoring.pages import staff_page

urlpatterns = [
    path("", staff_page, name="staff-page"),
]
