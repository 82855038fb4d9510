"""The shared store (config/realtime/kv.py): one suite, run against Redis and process memory."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from django.conf import settings

from config.realtime import kv
from config.realtime.kv import MemoryStore, RedisStore
from config.redis_target import RedisTarget

PERIOD = 60.0


@pytest.fixture(params=["redis", "memory"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    # Under the per-run prefix, which the autouse fixture of tests/conftest.py clears.
    return RedisStore(RedisTarget(url=settings.REDIS_URL), settings.REALTIME_KEY_PREFIX + "kv:")


# --- hit counting ---------------------------------------------------------------------------


def test_hit_counts_hits_in_the_current_window(store):
    assert store.hit("k", window=5, period=PERIOD) == (0, 1)
    assert store.hit("k", window=5, period=PERIOD) == (0, 2)
    assert store.hit("k", window=5, period=PERIOD) == (0, 3)


def test_hit_reports_the_previous_window_once_it_moves_on(store):
    for _ in range(3):
        store.hit("k", window=5, period=PERIOD)

    assert store.hit("k", window=6, period=PERIOD) == (3, 1)
    assert store.hit("k", window=6, period=PERIOD) == (3, 2)
    assert store.hit("k", window=8, period=PERIOD) == (0, 1)  # window 7 saw nothing


def test_hit_keeps_keys_apart(store):
    store.hit("a", window=1, period=PERIOD)

    assert store.hit("b", window=1, period=PERIOD) == (0, 1)
    assert store.hit("a", window=1, period=PERIOD) == (0, 2)


async def test_ahit_counts_like_hit(store):
    assert await store.ahit("k", window=5, period=PERIOD) == (0, 1)
    assert store.hit("k", window=5, period=PERIOD) == (0, 2)
    assert await store.ahit("k", window=6, period=PERIOD) == (2, 1)


async def test_concurrent_hits_are_each_counted_once(store):
    results = await asyncio.gather(*(store.ahit("k", window=9, period=PERIOD) for _ in range(50)))

    assert sorted(current for _, current in results) == list(range(1, 51))


async def test_a_window_count_is_still_readable_one_period_later(store):
    period = 0.3
    store.hit("k", window=1, period=period)
    await asyncio.sleep(period + 0.05)

    assert await store.ahit("k", window=2, period=period) == (1, 1)


# --- single-use values ----------------------------------------------------------------------


def test_put_then_take_gives_the_value_once(store):
    store.put("ticket:t1", "7", ttl=30)

    assert store.take("ticket:t1") == "7"
    assert store.take("ticket:t1") is None


async def test_put_then_atake_gives_the_value_once(store):
    store.put("ticket:t2", "8", ttl=30)

    assert await store.atake("ticket:t2") == "8"
    assert await store.atake("ticket:t2") is None
    assert store.take("ticket:t2") is None


async def test_concurrent_takes_give_the_value_to_exactly_one(store):
    store.put("ticket:t3", "9", ttl=30)

    results = await asyncio.gather(*(store.atake("ticket:t3") for _ in range(20)))

    assert sorted(results, key=str) == ["9"] + [None] * 19


def test_take_of_an_unknown_key_is_none(store):
    assert store.take("ticket:never") is None


async def test_a_value_expires_after_its_ttl(store):
    store.put("ticket:short", "1", ttl=0.2)
    store.put("ticket:long", "2", ttl=30)
    await asyncio.sleep(0.4)

    assert await store.atake("ticket:short") is None
    assert await store.atake("ticket:long") == "2"


def test_put_replaces_an_earlier_value(store):
    store.put("ticket:t4", "1", ttl=30)
    store.put("ticket:t4", "2", ttl=30)

    assert store.take("ticket:t4") == "2"


# --- epoch and ping -------------------------------------------------------------------------


async def test_the_epoch_is_stable_across_calls(store):
    first = await store.aepoch()

    assert first
    assert await store.aepoch() == first
    assert await asyncio.gather(store.aepoch(), store.aepoch()) == [first, first]


def test_ping_answers(store):
    assert store.ping() is None


# --- Redis specifics: what every worker shares ----------------------------------------------


def redis_store() -> RedisStore:
    return RedisStore(RedisTarget(url=settings.REDIS_URL), settings.REALTIME_KEY_PREFIX + "kv:")


async def test_redis_workers_share_counters_tickets_and_the_epoch():
    worker_a, worker_b = redis_store(), redis_store()

    worker_a.put("ticket:shared", "5", ttl=30)
    await worker_a.ahit("k", window=3, period=PERIOD)

    assert await worker_b.atake("ticket:shared") == "5"
    assert await worker_b.ahit("k", window=3, period=PERIOD) == (0, 2)
    assert await worker_a.aepoch() == await worker_b.aepoch()


async def test_the_redis_epoch_changes_when_redis_loses_its_data():
    store = redis_store()
    before = await store.aepoch()

    redis.Redis.from_url(settings.REDIS_URL).delete(store.prefix + kv.EPOCH_KEY)

    after = await store.aepoch()
    assert after and after != before
    assert await store.aepoch() == after


def test_redis_counters_expire_after_two_periods():
    store = redis_store()
    store.hit("k", window=4, period=PERIOD)
    client = redis.Redis.from_url(settings.REDIS_URL)

    ttl = client.ttl(f"{store.prefix}k:4")

    assert 2 * PERIOD - 5 <= ttl <= 2 * PERIOD + 1
    store.hit("k", window=4, period=PERIOD)
    assert client.ttl(f"{store.prefix}k:4") <= ttl  # a later hit does not extend it


def test_redis_tickets_are_stored_with_their_ttl():
    store = redis_store()
    store.put("ticket:ttl", "1", ttl=30)

    ttl_ms = redis.Redis.from_url(settings.REDIS_URL).pttl(f"{store.prefix}ticket:ttl")

    assert 25_000 <= ttl_ms <= 30_000


def test_get_store_is_one_redis_store_for_the_process():
    assert isinstance(kv.get_store(), RedisStore)
    assert kv.get_store() is kv.get_store()
    assert kv.get_store().prefix == settings.REALTIME_KEY_PREFIX


def test_get_store_falls_back_to_memory_without_redis(settings):
    settings.REDIS_URL = ""
    kv.reset_store()

    assert isinstance(kv.get_store(), MemoryStore)


def test_memory_store_counters_expire(monkeypatch):
    # The clock is a process boundary: move it instead of sleeping two periods.
    store = MemoryStore()
    now = time.monotonic()
    store.hit("k", window=1, period=PERIOD)
    monkeypatch.setattr(kv.time, "monotonic", lambda: now + 2 * PERIOD + 2)

    assert store.hit("k", window=1, period=PERIOD) == (0, 1)
