urlpatterns: list = []  # monitoring's REST routes arrive with its issue
