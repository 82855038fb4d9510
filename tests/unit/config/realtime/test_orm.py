"""The WebSocket side's ORM calls (config/realtime/orm.py): with several threads two calls run
at once, so one that waits (a lock, a slow query) holds no other; with one, they take turns on
Channels' single thread, as on SQLite."""

from __future__ import annotations

import asyncio
import threading

import pytest

from config.realtime.orm import database_sync_to_async


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
