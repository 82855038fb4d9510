"""Rate limits shared by every worker: the same limiter serves WebSocket commands and REST.

decision = await athrottle(f"ws:{user.pk}:{command.type}", parse_rate("600/min"))
if not decision.allowed:
    raise AppError(ErrorCode.RATE_LIMITED, retry_after=decision.retry_after)

When Redis cannot be reached the limits are counted in this process instead (each worker then
allows up to the whole limit): a Redis outage must not turn every write into an error, since
writes are acknowledged from PostgreSQL (RELIABILITY.md F3), and it must not lift the limits
either.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from config.realtime.kv import MemoryStore, get_store
from config.realtime.ratelimit import Decision, Rate, decide, window_at

log = logging.getLogger(__name__)
_local = MemoryStore()  # the counts while the shared store is unreachable
_WARN_EVERY = 10.0  # seconds between two warnings of the same outage
_last_warning = 0.0


def _degraded(error: Exception) -> MemoryStore:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > _WARN_EVERY:
        _last_warning = now
        log.warning("rate limits counted per process: the shared store failed (%r)", error)
    return _local


def throttle(key: str, rate: Rate, *, now: float | None = None) -> Decision:
    window = window_at(time.time() if now is None else now, rate.period)
    hit = {"window": window.index, "period": rate.period}
    try:
        previous, current = get_store().hit(f"rl:{key}", **hit)
    except RedisError as error:
        previous, current = _degraded(error).hit(f"rl:{key}", **hit)
    return decide(rate, window, previous=previous, current=current)


async def athrottle(key: str, rate: Rate, *, now: float | None = None) -> Decision:
    window = window_at(time.time() if now is None else now, rate.period)
    hit = {"window": window.index, "period": rate.period}
    try:
        previous, current = await get_store().ahit(f"rl:{key}", **hit)
    except RedisError as error:
        previous, current = await _degraded(error).ahit(f"rl:{key}", **hit)
    return decide(rate, window, previous=previous, current=current)
