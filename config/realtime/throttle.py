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
import functools
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
_claims: dict[str, tuple[asyncio.Future[Decision], float]] = {}  # and when it began
# Normally a claim takes one Redis round trip (< 1 ms here, a few ms across a network); a
# command waits this long for it at most, then is counted locally (athrottle).
SLOW_CLAIM_SECONDS = 0.25


def _degraded(error: object) -> MemoryStore:
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
    counted as hits: found by the full-scale rate-limit test, RELIABILITY S9 d).

    A claim that Redis has not answered within ``SLOW_CLAIM_SECONDS`` (a stall, a half-open
    socket) is left to finish in the background, and meanwhile the hits are counted in this
    process, as when Redis is down: a command must not wait on Redis (RELIABILITY F4)."""
    window = window_at(time.time() if now is None else now, rate.period)
    while True:
        lease = _leases.get(key)
        current = lease.take(window.index) if lease is not None else None
        if lease is not None and current is not None:
            return decide(rate, window, previous=lease.previous, current=current)
        loop = asyncio.get_running_loop()
        mine = key not in _claims
        if mine:
            claim = asyncio.ensure_future(_claim(key, rate, window, lease))
            claim.add_done_callback(functools.partial(_claim_done, key))
            _claims[key] = (claim, loop.time())
        claiming, started = _claims[key]
        # Waited for once: a claim already slow holds no later hit.
        await asyncio.wait([claiming], timeout=max(0.0, started + SLOW_CLAIM_SECONDS - loop.time()))
        if not claiming.done():
            return await _local_decision(key, rate, window, "Redis is slow to answer")
        if mine:
            return claiming.result()
        # Another hit's claim: take from the lease it left (or claim again if it was refused).


def _claim_done(key: str, claim: asyncio.Future[Decision]) -> None:
    if key in _claims and _claims[key][0] is claim:
        del _claims[key]
    if not claim.cancelled() and claim.exception() is not None:
        log.warning("claiming rate-limit numbers failed: %r", claim.exception())


async def _local_decision(key: str, rate: Rate, window: Window, why: object) -> Decision:
    previous, current = await _degraded(why).ahit(
        f"rl:{key}", window=window.index, period=rate.period
    )
    return decide(rate, window, previous=previous, current=current)


async def _claim(key: str, rate: Rate, window: Window, lease: Lease | None) -> Decision:
    store = get_store()
    size = lease_size(rate, lease, window.index) if isinstance(store, RedisStore) else 1
    hit = {"window": window.index, "period": rate.period}
    try:
        previous, end = await store.ahit(f"rl:{key}", **hit, amount=size)
    except RedisError as error:
        _leases.pop(key, None)
        return await _local_decision(key, rate, window, error)
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
