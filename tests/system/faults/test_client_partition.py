"""F9 of RELIABILITY.md at reduced scale: a client partitioned from its worker (no FIN, no RST:
a blackhole) keeps typing, while another types on.

Alice reaches worker A through a fault proxy, Bob reaches worker B directly. The proxy swallows
everything for a while; Alice's client notices the silence through its pings (set short here),
gives the socket up, and once the path heals reconnects, resumes and sends her offline edits.
Then: both replicas equal the stored snapshot, every keystroke stored once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from collab.client import DocumentSession
from collab.models import Document, Role
from collab.services import document_create, member_set
from monitoring.loadtest.workers import Worker
from tests.system.client import ORIGIN, fetch_ticket
from tests.system.conftest import Account
from tests.system.faultproxy import FaultProxy

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

PARTITION_SECONDS = 6.0


@pytest.fixture
def proxy_to_a(worker_a: Worker) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream_port=worker_a.port)
    yield proxy.start()
    proxy.stop()


@sync_to_async
def shared_document(owner: Account, editor: Account) -> Document:
    user = get_user_model().objects.get(pk=owner.user_id)
    document = document_create(owner=user, title="F9", content="")
    member_set(user=user, document_id=document.pk, member_id=editor.user_id, role=Role.EDITOR)
    return document


def session(url: str, http: str, account: Account, name: str, **options) -> DocumentSession:
    async def ticket() -> str:
        return await fetch_ticket(http, account.token)

    return DocumentSession(url, client_id=name, ticket=ticket, origin=ORIGIN, **options)


async def type_keys(session: DocumentSession, keys: str) -> None:
    for key in keys:
        session.edit([len(session.text), key] if session.text else [key])
        await asyncio.sleep(0.1)


async def test_a_partitioned_client_comes_back_and_loses_nothing(
    worker_a, worker_b, proxy_to_a, alice, bob
):
    document = await shared_document(alice, bob)
    path = f"/ws/collab/documents/{document.pk}/"
    # Alice's socket goes through the proxy; her tickets come from A directly (the HTTP path is
    # not the one cut). Short pings: the silence is noticed in 2 + 2 s.
    short = {"ping_interval": 2.0, "ping_timeout": 2.0, "backoff_cap": 1.0}
    alice_url = f"ws://127.0.0.1:{proxy_to_a.port}{path}"
    alice_session = session(alice_url, worker_a.http_url(), alice, "alice", **short)
    bob_session = session(worker_b.ws_url(path), worker_b.http_url(), bob, "bob")
    states: list[str] = []
    alice_session.client.on_state(states.append)
    try:
        await alice_session.start()
        await bob_session.start()
        proxy_to_a.blackhole()
        typing = [
            asyncio.create_task(type_keys(alice_session, "abcdefghij")),  # into the void
            asyncio.create_task(type_keys(bob_session, "KLMNOPQRST")),
        ]
        await asyncio.sleep(PARTITION_SECONDS)
        gave_up = "offline" in states
        proxy_to_a.heal()
        await asyncio.gather(*typing)
        for each in (alice_session, bob_session):
            await each.settled(timeout=30)
        async with asyncio.timeout(15):
            while alice_session.version != bob_session.version:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        for each in (alice_session, bob_session):
            await each.close()
    stored = await sync_to_async(Document.objects.get)(pk=document.pk)

    assert gave_up, f"the silent socket was not given up: {states}"
    assert alice_session.client.connections >= 2
    assert [alice_session.errors, bob_session.errors] == [[], []]
    assert alice_session.text == bob_session.text == stored.content
    assert sorted(stored.content) == sorted("abcdefghij" + "KLMNOPQRST")  # each key once
