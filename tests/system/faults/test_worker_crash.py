"""F1 of RELIABILITY.md at reduced scale: ``kill -9`` one of two workers while editors type.

Eight editors on two documents, split over both workers, each with the project's client
(``collab.client.DocumentSession``) given both workers' URLs (standing in for the load balancer).
Worker A is killed mid-typing; its editors reconnect to B with backoff and send again what was
unacknowledged. The oracles of section 1 afterwards: every replica equals the stored snapshot,
replaying the stored ops gives it too, every acknowledged op is stored exactly once, and a probe
reaches every editor. A is restarted for the tests after this one.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from collab import ot
from collab.client import DocumentSession
from collab.models import Document, Operation, Role
from collab.services import document_create, member_set
from monitoring.loadtest.workers import Worker, restart_worker
from tests.system.client import ORIGIN, fetch_ticket
from tests.system.conftest import Account

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

EDITORS_PER_DOCUMENT = 4
DOCUMENTS = 2
EDITS_EACH = 30


@sync_to_async
def documents_for(accounts: list[Account]) -> list[Document]:
    owner = get_user_model().objects.get(pk=accounts[0].user_id)
    documents = []
    for n in range(DOCUMENTS):
        document = document_create(owner=owner, title=f"F1 {n}", content="")
        for account in accounts[1:]:
            member_set(user=owner, document_id=document.pk, member_id=account.user_id,
                       role=Role.EDITOR)  # fmt: skip
        documents.append(document)
    return documents


def editor(workers: list[Worker], first: int, account: Account, document: Document, name: str):
    async def ticket() -> str:  # from whichever worker answers
        for worker in (workers[first], workers[1 - first]):
            try:
                return await fetch_ticket(worker.http_url(), account.token)
            except OSError:
                continue
        raise ConnectionError("no worker answers")

    path = f"/ws/collab/documents/{document.pk}/"
    urls = [workers[first].ws_url(path), workers[1 - first].ws_url(path)]
    return DocumentSession(urls, client_id=name, ticket=ticket, origin=ORIGIN, backoff_cap=2.0)


async def type_randomly(session: DocumentSession, rng: random.Random) -> None:
    for _ in range(EDITS_EACH):
        position = rng.randint(0, len(session.text))
        session.edit([position, rng.choice("abcdef")] if position else ["z"])
        await asyncio.sleep(rng.uniform(0.02, 0.08))


async def test_killing_a_worker_mid_typing_loses_and_repeats_nothing(workers, make_account):
    accounts = [await sync_to_async(make_account)() for _ in range(EDITORS_PER_DOCUMENT)]
    documents = await documents_for(accounts)
    sessions = [
        editor(workers, index % 2, account, document, f"d{document.pk}-e{index}")
        for document in documents
        for index, account in enumerate(accounts)
    ]
    victim = workers[0]
    try:
        for session in sessions:
            await session.start()
        rng = random.Random(11)
        typing = [
            asyncio.create_task(type_randomly(s, random.Random(rng.random()))) for s in sessions
        ]
        await asyncio.sleep(0.6)
        victim.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim.process.wait(10)
        await asyncio.gather(*typing)
        for session in sessions:
            await session.settled(timeout=60)
        reconnected_within = time.monotonic() - killed_at
        for document in documents:  # the probe: one more edit reaches every editor
            mine = [s for s in sessions if s.client_id.startswith(f"d{document.pk}-")]
            mine[0].edit([len(mine[0].text), "!"])
            await mine[0].settled(timeout=15)
            async with asyncio.timeout(15):
                while {s.version for s in mine} != {mine[0].version}:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    finally:
        for session in sessions:
            await session.close()
        # The workers fixture is shared: bring A back on its port for the tests after this one.
        workers[0] = await asyncio.to_thread(restart_worker, victim)

    for document in documents:
        stored = await sync_to_async(Document.objects.get)(pk=document.pk)
        ops = await sync_to_async(
            lambda d=document: list(Operation.objects.filter(document_id=d.pk).order_by("version"))
        )()
        replayed = ""
        for operation in ops:
            replayed = ot.apply(replayed, operation.op)
        mine = [s for s in sessions if s.client_id.startswith(f"d{document.pk}-")]
        keys = [(op.client_id, op.seq) for op in ops]
        acked = sorted((s.client_id, seq) for s in mine for seq in s.editor.acked)  # type: ignore[union-attr]

        assert [s.errors for s in mine] == [[]] * len(mine)
        assert [s.text for s in mine] == [stored.content] * len(mine)  # convergence, probe
        assert stored.content.endswith("!")
        assert replayed == stored.content
        assert [op.version for op in ops] == list(range(1, stored.version + 1))
        assert len(keys) == len(set(keys))  # nothing applied twice
        assert sorted(keys) == acked  # every acknowledged op stored, once
    moved = [s for s in sessions if s.client.connections > 1]
    assert moved, "nobody was on the killed worker"
    assert all(s.client.url.startswith(workers[1].ws_url("")) for s in moved)
    print(f"{len(moved)} editors moved to B; all settled {reconnected_within:.1f} s after the kill")
