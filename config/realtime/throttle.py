"""Rate limits shared by every worker: the same limiter serves WebSocket commands and REST.

decision = await athrottle(f"ws:{user.pk}:{command.type}", parse_rate("600/min"))
if not decision.allowed:
    raise AppError(ErrorCode.RATE_LIMITED, retry_after=decision.retry_after)
"""

from __future__ import annotations

import time

from config.realtime.kv import get_store
from config.realtime.ratelimit import Decision, Rate, decide, window_at


def throttle(key: str, rate: Rate, *, now: float | None = None) -> Decision:
    window = window_at(time.time() if now is None else now, rate.period)
    previous, current = get_store().hit(f"rl:{key}", window=window.index, period=rate.period)
    return decide(rate, window, previous=previous, current=current)


async def athrottle(key: str, rate: Rate, *, now: float | None = None) -> Decision:
    window = window_at(time.time() if now is None else now, rate.period)
    previous, current = await get_store().ahit(f"rl:{key}", window=window.index, period=rate.period)
    return decide(rate, window, previous=previous, current=current)
