"""Short-lived, single-use WebSocket tickets, valid on any worker.

A client that cannot send the session cookie (a service, a native app) asks REST for a ticket
and passes it at the handshake: ``wss://host/ws/presence/?ticket=<ticket>``.

    ticket = ticket_issue(user_id=7, session=ref)    # POST /api/realtime/tickets/
    holder = await ticket_aredeem(ticket)          # TicketHolder(7, ref) once, then None

Only a hash of the ticket is stored, so a Redis dump holds nothing a client could replay. A
ticket asked for with a session cookie remembers that session (by hash, config.realtime.sessions)
and when it ends: the socket it opens then ends with the session (logout, expiry), as a
cookie-authenticated socket does (RELIABILITY.md S2).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from django.conf import settings

from config.realtime.kv import get_store
from config.realtime.sessions import SessionRef

_TICKET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,128}$")


def _key(ticket: str) -> str:
    return "ticket:" + hashlib.sha256(ticket.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class TicketHolder:
    user_id: int
    session: SessionRef | None  # the session the ticket was asked for under, if any


def ticket_issue(*, user_id: int, session: SessionRef | None = None) -> str:
    ticket = secrets.token_urlsafe(32)
    value = f"{user_id} {session.hash} {session.ends_at}" if session else str(user_id)
    get_store().put(_key(ticket), value, ttl=settings.REALTIME_TICKET_TTL_SECONDS)
    return ticket


async def ticket_aredeem(ticket: str) -> TicketHolder | None:
    """Who the ticket is for, consuming the ticket; None when unknown, used or expired."""
    if not _TICKET_PATTERN.match(ticket):
        return None
    value = await get_store().atake(_key(ticket))
    if not value:
        return None
    user_id, *session = value.split(" ")
    ref = SessionRef(session[0], float(session[1])) if len(session) == 2 else None
    return TicketHolder(int(user_id), ref)
