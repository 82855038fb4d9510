"""Rate limits while Redis cannot be reached: counted in this process, never an error
(RELIABILITY.md F3: a Redis outage must not turn writes into 500s, nor lift the limits)."""

from __future__ import annotations

import pytest

from config.realtime import kv, throttle
from config.realtime.kv import RedisStore
from config.realtime.ratelimit import Rate
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
