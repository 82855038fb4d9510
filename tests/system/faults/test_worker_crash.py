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

import pytest
from asgiref.sync import sync_to_async

from collab.client import DocumentSession
from monitoring.loadtest.workers import restart_worker
from tests.system.faults.oracles import assert_oracles, editor, probe, shared_document

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

EDITORS_PER_DOCUMENT = 4
DOCUMENTS = 2
EDITS_EACH = 30


async def type_randomly(session: DocumentSession, rng: random.Random) -> None:
    for _ in range(EDITS_EACH):
        position = rng.randint(0, len(session.text))
        session.edit([position, rng.choice("abcdef")] if position else ["z"])
        await asyncio.sleep(rng.uniform(0.02, 0.08))


async def test_killing_a_worker_mid_typing_loses_and_repeats_nothing(workers, make_account):
    accounts = [await sync_to_async(make_account)() for _ in range(EDITORS_PER_DOCUMENT)]
    documents = [await shared_document(accounts, f"F1 {n}") for n in range(DOCUMENTS)]
    by_document = {
        document.pk: [
            # Half start on A, half on B; each moves to the other when its worker fails.
            editor(
                workers[index % 2 :] + workers[: index % 2],
                account,
                document,
                f"d{document.pk}-e{index}",
            )
            for index, account in enumerate(accounts)
        ]
        for document in documents
    }
    sessions = [session for group in by_document.values() for session in group]
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
        victim.process.wait(10)
        await asyncio.gather(*typing)
        for group in by_document.values():
            await probe(group, timeout=60)
    finally:
        for session in sessions:
            await session.close()
        # The workers fixture is shared: bring A back on its port for the tests after this one.
        workers[0] = await asyncio.to_thread(restart_worker, victim)

    for document in documents:
        await assert_oracles(document, by_document[document.pk])
    moved = [s for s in sessions if s.client.connections > 1]
    assert moved, "nobody was on the killed worker"
    assert all(s.client.url.startswith(workers[1].ws_url("")) for s in moved)
