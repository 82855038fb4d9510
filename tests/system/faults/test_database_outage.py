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

from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.client import http_request
from tests.system.conftest import worker_env
from tests.system.faultproxy import FaultProxy
from tests.system.faults.oracles import assert_oracles, editor, probe, shared_document, type_for

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


async def test_a_database_outage_under_typing_loses_nothing(
    f6_workers, database_proxy, make_account
):
    accounts = [await sync_to_async(make_account)() for _ in range(EDITORS)]
    document = await shared_document(accounts, "F6")
    rest_url = f6_workers[1].http_url(f"/api/collab/documents/{document.pk}/")
    sessions = [
        editor([f6_workers[i % 2]], account, document, f"f6-e{i}")
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
        await probe(sessions, timeout=60)
        after = await asyncio.to_thread(http_request, rest_url, token=accounts[0].token)
    finally:
        for session in sessions:
            await session.close()
        database_proxy.heal()

    assert all(worker.alive() for worker in f6_workers)
    assert during[0] == 503, during[1][:300]
    assert after[0] == 200
    await assert_oracles(document, sessions)  # every op went through in the end
