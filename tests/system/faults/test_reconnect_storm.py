"""F11 of RELIABILITY.md: a reconnect storm. Both workers are killed (``kill -9``) and started
again 5 s later; every client comes back at once.

Presence clients (ci: 50; full, ``make reliability``: 2,000) in rooms of 50, and editors typing
through the outage, all on the project's client given both workers' URLs, with the plan's rig
backoff (base 250 ms, cap 8 s, no circuit breaker: see RIG). Counted from the moment both
workers answer again (their boot is timed apart): when each presence client is open again (full
scale: 95 % within 20 s; at every scale: all of them, in bounded time). Meanwhile a sampler
reads ``pg_stat_activity`` every 0.2 s: no worker ever holds more PostgreSQL backends than its
pool's maximum. Afterwards a signal in each room reaches every member (no deaf socket), the
editors' catch-up came from the op log (each editor got its one snapshot at the first join,
none after: ``?since=`` replayed the missed ops), and the oracles of section 1 hold.
"""

from __future__ import annotations

import asyncio
import random
import signal
import tempfile
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from config.client import RealtimeClient
from config.client.backoff import Breaker
from config.client.connection import OPEN
from config.realtime.tickets import ticket_issue
from monitoring.loadtest.measure import percentiles
from monitoring.loadtest.users import load_user_ids
from monitoring.loadtest.workers import Worker, start_worker, stop_worker, wait_healthy
from tests.system.client import ORIGIN
from tests.system.conftest import database_url, worker_env
from tests.system.faults.oracles import assert_oracles, editor, probe, shared_document, type_for
from tests.system.faults.scale import FULL, record, scaled

pytestmark = [
    pytest.mark.system,
    pytest.mark.full_scale,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(scaled(ci=150, full=900)),
]

PRESENCE_CLIENTS = scaled(ci=50, full=2000)
ROOM_SIZE = 50
EDITORS_PER_DOCUMENT = scaled(ci=4, full=10)
DOCUMENTS = scaled(ci=1, full=4)
DOWN_SECONDS = 5.0
POOL_MAX = 4  # DATABASE_POOL_MAX, set for these workers
CONNECT_TIMEOUT = scaled(ci=60.0, full=300.0)  # the first connect, and the reconnect, bounded
SAMPLE_SECONDS = 0.2
# RELIABILITY.md's rig client: full-jitter backoff, base 250 ms, cap 8 s, and no circuit
# breaker. The project's default breaker (5 failures, then 30 s without an attempt) turns any
# outage of all workers longer than about 4 s into 30 s for every client, and brings them all
# back at once (measured: p50 28.8 s, p95 30.0 s after the restart): see the report of F11.
RIG = {"backoff_base": 0.25, "backoff_cap": 8.0, "breaker": Breaker(threshold=1_000_000)}


@pytest.fixture(scope="module")
def f11_workers(django_db_setup: None, tmp_path_factory) -> Iterator[list[Worker]]:
    """Two workers, each with its own PostgreSQL application name, so that the sampler can
    count each one's backends."""
    log_dir = tmp_path_factory.mktemp("f11-daphne")
    metrics = tempfile.mkdtemp(prefix="prometheus-", dir=log_dir)
    env = worker_env() | {
        "PROMETHEUS_MULTIPROC_DIR": metrics,
        "DATABASE_POOL_MAX": str(POOL_MAX),
        "API_RATE_TICKET": "1000/min",
    }
    workers = [start_worker(env | {"PGAPPNAME": f"f11-{n}"}, log_dir=log_dir) for n in "ab"]
    try:
        for worker in workers:
            wait_healthy(worker, timeout=60)
        yield workers
    finally:
        for worker in workers:
            stop_worker(worker)


def count(counts: list[int], index: int) -> None:
    counts[index] += 1


