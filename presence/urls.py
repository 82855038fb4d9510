urlpatterns: list = []  # this app's REST routes arrive with its issue
