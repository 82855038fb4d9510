"""When the Django session a socket was opened under ends (RELIABILITY.md S2).

A socket authenticated by the session cookie, or by a ticket asked for with it, is closed
(4401) when that session ends: at logout (config/realtime/apps.py sends a control message to
every worker) and when it expires (the consumer sets a timer at connect from this module).

    expires_at = session_expiry("3kq...")   # epoch seconds, or None if it no longer exists
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.utils import timezone

from config.realtime.control import tell_workers_on_commit


def session_expiry(session_key: str) -> float | None:
    """When the session ends, in epoch seconds; None when it is gone or has ended. DB-backed
    engines (the default) answer from the row's expiry; others by the engine's own estimate."""
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if hasattr(store_class, "get_model_class"):
        ends = (
            store_class.get_model_class()
            .objects.filter(session_key=session_key, expire_date__gt=timezone.now())
            .values_list("expire_date", flat=True)
            .first()
        )
        return ends.timestamp() if ends is not None else None
    store = store_class(session_key=session_key)
    return store.get_expiry_date().timestamp() if store.exists(session_key) else None


def end_sockets_of_the_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """``user_logged_out`` receiver: every worker closes the sockets opened under the session
    (Django flushes the session after this signal, so its key is still the old one here)."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and session_key:
        message = {"action": "end_session", "user_id": user.pk, "session_key": session_key}
        tell_workers_on_commit(message)
