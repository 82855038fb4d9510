"""Handshake authentication: a ``?ticket=`` from REST, or else the Django session cookie.

    application = OriginValidator(RealtimeAuthMiddleware(URLRouter(routes)), origins)

A bad or used ticket leaves the scope anonymous (it never falls back to the cookie), and the
consumer then closes with 4401, so a client can tell "get a new ticket" from other failures.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.middleware import BaseMiddleware
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from config.errors import AppError, ErrorCode
from config.realtime.orm import database_sync_to_async
from config.realtime.sessions import SessionRef, session_ended, session_ref
from config.realtime.tickets import ticket_aredeem


@database_sync_to_async
def _active_user(user_id: int):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    return user or AnonymousUser()


class RealtimeAuthMiddleware(BaseMiddleware):
    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        super().__init__(inner)
        self.session_auth = AuthMiddlewareStack(inner)

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        tickets = parse_qs(scope.get("query_string", b"").decode("latin1")).get("ticket")
        if not tickets:
            return await self.session_auth(scope, receive, send)
        holder = await ticket_aredeem(tickets[0])
        user = await _active_user(holder.user_id) if holder is not None else AnonymousUser()
        session = holder.session if holder is not None else None
        scope = dict(scope, user=user, auth_method="ticket", ticket_session=session)
        return await self.inner(scope, receive, send)


async def session_of(scope: dict) -> SessionRef | None:  # type: ignore[type-arg]
    """The Django session a socket was opened under (its cookie's, or the one its ticket was
    asked for with), None for a ticket asked for with a token; raises UNAUTHENTICATED when
    that session has already ended."""
    if scope.get("auth_method") == "ticket":
        ref = scope.get("ticket_session")
        if ref is not None and await session_ended(ref.hash):
            raise AppError(ErrorCode.UNAUTHENTICATED, "The session has ended.")
        return ref
    session_key = getattr(scope.get("session"), "session_key", None)
    if session_key is None:
        return None
    ref = await database_sync_to_async(session_ref)(session_key)
    if ref is None:
        raise AppError(ErrorCode.UNAUTHENTICATED, "The session has ended.")
    return ref
