"""The WebSocket side's ORM calls (config/realtime/orm.py): with several threads two calls run
at once, so one that waits (a lock, a slow query) holds no other; with one, they take turns on
Channels' single thread, as on SQLite."""

from __future__ import annotations

import asyncio
import threading

import pytest

from config.realtime import orm
from config.realtime.orm import database_sync_to_async, in_turn

# Each call closes its thread's stale connections first, as Channels' does; a pool thread may
# hold one from an earlier test, and its health check is a query.
pytestmark = pytest.mark.django_db


def meet(barrier: threading.Barrier) -> str:
    barrier.wait()  # returns only once both calls are in it at the same time
    return threading.current_thread().name


async def test_two_calls_run_at_once_on_the_pool(settings):
    settings.REALTIME_ORM_THREADS = 3
    barrier = threading.Barrier(2, timeout=5)

    names = await asyncio.gather(
        database_sync_to_async(meet)(barrier), database_sync_to_async(meet)(barrier)
    )

    assert len(set(names)) == 2 and all(name.startswith("orm") for name in names)


async def test_with_one_thread_the_calls_take_turns(settings):
    settings.REALTIME_ORM_THREADS = 1
    barrier = threading.Barrier(2, timeout=0.5)

    with pytest.raises(threading.BrokenBarrierError):
        await asyncio.gather(
            database_sync_to_async(meet)(barrier), database_sync_to_async(meet)(barrier)
        )


async def test_arguments_results_and_errors_pass_through(settings):
    settings.REALTIME_ORM_THREADS = 2

    def divide(a: int, *, by: int) -> float:
        return a / by

    assert await database_sync_to_async(divide)(6, by=3) == 2
    with pytest.raises(ZeroDivisionError):
        await database_sync_to_async(divide)(1, by=0)


async def test_writes_to_one_key_take_turns_in_arrival_order_and_leave_nothing_behind():
    inside: list[str] = []
    order: list[str] = []

    async def write(key: str, name: str) -> None:
        async with in_turn(key):
            inside.append(name)
            assert [n for n in inside if n[0] == name[0]] == [name]  # alone with its key
            await asyncio.sleep(0.01)
            order.append(name)
            inside.remove(name)

    await asyncio.gather(*(write("doc:1", f"a{n}") for n in range(5)), write("doc:2", "b0"))

    assert [name for name in order if name[0] == "a"] == [f"a{n}" for n in range(5)]
    assert order.index("b0") < order.index("a1")  # another key did not wait for doc:1
    assert orm._turns == {}
