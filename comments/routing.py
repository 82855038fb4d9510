websocket_urlpatterns: list = []  # this app's consumers arrive with its issue
