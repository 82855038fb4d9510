"""A socket ends with the Django session it was opened under (RELIABILITY.md S2): logout and
expiry close it (4401); other sessions' sockets and token-ticket sockets stay open."""

from __future__ import annotations

import hashlib

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from rest_framework.test import APIClient

from config.errors import CLOSE_UNAUTHENTICATED
from config.realtime.kv import get_store
from config.realtime.sessions import session_hash
from tests.integration.ws import close_code, communicator, receive, request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@sync_to_async
def logged_in(user, expiry: int | None = None) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    if expiry is not None:
        session = client.session
        session.set_expiry(expiry)
        session.save()
    return client


def cookie(client: Client) -> tuple[bytes, bytes]:
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


@sync_to_async
def ticket_by_session(client: Client) -> str:
    return client.post("/api/realtime/tickets/").json()["ticket"]


@sync_to_async
def ticket_by_token(user) -> str:
    from rest_framework.authtoken.models import Token

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return api.post("/api/realtime/tickets/").json()["ticket"]


async def opened(communicators, **options):
    comm = communicator(**options)
    communicators.append(comm)
    assert (await comm.connect(timeout=5))[0]
    assert (await receive(comm))["type"] == "session.welcome"
    return comm


async def test_logout_closes_the_sockets_of_that_session_only(ws_user, communicators):
    laptop, phone = await logged_in(ws_user), await logged_in(ws_user)
    by_cookie = await opened(communicators, headers=[cookie(laptop)])
    by_session_ticket = await opened(communicators, ticket=await ticket_by_session(laptop))
    other_session = await opened(communicators, headers=[cookie(phone)])
    by_token_ticket = await opened(communicators, ticket=await ticket_by_token(ws_user))

    await sync_to_async(laptop.post)("/accounts/logout/")

    assert await close_code(by_cookie, within=5) == CLOSE_UNAUTHENTICATED
    assert await close_code(by_session_ticket, within=5) == CLOSE_UNAUTHENTICATED
    for comm in (other_session, by_token_ticket):
        assert (await request(comm, "session.heartbeat"))["type"] == "ack"


async def test_a_socket_closes_when_its_session_expires(ws_user, communicators):
    client = await logged_in(ws_user, expiry=2)
    comm = await opened(communicators, headers=[cookie(client)])

    assert (await request(comm, "session.heartbeat"))["type"] == "ack"
    assert await close_code(comm, within=6) == CLOSE_UNAUTHENTICATED


async def test_a_ticket_of_a_session_that_ended_before_the_handshake_is_refused(
    ws_user, communicators
):
    client = await logged_in(ws_user)
    ticket = await ticket_by_session(client)
    await sync_to_async(client.post)("/accounts/logout/")
    comm = communicator(ticket=ticket)
    communicators.append(comm)

    await comm.connect(timeout=5)

    assert await close_code(comm) == CLOSE_UNAUTHENTICATED


async def test_a_ticket_and_the_logout_message_hold_no_session_key(ws_user, communicators):
    """A Redis dump (tickets) or a pub/sub message (logout) must hold nothing that works as a
    session cookie: both know the session by a hash of its key."""
    client = await logged_in(ws_user)
    session_key = client.cookies["sessionid"].value
    ticket = await ticket_by_session(client)

    stored = await get_store().aget("ticket:" + hashlib.sha256(ticket.encode()).hexdigest())

    assert stored is not None and session_key not in stored
    assert session_hash(session_key) in stored
