"""When the Django session a socket was opened under ends (RELIABILITY.md S2).

A socket authenticated by the session cookie, or by a ticket asked for with it, is closed
(4401) when that session ends: at logout (``end_sockets_of_the_session``, a ``user_logged_out``
receiver, tells every worker) and when it expires (the consumer sets a timer at connect).

Sockets, tickets and control messages know a session by a hash of its key, never the key: a
Redis dump or a pub/sub message must hold nothing that works as a session cookie.

    ref = session_ref("3kq...")     # SessionRef(hash="9f2c...", ends_at=1765...), or None
    await session_ended(ref.hash)   # True once it was logged out (for TICKET_TTL after)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.conf import settings
from django.utils import timezone

from config.realtime.control import tell_workers_on_commit
from config.realtime.kv import get_store


@dataclass(frozen=True)
class SessionRef:
    hash: str
    ends_at: float  # epoch seconds


def session_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def session_ref(session_key: str) -> SessionRef | None:
    """The session's hash and when it ends; None when it is gone or has ended. DB-backed
    engines (the default) answer from the row's expiry; others by the engine's own estimate."""
    ends_at = _session_expiry(session_key)
    return SessionRef(session_hash(session_key), ends_at) if ends_at is not None else None


def _session_expiry(session_key: str) -> float | None:
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


def _ended_key(hashed: str) -> str:
    return f"session-ended:{hashed}"


async def session_ended(hashed: str) -> bool:
    """Logged out lately: a ticket asked for under it before the logout must not open a socket
    after it (tickets live REALTIME_TICKET_TTL_SECONDS; the mark twice that)."""
    return await get_store().aget(_ended_key(hashed)) is not None


def end_sockets_of_the_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """``user_logged_out`` receiver: every worker closes the sockets opened under the session
    (Django flushes the session after this signal, so its key is still the old one here)."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is None or not session_key:
        return
    hashed = session_hash(session_key)
    get_store().put(_ended_key(hashed), "1", ttl=2 * settings.REALTIME_TICKET_TTL_SECONDS)
    tell_workers_on_commit({"action": "end_session", "user_id": user.pk, "session": hashed})
