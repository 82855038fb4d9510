"""Rate limits while Redis cannot be reached: counted in this process, never an error
(RELIABILITY.md F3: a Redis outage must not turn writes into 500s, nor lift the limits); and the
leases by which a busy key claims its shared counts in batches, on the real Redis."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from config.realtime import kv, throttle
from config.realtime.kv import RedisStore
from config.realtime.ratelimit import LEASE_SHARE, Rate
from config.redis_target import RedisTarget
from monitoring.loadtest.workers import free_port


@pytest.fixture
def unreachable_store(monkeypatch):
    # A real client of a port nothing listens on: every command fails to connect.
    store = RedisStore(RedisTarget(url=f"redis://127.0.0.1:{free_port()}/0"), "t:")
    monkeypatch.setattr(kv, "_store", store)
    monkeypatch.setattr(throttle, "_local", kv.MemoryStore())
    return store


def test_the_limit_holds_per_process_when_redis_is_down(unreachable_store):
    rate = Rate(limit=3, period=60.0)

    decisions = [throttle.throttle("user:1", rate, now=1000.0) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]


async def test_the_async_limit_too(unreachable_store):
    rate = Rate(limit=2, period=60.0)

    decisions = [await throttle.athrottle("user:2", rate, now=1000.0) for _ in range(3)]

    assert [d.allowed for d in decisions] == [True, True, False]


# --- leases: a busy key claims its counts in batches (ratelimit.Lease) ---------------------------
@pytest.fixture
def workers(monkeypatch):
    """Two workers' lease tables over the one shared (real) Redis counter: swap them in turn."""
    tables: list[dict] = [{}, {}]
    monkeypatch.setattr(throttle, "_leases", tables[0])

    def use(worker: int) -> None:
        monkeypatch.setattr(throttle, "_leases", tables[worker])

    return use


@pytest.mark.parametrize("seed", range(20))
async def test_leases_never_allow_more_than_the_limit_and_refuse_at_most_a_lease_early(
    workers, seed
):
    # Random cases, seeded (Hypothesis does not drive async tests here): a limit, and which of
    # two workers sees each hit.
    rng = random.Random(seed)
    limit = rng.randint(50, 400)
    turns = [rng.choice((0, 0, 1)) for _ in range(rng.randint(1, 2 * limit))]
    rate = Rate(limit=limit, period=60.0)
    key = f"lease:{uuid.uuid4().hex}"
    unused_at_most = 2 * max(0, limit // LEASE_SHARE - 1)  # two workers' leases
    allowed = 0
    for worker in turns:
        workers(worker)
        decision = await throttle.athrottle(key, rate, now=1000.0)
        # Before the limit less what two workers may hold unused, every hit is allowed.
        assert decision.allowed or allowed >= limit - unused_at_most
        allowed += decision.allowed

    assert allowed <= limit
    assert allowed >= min(len(turns), limit - unused_at_most)


async def test_a_busy_key_claims_in_batches_and_a_quiet_one_claims_one(workers):
    rate = Rate(limit=600, period=60.0)
    store = kv.get_store()
    busy, quiet = f"busy:{uuid.uuid4().hex}", f"quiet:{uuid.uuid4().hex}"

    for _ in range(20):
        await throttle.athrottle(busy, rate, now=1000.0)
    await throttle.athrottle(quiet, rate, now=1000.0)

    window = 1000 // 60
    counted = [
        await store.ahit(f"rl:{key}", window=window, period=60.0, amount=0) for key in (busy, quiet)
    ]
    # 20 hits claimed as 1 + 2 + 4 + 8 + 12 (the cap, 600 / 50): 27 counted, 5 round trips.
    assert [current for _, current in counted] == [27, 1]


async def test_concurrent_hits_share_one_claim_and_lose_no_numbers(workers):
    rate = Rate(limit=600, period=60.0)
    key = f"concurrent:{uuid.uuid4().hex}"

    decisions = await asyncio.gather(
        *(throttle.athrottle(key, rate, now=1000.0) for _ in range(200))
    )

    counted = await kv.get_store().ahit(f"rl:{key}", window=1000 // 60, period=60.0, amount=0)
    assert all(decision.allowed for decision in decisions)
    # 200 hits claimed as 1, 2, 4, 8 and then 12 at a time: at most one claim left unused.
    assert 200 <= counted[1] < 200 + 600 // LEASE_SHARE


async def test_a_key_over_its_limit_claims_one_at_a_time(workers):
    rate = Rate(limit=100, period=60.0)
    key = f"refusing:{uuid.uuid4().hex}"
    for _ in range(100):
        await throttle.athrottle(key, rate, now=1000.0)
    counted_at_limit = (await kv.get_store().ahit(f"rl:{key}", window=16, period=60.0, amount=0))[1]

    refused = [await throttle.athrottle(key, rate, now=1000.0) for _ in range(30)]

    counted = (await kv.get_store().ahit(f"rl:{key}", window=16, period=60.0, amount=0))[1]
    assert not any(decision.allowed for decision in refused)
    assert counted - counted_at_limit <= 30  # no batches claimed for refused hits


# --- a Redis that takes connections and answers nothing (stalled, half-open) ------------------
@pytest.fixture
def frozen_redis(tmp_path, monkeypatch):
    from tests.system.services import PrivateRedis

    server = PrivateRedis(tmp_path)
    server.start()
    monkeypatch.setattr(kv, "_store", RedisStore(RedisTarget(url=server.url), "t:"))
    monkeypatch.setattr(throttle, "_local", kv.MemoryStore())
    monkeypatch.setattr(throttle, "_leases", {})
    server.freeze()
    yield server
    server.thaw()
    server.stop()


async def test_a_stalled_redis_does_not_hold_the_command_and_the_claim_lands_later(
    frozen_redis,
):
    rate = Rate(limit=3, period=60.0)
    key = f"stall:{uuid.uuid4().hex}"
    loop = asyncio.get_running_loop()

    started = loop.time()
    decisions = [await throttle.athrottle(key, rate) for _ in range(4)]
    waited = loop.time() - started

    # Counted here while Redis is silent: the limit still holds, and only the first hit waited
    # for the claim (the others found it in flight and went on at once, counted locally too).
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert waited < 2 * throttle.SLOW_CLAIM_SECONDS
    claim, _ = throttle._claims[key]

    frozen_redis.thaw()
    await asyncio.wait_for(claim, timeout=10)

    assert key not in throttle._claims
    assert throttle._leases[key].end >= 1  # the claim was counted in Redis after all
