from django.urls import path

from comments.pages import notifications_page

urlpatterns = [
    path("", notifications_page, name="notifications-page"),
]
