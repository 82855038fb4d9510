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

from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.conftest import worker_env
from tests.system.faults.oracles import assert_oracles, editor, probe, shared_document, type_for
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


async def test_a_redis_restart_under_typing_loses_nothing(f3_workers, redis_server, make_account):
    accounts = [await sync_to_async(make_account)() for _ in range(EDITORS)]
    document = await shared_document(accounts, "F3")
    sessions = [
        editor([f3_workers[i % 2]], account, document, f"f3-e{i}")
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
        await probe(sessions)
    finally:
        for session in sessions:
            await session.close()

    assert all(worker.alive() for worker in f3_workers)
    await assert_oracles(document, sessions)