class BackendSampler(threading.Thread):
    """The most PostgreSQL backends each worker held at once, sampled until stopped."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.names = names
        self.most = dict.fromkeys(names, 0)
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(database_url(settings.DATABASES["default"]), autocommit=True) as db:
            while not self.halt.is_set():
                counts = db.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE application_name = ANY(%s) GROUP BY application_name",
                    [self.names],
                ).fetchall()
                for name, count in counts:
                    self.most[name] = max(self.most[name], count)
                self.samples += 1
                time.sleep(SAMPLE_SECONDS)


class PresenceMember:
    """A presence client in its room, joined again on every socket it opens."""

    def __init__(self, workers: list[Worker], user_id: int, index: int) -> None:
        async def ticket() -> str:
            return ticket_issue(user_id=user_id)  # minted here: 2,000 tickets, no HTTP round

        urls = [w.ws_url("/ws/presence/") for w in workers[index % 2 :] + workers[: index % 2]]
        self.client = RealtimeClient(urls, ticket=ticket, origin=ORIGIN, **RIG)
        self.room = f"lobby.f11-{index // ROOM_SIZE}"
        self.joined_on = 0  # the socket (by count) on which the last join was acked
        self.client.on_state(self._opened)

    def _opened(self, state: str) -> None:
        if state == OPEN:
            asyncio.get_running_loop().create_task(self._join(self.client.connections))

    async def _join(self, socket: int) -> None:
        await self.client.command("presence.room.join", {"room": self.room}, timeout=60)
        self.joined_on = max(self.joined_on, socket)

    @property
    def in_room(self) -> bool:
        return self.joined_on == self.client.connections


async def test_a_reconnect_storm_after_both_workers_die(f11_workers, make_account):
    accounts = [await sync_to_async(make_account)() for _ in range(EDITORS_PER_DOCUMENT)]
    documents = [await shared_document(accounts, f"F11 {n}") for n in range(DOCUMENTS)]
    by_document = {
        document.pk: [
            editor(
                f11_workers[i % 2 :] + f11_workers[: i % 2],
                account,
                document,
                f"f11-d{document.pk}-e{i}",
                **RIG,
            )
            for i, account in enumerate(accounts)
        ]
        for document in documents
    }
    editors = [session for group in by_document.values() for session in group]
    snapshots = [0] * len(editors)
    for index, session in enumerate(editors):
        session.client.on("collab.document.snapshot", lambda _, i=index: count(snapshots, i))
    user_ids = await sync_to_async(load_user_ids)(PRESENCE_CLIENTS)
    members = [PresenceMember(f11_workers, uid, n) for n, uid in enumerate(user_ids)]
    clients = [member.client for member in members]
    sampler = BackendSampler(["f11-a", "f11-b"])
    back_at: dict[int, float] = {}
    rng = random.Random(11)
    try:
        for session in editors:
            await session.start(timeout=60)
        for client in clients:
            await client.start()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await asyncio.gather(*(c.wait_open(timeout=CONNECT_TIMEOUT) for c in clients))
        sampler.start()
        typing = [asyncio.create_task(type_for(s, DOWN_SECONDS + 4, random.Random(rng.random())))
                  for s in editors]  # fmt: skip
        await asyncio.sleep(1.0)
        for worker in f11_workers:
            worker.process.send_signal(signal.SIGKILL)
        for worker in f11_workers:
            await asyncio.to_thread(worker.process.wait, 10)
        await asyncio.sleep(DOWN_SECONDS)
        for index, client in enumerate(clients):
            client.on_state(
                lambda state, i=index: (
                    back_at.setdefault(i, time.monotonic()) if state == OPEN else None
                )
            )
        restarted_at = time.monotonic()
        for index, worker in enumerate(list(f11_workers)):
            f11_workers[index] = start_worker(
                worker.env, log_dir=worker.log_path.parent, port=worker.port
            )
        await asyncio.gather(*(asyncio.to_thread(wait_healthy, w, 60) for w in f11_workers))
        healthy_at = time.monotonic()  # the workers' boot: 2-4 s on a quiet machine, 18 s seen here
        async with asyncio.timeout(CONNECT_TIMEOUT):
            while len(back_at) < len(clients):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await asyncio.gather(*typing)
        for group in by_document.values():
            await probe(group, timeout=60)
        heard = await signal_every_room(members)
    finally:
        sampler.halt.set()
        for each in [*editors, *clients]:
            await each.close()
    sampler.join(10)

    for document in documents:
        await assert_oracles(document, by_document[document.pk])
    assert all(worker.alive() for worker in f11_workers)
    for worker in f11_workers:
        assert "Traceback" not in worker.log(), worker.log()[-3000:]
    assert heard == [True] * len(clients), "a reconnected socket is deaf"
    # Catch-up from the op log: one snapshot each, at the first join; none after the storm.
    assert snapshots == [1] * len(editors)
    assert all(c.connections >= 2 for c in [*(s.client for s in editors), *clients])  # all back
    # The pools held: never more backends than a pool's maximum (RELIABILITY section 1).
    assert sampler.samples > 10 and min(sampler.most.values()) > 0, sampler.most  # it saw them
    assert max(sampler.most.values()) <= POOL_MAX, sampler.most
    # From the workers' answering again: their boot time is not the storm's (recorded apart).
    reconnect_s = sorted(at - healthy_at for at in back_at.values())
    within_20s = sum(s <= 20 for s in reconnect_s) / len(reconnect_s)
    record("F11", presence_clients=len(clients), editors=len(editors),
           reconnect_ms=percentiles([s * 1000 for s in reconnect_s]),
           reconnected_within_20s_pct=round(100 * within_20s, 1),
           workers_healthy_s=round(healthy_at - restarted_at, 1),
           backends_most=sampler.most, pool_max=POOL_MAX)  # fmt: skip
    if FULL:
        assert within_20s >= 0.95, percentiles([s * 1000 for s in reconnect_s])


async def signal_every_room(members: list[PresenceMember]) -> list[bool]:
    """Once every member is back in its room, one signal per room: which members heard it."""
    async with asyncio.timeout(60):
        while not all(member.in_room for member in members):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    heard = [False] * len(members)
    for index, member in enumerate(members):
        member.client.on("presence.signal.received", lambda _, i=index: heard.__setitem__(i, True))
    for first in range(0, len(members), ROOM_SIZE):
        sender = members[first]
        await sender.client.command("presence.signal.send", {"room": sender.room, "data": {}})
    async with asyncio.timeout(30):
        while not all(heard):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return heard
