"""Readiness checks: PostgreSQL, Redis and a channel-layer round trip, each timed.

checks = await readiness()   # {"database": {"ok": True, "ms": 0.8}, ...}
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from config.realtime.control import worker_channel
from config.realtime.kv import get_store
from config.realtime.orm import database_sync_to_async

log = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2.0

# The sync Redis client runs in threads of its own, neither the ORM thread (a Redis stall must
# not queue behind database work) nor the loop's default executor: a ping to a frozen Redis holds
# its thread for the client's socket timeout (3 s), past this check's, and a few concurrent
# probes then took every default thread, where Django logs each 503 (/readyz answered in > 3 s).
_redis_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readiness-redis")
# Tasks left to finish on their own (see _timed and _end_channel); kept so they are not
# garbage-collected while pending.
_background: set[asyncio.Future[Any]] = set()


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _redis_ping() -> None:
    await asyncio.get_running_loop().run_in_executor(_redis_threads, get_store().ping)


async def _layer_round_trip() -> None:
    layer = get_channel_layer()
    # Not new_channel("readyz."): on the core Redis layer that channel's key is one no receive
    # serves while a socket's receive waits, and the check timed out whenever the worker had a
    # socket open (config.realtime.control.worker_channel).
    channel = await worker_channel(layer, "readyz")
    receiving = False
    try:
        await layer.send(channel, {"type": "readyz.ping"})
        receiving = True
        await layer.receive(channel)
        receiving = False
    finally:
        if not receiving:  # a receive cancelled while it waits ends the channel by itself
            _end_channel(layer, channel)


def _end_channel(layer: Any, channel: str) -> None:
    # A channel ends the way a consumer's does, when a receive pending on it is cancelled: only
    # then does the channels-redis pub/sub layer unsubscribe it, so every probe used to leave a
    # subscription behind (in Redis and in the worker, re-subscribed on each reconnect). In the
    # background: with Redis frozen the unsubscribe may wait, and the probe must not.
    ending = _keep(asyncio.ensure_future(layer.receive(channel)))
    asyncio.get_running_loop().call_soon(ending.cancel)  # after its first step: it is waiting


def _keep(task: asyncio.Future[Any]) -> asyncio.Future[Any]:
    _background.add(task)
    task.add_done_callback(_forget)
    return task


def _forget(task: asyncio.Future[Any]) -> None:
    _background.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned check may still fail after its answer


async def _timed(check: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    started = time.perf_counter()
    task = asyncio.ensure_future(check())
    try:
        done, _ = await asyncio.wait([task], timeout=CHECK_TIMEOUT_SECONDS)
    finally:
        if not task.done():
            # Cancelled but not awaited, unlike asyncio.wait_for: redis-py writes through
            # asyncio.wait_for, which on Python 3.11 can swallow a cancellation, and the check
            # then ran on into a reconnect bounded only by the 15 s socket timeout (with Redis
            # frozen, /readyz answered after 17 s).
            _keep(task).cancel()
    error = _error_name(task) if done else "TimeoutError"
    if error is not None:  # any failure means "not ready"; the kind is enough to act on
        log.warning("readiness check failed: %s", error)
        return {"ok": False, "error": error}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


def _error_name(task: asyncio.Future[Any]) -> str | None:
    if task.cancelled():
        return "CancelledError"
    error = task.exception()
    return None if error is None else type(error).__name__


async def readiness() -> dict[str, dict[str, Any]]:
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "database": database_sync_to_async(_database),
        "channel_layer": _layer_round_trip,
    }
    if settings.REDIS_ENABLED:
        checks["redis"] = _redis_ping
    results = await asyncio.gather(*(_timed(check) for check in checks.values()))
    return dict(zip(checks, results, strict=True))
