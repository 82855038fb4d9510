"""F8 of RELIABILITY.md: every PostgreSQL backend of the workers is killed
(``pg_terminate_backend``) again and again while editors type.

Two workers of this module, whose connections carry an application name of their own
(``PGAPPNAME``), so the killer ends theirs and nobody else's. At ci scale: eight editors on two
documents for a few rounds, a kill every 3 s; at full (``make reliability``): L-nominal's 200
editors on 20 documents for 10 minutes, a kill every 30 s. Afterwards the oracles of section 1
(nothing acknowledged lost, nothing applied twice, every replica = snapshot = replay), no worker
died, no socket was dropped (a consumer that crashed would close its socket), no traceback in
the logs; counted: the ops that had to be sent again after a retryable error, which at full
scale must stay at or below 0.1 % of the ops.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.conftest import worker_env
from tests.system.faults.oracles import assert_oracles, editor, probe, shared_document
from tests.system.faults.scale import FULL, record, scaled

pytestmark = [
    pytest.mark.system,
    pytest.mark.full_scale,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(scaled(ci=120, full=1200)),
]

APPLICATION_NAME = "f8-worker"
EDITORS_PER_DOCUMENT = scaled(ci=4, full=10)
DOCUMENTS = scaled(ci=2, full=20)
KILL_EVERY_SECONDS = scaled(ci=3.0, full=30.0)
ROUNDS = scaled(ci=3, full=20)
# Between one editor's edits: about 10 ops/s each at ci scale, L-nominal's 1 op/s at full.
PAUSE_SECONDS = scaled(ci=(0.05, 0.15), full=(0.5, 1.5))


@pytest.fixture(scope="module")
def f8_workers(django_db_setup: None, tmp_path_factory) -> Iterator[list[Worker]]:
    env = worker_env() | {"PGAPPNAME": APPLICATION_NAME, "API_RATE_TICKET": "1000/min"}
    with daphne_workers(2, env, log_dir=tmp_path_factory.mktemp("f8-daphne")) as workers:
        yield workers


@sync_to_async
def terminate_worker_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [APPLICATION_NAME],
        )
        return cursor.fetchone()[0]


async def type_steadily(session, seconds: float, rng: random.Random) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until:
        position = rng.randint(0, len(session.text))
        session.edit([position, rng.choice("abcxyz")] if position else ["q"])
        await asyncio.sleep(rng.uniform(*PAUSE_SECONDS))


async def test_killing_the_workers_database_connections_loses_nothing(f8_workers, make_account):
    accounts = [await sync_to_async(make_account)() for _ in range(EDITORS_PER_DOCUMENT)]
    documents = [await shared_document(accounts, f"F8 {n}") for n in range(DOCUMENTS)]
    by_document = {
        document.pk: [
            editor([f8_workers[index % 2]], account, document, f"f8-d{document.pk}-e{index}")
            for index, account in enumerate(accounts)
        ]
        for document in documents
    }
    sessions = [session for group in by_document.values() for session in group]
    log_starts = [len(worker.log()) for worker in f8_workers]
    killed: list[int] = []
    rng = random.Random(8)
    typing_seconds = KILL_EVERY_SECONDS * (ROUNDS + 0.5)
    try:
        for session in sessions:
            await session.start(timeout=60)
        typing = [
            asyncio.create_task(type_steadily(s, typing_seconds, random.Random(rng.random())))
            for s in sessions
        ]
        started = time.monotonic()
        for _ in range(ROUNDS):
            await asyncio.sleep(KILL_EVERY_SECONDS)
            killed.append(await terminate_worker_backends())
        await asyncio.gather(*typing)
        typed_s = time.monotonic() - started
        for group in by_document.values():
            await probe(group, timeout=60)
    finally:
        for session in sessions:
            await session.close()

    for document in documents:
        await assert_oracles(document, by_document[document.pk])
    assert all(worker.alive() for worker in f8_workers)
    for worker, start in zip(f8_workers, log_starts, strict=True):
        assert "Traceback" not in worker.log()[start:], worker.log()[start:][-3000:]
    # The killer found the workers' connections every round (the fault happened)...
    assert len(killed) == ROUNDS and min(killed) > 0, killed
    # ...and no consumer went down with them: a crash would have closed its socket.
    assert [s.client.connections for s in sessions] == [1] * len(sessions)
    ops = sum(len(s.editor.acked) for s in sessions)  # type: ignore[union-attr]
    retried = sum(s.retried for s in sessions)
    record(
        "F8",
        editors=len(sessions),
        documents=DOCUMENTS,
        rounds=ROUNDS,
        backends_killed=killed,
        typed_s=round(typed_s, 1),
        acked_ops=ops,
        ops_retried=retried,
        retried_pct=round(100 * retried / ops, 3),
    )
    if FULL:
        assert retried <= ops / 1000, (retried, ops)
