"""Readiness checks: PostgreSQL, Redis and a channel-layer round trip, each timed.

checks = await readiness()   # {"database": {"ok": True, "ms": 0.8}, ...}
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from config.realtime.kv import get_store

log = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2.0


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _layer_round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel("readyz.")
    await layer.send(channel, {"type": "readyz.ping"})
    await layer.receive(channel)


async def _timed(check: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # any failure means "not ready"; the kind is enough to act on
        log.warning("readiness check failed: %s", type(error).__name__)
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


async def readiness() -> dict[str, dict[str, Any]]:
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "database": database_sync_to_async(_database),
        "channel_layer": _layer_round_trip,
    }
    if settings.REDIS_URL:
        # The sync client runs in a worker thread, not the ORM thread: a Redis stall must not
        # queue behind database work.
        checks["redis"] = lambda: asyncio.to_thread(get_store().ping)
    results = await asyncio.gather(*(_timed(check) for check in checks.values()))
    return dict(zip(checks, results, strict=True))
