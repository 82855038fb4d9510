"""F3 of RELIABILITY.md at reduced scale: Redis killed (``kill -9``) for 5 s under typing, then
started again empty.

Two workers on a private redis-server; six editors on one document, split over both, on the
project's client. While Redis is down nothing acknowledged may be lost (acks come from the
PostgreSQL commit) and no worker may die; once it is back every editor must hear a probe (a
last edit) and all must converge on the stored snapshot, each acknowledged op stored once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from collab import ot
from collab.client import DocumentSession
from collab.models import Document, Operation, Role
from collab.services import document_create, member_set
from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.client import ORIGIN, fetch_ticket
from tests.system.conftest import Account, worker_env
from tests.system.services import PrivateRedis

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

EDITORS = 6
DOWN_SECONDS = 5.0


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("f3-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def f3_workers(django_db_setup: None, redis_server, tmp_path_factory) -> Iterator[list[Worker]]:
    env = worker_env() | {"REDIS_URL": redis_server.url}
    with daphne_workers(2, env, log_dir=tmp_path_factory.mktemp("f3-daphne")) as workers:
        yield workers


@sync_to_async
def shared_document(accounts: list[Account]) -> Document:
    owner = get_user_model().objects.get(pk=accounts[0].user_id)
    document = document_create(owner=owner, title="F3", content="")
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
        session.edit([position, rng.choice("xyz")] if position else ["q"])
        await asyncio.sleep(rng.uniform(0.05, 0.15))


async def test_a_redis_restart_under_typing_loses_nothing(f3_workers, redis_server, make_account):
    accounts = [await sync_to_async(make_account)() for _ in range(EDITORS)]
    document = await shared_document(accounts)
    sessions = [
        editor(f3_workers[i % 2], account, document, f"f3-e{i}")
        for i, account in enumerate(accounts)
    ]
    rng = random.Random(13)
    try:
        for session in sessions:
            await session.start()
        typing = [asyncio.create_task(type_for(s, 3 + DOWN_SECONDS, random.Random(rng.random())))
                  for s in sessions]  # fmt: skip
        await asyncio.sleep(1.0)
        redis_server.kill()
        await asyncio.sleep(DOWN_SECONDS)
        redis_server.start()  # empty: the epoch changes
        await asyncio.gather(*typing)
        for session in sessions:
            await session.settled(timeout=60)
        sessions[0].edit([len(sessions[0].text), "!"])  # the probe
        await sessions[0].settled(timeout=30)
        async with asyncio.timeout(30):
            while {s.version for s in sessions} != {sessions[0].version}:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        for session in sessions:
            await session.close()

    stored = await sync_to_async(Document.objects.get)(pk=document.pk)
    ops = await sync_to_async(
        lambda: list(Operation.objects.filter(document_id=document.pk).order_by("version"))
    )()
    replayed = ""
    for operation in ops:
        replayed = ot.apply(replayed, operation.op)
    keys = [(op.client_id, op.seq) for op in ops]
    acked = sorted((s.client_id, seq) for s in sessions for seq in s.editor.acked)  # type: ignore[union-attr]

    assert all(worker.alive() for worker in f3_workers)
    assert [s.text for s in sessions] == [stored.content] * EDITORS
    assert stored.content.endswith("!")
    assert replayed == stored.content
    assert len(keys) == len(set(keys)) and sorted(keys) == acked
    errors = [str(e) for s in sessions for e in s.errors]
    print(f"{len(ops)} ops; errors seen by editors: {errors[:5]}; reconnects:",
          [s.client.connections - 1 for s in sessions])  # fmt: skip
