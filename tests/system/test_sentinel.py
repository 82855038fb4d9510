"""Redis Sentinel (REDIS_SENTINELS / REDIS_SENTINEL_MASTER) under two real Daphne workers.

A private master, its replica and a sentinel: the workers find the master through the sentinel
for everything Redis does for them (channel layer, tickets, rate limits, presence). When the
master is killed, the sentinel promotes the replica; the workers follow without a restart:
/readyz is 200 again, new tickets are minted, and a signal sent on one worker reaches a client
on the other, whose reconnecting client got back on its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from config.client import RealtimeClient
from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.client import ORIGIN, fetch_ticket, http_request
from tests.system.conftest import Account, worker_env
from tests.system.services import MASTER_NAME, PrivateRedis, PrivateSentinel

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

FAILOVER_SECONDS = 30.0  # 1 s to call the master down, then the election and promotion


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[PrivateRedis, PrivateRedis, PrivateSentinel]]:
    directory = tmp_path_factory.mktemp("sentinel")
    master = PrivateRedis(directory)
    master.start()
    replica = PrivateRedis(directory, "--replicaof", "127.0.0.1", str(master.port))
    replica.start()
    sentinel = PrivateSentinel(directory, master)
    try:
        sentinel.start()
        yield master, replica, sentinel
    finally:
        for process in (sentinel, replica, master):
            process.stop()


@pytest.fixture(scope="module")
def sentinel_workers(django_db_setup: None, cluster, tmp_path_factory) -> Iterator[list[Worker]]:
    _, _, sentinel = cluster
    env = worker_env() | {
        "REDIS_URL": None,
        "REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}",
        "REDIS_SENTINEL_MASTER": MASTER_NAME,
    }
    with daphne_workers(2, env, log_dir=tmp_path_factory.mktemp("sentinel-daphne")) as workers:
        yield workers


def client_on(worker: Worker, account: Account) -> RealtimeClient:
    async def ticket() -> str:
        return await fetch_ticket(worker.http_url(), account.token)

    return RealtimeClient(
        worker.ws_url("/ws/presence/"), ticket=ticket, origin=ORIGIN, backoff_cap=1.0
    )


async def signal_heard(speaker: RealtimeClient, heard: list[dict], room: str, n: int) -> None:
    await speaker.command("presence.signal.send", {"room": room, "data": {"n": n}})
    async with asyncio.timeout(10):
        while not any(h["data"]["data"] == {"n": n} for h in heard):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def all_ready(workers: list[Worker]) -> bool:
    def ready(worker: Worker) -> bool:
        return http_request(worker.http_url("/readyz"), timeout=5)[0] == 200

    return all(await asyncio.gather(*(asyncio.to_thread(ready, w) for w in workers)))


async def test_the_workers_follow_a_failover(cluster, sentinel_workers, alice, bob):
    master, replica, sentinel = cluster
    worker_a, worker_b = sentinel_workers
    listener, speaker = client_on(worker_a, alice), client_on(worker_b, bob)
    heard: list[dict] = []
    listener.on("presence.signal.received", heard.append)
    room = "lobby.sentinel"
    try:
        for client in (listener, speaker):
            await client.start()
            await client.wait_open()
            await client.command("presence.room.join", {"room": room})
        await signal_heard(speaker, heard, room, 1)  # across workers, through the master
        assert sentinel.master_port() == master.port
        assert master.client().dbsize() > 0  # tickets and presence went there

        master.kill()
        deadline = time.monotonic() + FAILOVER_SECONDS
        while sentinel.master_port() != replica.port:
            assert time.monotonic() < deadline, f"no failover: {sentinel.log()}"
            await asyncio.sleep(0.2)
        while not await all_ready(sentinel_workers):
            assert time.monotonic() < deadline, "the workers did not become ready again"
            await asyncio.sleep(0.2)
        # Clients whose sockets the failover cut come back on their own; then the room works
        # across the workers again, on the promoted replica.
        for client in (listener, speaker):
            await client.wait_open(timeout=FAILOVER_SECONDS)
            await client.command("presence.room.join", {"room": room}, timeout=FAILOVER_SECONDS)
        await signal_heard(speaker, heard, room, 2)
        ticket = await fetch_ticket(worker_a.http_url(), alice.token)
    finally:
        for client in (listener, speaker):
            await client.close()

    assert ticket
    assert replica.client().info("replication")["role"] == "master"
