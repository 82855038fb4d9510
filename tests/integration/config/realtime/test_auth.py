"""WebSocket handshake: single-use tickets, the session cookie, Origin checks (DESIGN 8)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from config.errors import CLOSE_UNAUTHENTICATED
from tests.factories import UserFactory
from tests.integration.ws import close_code, communicator, receive, request, send, ticket_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_ticket_authenticates_the_handshake(ws_user, communicators):
    comm = communicator(ticket=ticket_for(ws_user))
    communicators.append(comm)

    assert (await comm.connect())[0]
    welcome = await receive(comm)

    assert welcome["data"]["user"] == {"id": ws_user.pk, "username": ws_user.username}


async def test_a_ticket_works_only_once(ws_user, communicators):
    ticket = ticket_for(ws_user)
    first, second = communicator(ticket=ticket), communicator(ticket=ticket)
    communicators.extend([first, second])
    await first.connect()
    assert (await receive(first))["type"] == "session.welcome"

    await second.connect()

    assert await close_code(second) == CLOSE_UNAUTHENTICATED


async def test_no_credentials_closes_4401_and_processes_nothing(communicators):
    comm = communicator()
    communicators.append(comm)

    await comm.connect()

    assert await close_code(comm) == CLOSE_UNAUTHENTICATED
    await send(comm, "session.heartbeat", id="c1")
    unexpected = None if await comm.receive_nothing(timeout=0.5) else await comm.receive_output()
    assert unexpected is None


@pytest.mark.parametrize("ticket", ["", "unknown-ticket-value-1234567890", "bad chars!" * 3, "x"])
async def test_an_unknown_or_malformed_ticket_closes_4401(ticket, communicators):
    comm = communicator(ticket=ticket)
    communicators.append(comm)

    await comm.connect()

    assert await close_code(comm) == CLOSE_UNAUTHENTICATED


async def test_an_expired_ticket_closes_4401(ws_user, communicators, settings):
    settings.REALTIME_TICKET_TTL_SECONDS = 0.2
    comm = communicator(ticket=ticket_for(ws_user))
    communicators.append(comm)
    await asyncio.sleep(0.5)

    await comm.connect()

    assert await close_code(comm) == CLOSE_UNAUTHENTICATED


@pytest.fixture
def inactive_user(transactional_db):
    return UserFactory(is_active=False)


async def test_a_ticket_of_a_deactivated_user_closes_4401(inactive_user, communicators):
    user = inactive_user
    comm = communicator(ticket=ticket_for(user))
    communicators.append(comm)

    await comm.connect()

    assert await close_code(comm) == CLOSE_UNAUTHENTICATED


@sync_to_async
def session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def test_the_session_cookie_authenticates_the_handshake(ws_user, communicators):
    comm = communicator(headers=[await session_cookie(ws_user)])
    communicators.append(comm)

    assert (await comm.connect())[0]
    welcome = await receive(comm)

    assert welcome["data"]["user"]["id"] == ws_user.pk
    assert (await request(comm, "session.heartbeat"))["type"] == "ack"


async def test_a_bad_ticket_never_falls_back_to_the_session_cookie(ws_user, communicators):
    comm = communicator(
        ticket="used-or-unknown-ticket-000000", headers=[await session_cookie(ws_user)]
    )
    communicators.append(comm)

    await comm.connect()

    assert await close_code(comm) == CLOSE_UNAUTHENTICATED


async def test_an_unknown_session_cookie_closes_4401(transactional_db, communicators):
    comm = communicator(headers=[(b"cookie", b"sessionid=not-a-session")])
    communicators.append(comm)

    await comm.connect()

    assert await close_code(comm) == CLOSE_UNAUTHENTICATED


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "http://testserver.evil.example",
        "https://testserver",
        "http://testserver:8080",
        "http://evil-testserver",
    ],
)
async def test_a_foreign_origin_is_refused_before_authentication(ws_user, origin, communicators):
    ticket = ticket_for(ws_user)
    comm = communicator(ticket=ticket, origin=origin)
    communicators.append(comm)

    connected, _ = await comm.connect()

    assert not connected
    # Refused before the auth middleware ran: the ticket was not spent.
    retry = communicator(ticket=ticket)
    communicators.append(retry)
    assert (await retry.connect())[0]
    assert (await receive(retry))["type"] == "session.welcome"


async def test_a_handshake_without_origin_is_refused(ws_user, communicators):
    comm = communicator(ticket=ticket_for(ws_user), origin=None)
    communicators.append(comm)

    connected, _ = await comm.connect()

    assert not connected
