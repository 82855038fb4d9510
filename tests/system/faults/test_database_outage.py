"""F6 of RELIABILITY.md at reduced scale: PostgreSQL goes away for 5 s under typing.

The workers reach PostgreSQL through a fault proxy (tests/system/faultproxy.py), which resets
every connection and refuses new ones, as a restart does, then lets them through again. During
the outage an op gets a retryable ``unavailable`` (never an ack, never ``internal``) and REST
answers 503; afterwards the editors' clients have sent their ops again and every oracle holds:
replicas = snapshot = replay, each acknowledged op stored once, a probe reaches everyone, and
REST answers 200 again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model

from collab import ot
from collab.client import DocumentSession
from collab.models import Document, Operation, Role
from collab.services import document_create, member_set
from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.client import ORIGIN, fetch_ticket, http_request
from tests.system.conftest import Account, worker_env
from tests.system.faultproxy import FaultProxy

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

EDITORS = 4
DOWN_SECONDS = 5.0


@pytest.fixture(scope="module")
def database_proxy() -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream_port=int(settings.DATABASES["default"].get("PORT") or 5432))
    yield proxy.start()
    proxy.stop()


@pytest.fixture(scope="module")
def f6_workers(django_db_setup: None, database_proxy, tmp_path_factory) -> Iterator[list[Worker]]:
    name = settings.DATABASES["default"]["NAME"]
    env = worker_env() | {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{database_proxy.port}/{name}"
    }
    with daphne_workers(2, env, log_dir=tmp_path_factory.mktemp("f6-daphne")) as workers:
        yield workers


@sync_to_async
def shared_document(accounts: list[Account]) -> Document:
    owner = get_user_model().objects.get(pk=accounts[0].user_id)
    document = document_create(owner=owner, title="F6", content="")
    for account in accounts[1:]:
        member_set(user=owner, document_id=document.pk, member_id=account.user_id,
                   role=Role.EDITOR)  # fmt: skip
    return document


def editor(worker: Worker, account: Account, document: Document, name: str) -> DocumentSession:
    async def ticket() -> str:
        return await fetch_ticket(worker.http_url(), account.token)

    url = worker.ws_url(f"/ws/collab/documents/{document.pk}/")
    return DocumentSession(url, client_id=name, ticket=ticket, origin=ORIGIN, backoff_cap=2.0)


async def type_for(session: DocumentSession, seconds: float, rng: random.Random) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until:
        position = rng.randint(0, len(session.text))
        session.edit([position, rng.choice("mno")] if position else ["p"])
        await asyncio.sleep(rng.uniform(0.05, 0.15))


async def test_a_database_outage_under_typing_loses_nothing(
    f6_workers, database_proxy, make_account
):
    accounts = [await sync_to_async(make_account)() for _ in range(EDITORS)]
    document = await shared_document(accounts)
    rest_url = f6_workers[1].http_url(f"/api/collab/documents/{document.pk}/")
    sessions = [
        editor(f6_workers[i % 2], account, document, f"f6-e{i}")
        for i, account in enumerate(accounts)
    ]
    rng = random.Random(17)
    try:
        for session in sessions:
            await session.start()
        typing = [asyncio.create_task(type_for(s, 2 + DOWN_SECONDS, random.Random(rng.random())))
                  for s in sessions]  # fmt: skip
        await asyncio.sleep(1.0)
        database_proxy.refuse()
        await asyncio.sleep(0.5)
        during = await asyncio.to_thread(http_request, rest_url, token=accounts[0].token)
        await asyncio.sleep(DOWN_SECONDS - 0.5)
        database_proxy.heal()
        await asyncio.gather(*typing)
        for session in sessions:
            await session.settled(timeout=60)
        sessions[0].edit([len(sessions[0].text), "!"])  # the probe
        await sessions[0].settled(timeout=30)
        async with asyncio.timeout(30):
            while {s.version for s in sessions} != {sessions[0].version}:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        after = await asyncio.to_thread(http_request, rest_url, token=accounts[0].token)
    finally:
        for session in sessions:
            await session.close()
        database_proxy.heal()

    stored = await sync_to_async(Document.objects.get)(pk=document.pk)
    ops = await sync_to_async(
        lambda: list(Operation.objects.filter(document_id=document.pk).order_by("version"))
    )()
    replayed = ""
    for operation in ops:
        replayed = ot.apply(replayed, operation.op)
    keys = [(op.client_id, op.seq) for op in ops]
    acked = sorted((s.client_id, seq) for s in sessions for seq in s.editor.acked)  # type: ignore[union-attr]

    assert all(worker.alive() for worker in f6_workers)
    assert during[0] == 503, during[1][:300]
    assert after[0] == 200
    assert [s.errors for s in sessions] == [[]] * EDITORS  # every op went through in the end
    assert [s.text for s in sessions] == [stored.content] * EDITORS
    assert stored.content.endswith("!")
    assert replayed == stored.content
    assert len(keys) == len(set(keys)) and sorted(keys) == acked
