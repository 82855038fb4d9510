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

import asyncio
import logging
import time
from dataclasses import replace

from redis.exceptions import RedisError

from config.realtime.kv import MemoryStore, RedisStore, get_store
from config.realtime.ratelimit import (
    Decision,
    Lease,
    Rate,
    Window,
    decide,
    lease_size,
    window_at,
)

log = logging.getLogger(__name__)
_local = MemoryStore()  # the counts while the shared store is unreachable
_WARN_EVERY = 10.0  # seconds between two warnings of the same outage
_last_warning = 0.0
# This worker's leases of shared counts (athrottle), by key; the least recently claimed go first.
_leases: dict[str, Lease] = {}
MAX_LEASES = 10_000
# The claim in flight per key (athrottle): done when its lease is in _leases.
_claims: dict[str, asyncio.Future[None]] = {}


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
    when this worker's claimed numbers run out, not on every hit. One claim per key is in
    flight at a time: hits that find the lease used up while another claims wait for that claim
    and take from it, instead of each claiming a batch of its own (all but the last were lost,
    counted as hits: found by the full-scale rate-limit test, RELIABILITY S9 d)."""
    window = window_at(time.time() if now is None else now, rate.period)
    while True:
        lease = _leases.get(key)
        current = lease.take(window.index) if lease is not None else None
        if lease is not None and current is not None:
            return decide(rate, window, previous=lease.previous, current=current)
        claiming = _claims.get(key)
        if claiming is None:
            break
        await asyncio.shield(claiming)
    done = _claims[key] = asyncio.get_running_loop().create_future()
    try:
        return await _claim(key, rate, window, lease)
    finally:
        del _claims[key]
        done.set_result(None)


async def _claim(key: str, rate: Rate, window: Window, lease: Lease | None) -> Decision:
    store = get_store()
    size = lease_size(rate, lease, window.index) if isinstance(store, RedisStore) else 1
    hit = {"window": window.index, "period": rate.period}
    try:
        previous, end = await store.ahit(f"rl:{key}", **hit, amount=size)
    except RedisError as error:
        _leases.pop(key, None)
        previous, current = await _degraded(error).ahit(f"rl:{key}", **hit)
        return decide(rate, window, previous=previous, current=current)
    decision = decide(rate, window, previous=previous, current=end - size + 1)
    claimed = Lease.claimed(window=window.index, previous=previous, end=end, size=size)
    # Refused: claim one at a time from now on, so a key over its limit stops running up the
    # count (it is the next window's "previous", and would lock the user out longer).
    _remember(key, replace(claimed, size=0) if not decision.allowed else claimed)
    return decision


def _remember(key: str, lease: Lease) -> None:
    _leases.pop(key, None)  # re-inserted last: the least recently claimed key goes first
    _leases[key] = lease
    if len(_leases) > MAX_LEASES:
        del _leases[next(iter(_leases))]
