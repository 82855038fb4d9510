from django.urls import path

from presence.views import RoomPresenceView, UsersPresenceView

urlpatterns = [
    path("users/", UsersPresenceView.as_view(), name="presence-users"),
    path("rooms/<str:room>/", RoomPresenceView.as_view(), name="presence-room"),
]
