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

from config.realtime.kv import MemoryStore, RedisStore, get_store
from config.realtime.ratelimit import Decision, Lease, Rate, decide, lease_size, window_at

log = logging.getLogger(__name__)
_local = MemoryStore()  # the counts while the shared store is unreachable
_WARN_EVERY = 10.0  # seconds between two warnings of the same outage
_last_warning = 0.0
# This worker's leases of shared counts (athrottle), by key; the least recently claimed go first.
_leases: dict[str, Lease] = {}
MAX_LEASES = 10_000


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
    """As ``throttle``, with leases (ratelimit.Lease): a busy key costs a Redis round trip only
    when this worker's claimed numbers run out, not on every hit."""
    window = window_at(time.time() if now is None else now, rate.period)
    lease = _leases.get(key)
    current = lease.take(window.index) if lease is not None else None
    if lease is not None and current is not None:
        return decide(rate, window, previous=lease.previous, current=current)
    store = get_store()
    size = lease_size(rate, lease, window.index) if isinstance(store, RedisStore) else 1
    hit = {"window": window.index, "period": rate.period}
    try:
        previous, end = await store.ahit(f"rl:{key}", **hit, amount=size)
    except RedisError as error:
        _leases.pop(key, None)
        previous, current = await _degraded(error).ahit(f"rl:{key}", **hit)
        return decide(rate, window, previous=previous, current=current)
    _remember(key, Lease.claimed(window=window.index, previous=previous, end=end, size=size))
    return decide(rate, window, previous=previous, current=end - size + 1)


def _remember(key: str, lease: Lease) -> None:
    _leases.pop(key, None)  # re-inserted last: the least recently claimed key goes first
    _leases[key] = lease
    if len(_leases) > MAX_LEASES:
        del _leases[next(iter(_leases))]
