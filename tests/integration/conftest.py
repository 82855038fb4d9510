"""Fixtures for integration tests: committed users and WebSocket communicators.

WebSocket tests use ``transactional_db``: the handshake reads the user on Channels' ORM thread,
which has its own connection and cannot see a test transaction that never commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from tests.factories import UserFactory
from tests.integration.ws import communicator, receive, ticket_for

OpenWs = Callable[..., Awaitable[tuple[WebsocketCommunicator, dict[str, Any]]]]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The default PBKDF2 costs ~0.5 s per user. Integration tests run in this process only;
    # system tests start Daphne workers, which could not check MD5 hashes, so not there.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def ws_user(transactional_db):
    return UserFactory()


@pytest.fixture
def ws_other_user(transactional_db):
    return UserFactory()


@pytest.fixture
async def communicators() -> AsyncIterator[list[WebsocketCommunicator]]:
    """Every communicator a test appends here is disconnected when the test ends."""
    opened: list[WebsocketCommunicator] = []
    yield opened
    for comm in opened:
        if not comm.future.done():
            await comm.disconnect(timeout=5)


@pytest.fixture
def open_ws(communicators, transactional_db) -> OpenWs:
    """Connect as ``user`` with a fresh ticket; returns the communicator and the welcome."""

    async def open_(user: Any, path: str = "/ws/presence/", **options: Any):
        comm = communicator(path, ticket=ticket_for(user), **options)
        communicators.append(comm)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        welcome = await receive(comm)
        assert welcome["type"] == "session.welcome", welcome
        return comm, welcome

    return open_
