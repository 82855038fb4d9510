"""ASGI entry point: ``daphne config.asgi:application``.

HTTP goes to Django. A WebSocket handshake passes the Origin check (CSWSH), then authentication
(``?ticket=`` or the session cookie), then the router built from every app's ``routing.py``.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_http = get_asgi_application()  # sets Django up before the imports below touch models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from collab.routing import websocket_urlpatterns as collab_routes  # noqa: E402
from comments.routing import websocket_urlpatterns as comments_routes  # noqa: E402
from config.realtime import outbox  # noqa: E402
from config.realtime.auth import RealtimeAuthMiddleware  # noqa: E402
from forms_live.routing import websocket_urlpatterns as forms_routes  # noqa: E402
from monitoring.routing import websocket_urlpatterns as monitoring_routes  # noqa: E402
from presence.routing import websocket_urlpatterns as presence_routes  # noqa: E402

websocket_routes = [
    *presence_routes,
    *collab_routes,
    *comments_routes,
    *forms_routes,
    *monitoring_routes,
]

router = ProtocolTypeRouter(
    {
        "http": django_http,
        "websocket": OriginValidator(
            RealtimeAuthMiddleware(URLRouter(websocket_routes)),
            settings.REALTIME_ALLOWED_ORIGINS,
        ),
    }
)


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    # The broadcasts of writes made over REST are sent by this worker's loop too, after the
    # commit, without holding the ORM thread (config/realtime/outbox.py).
    outbox.bind()
    return await router(scope, receive, send)
