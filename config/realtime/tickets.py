"""Short-lived, single-use WebSocket tickets, valid on any worker.

A client that cannot send the session cookie (a service, a native app) asks REST for a ticket
and passes it at the handshake: ``wss://host/ws/presence/?ticket=<ticket>``.

    ticket = ticket_issue(user_id=7)           # POST /api/realtime/tickets/
    user_id = await ticket_aredeem(ticket)     # 7 once, then None
Only a hash of the ticket is stored, so a Redis dump holds nothing a client could replay.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from django.conf import settings

from config.realtime.kv import get_store

_TICKET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,128}$")


def _key(ticket: str) -> str:
    return "ticket:" + hashlib.sha256(ticket.encode("ascii")).hexdigest()


def ticket_issue(*, user_id: int) -> str:
    ticket = secrets.token_urlsafe(32)
    get_store().put(_key(ticket), str(user_id), ttl=settings.REALTIME_TICKET_TTL_SECONDS)
    return ticket


async def ticket_aredeem(ticket: str) -> int | None:
    """The ticket's user id, consuming the ticket; None when unknown, used or expired."""
    if not _TICKET_PATTERN.match(ticket):
        return None
    value = await get_store().atake(_key(ticket))
    return int(value) if value else None
