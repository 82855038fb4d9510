"""Rate-limit arithmetic: parsing "120/min" and the sliding-window counter. Pure.

A rate is ``"<count>/<period>"`` where period is ``s``, ``sec``, ``min``, ``h``, ``hour``, ``day``
or a multiple such as ``10s`` or ``5min``:

    rate = parse_rate("120/min")                      # Rate(limit=120, period=60.0)
    window = window_at(now=1000.5, period=rate.period)  # Window(index=16, elapsed=40.5)
    decide(rate, window, previous=80, current=30)     # Decision(allowed=True, retry_after=0.0)

The sliding-window counter (as used by Cloudflare and many API gateways) keeps two integer
counters per key: the current fixed window and the previous one, weighted by how much of the
previous window still overlaps the last ``period`` seconds. It needs one atomic INCR per hit, so
it is exact under concurrency, and a burst at a window boundary gets ``limit`` hits, not the 2x a
plain fixed window allows. Its bound is on bursts, not on every sliding period: a client that
paces hits to the edge of each decision can fit up to ``2 * limit`` hits in one sliding period
(tests pin both bounds). A limit that must be strict per sliding period needs another algorithm
(e.g. GCRA in a Redis script).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    period: float


@dataclass(frozen=True, slots=True)
class Window:
    index: int
    elapsed: float  # seconds since this window started


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float  # seconds until a hit would be allowed again; 0 when allowed


@functools.cache  # rates come from settings: a handful of strings, parsed once each
def parse_rate(text: str) -> Rate:
    """Parse "120/min", "5/10s", "1000/h". Raises ValueError with a readable message."""
    match = _RATE.match(text.lower())
    if not match or match.group(3) not in _UNITS:
        raise ValueError(f"Not a rate: {text!r}; expected e.g. '120/min' or '5/10s'.")
    count, multiple, unit = match.groups()
    period = (int(multiple) if multiple else 1) * _UNITS[unit]
    if period <= 0 or int(count) <= 0:
        raise ValueError(f"Not a rate: {text!r}; the count and the period must be positive.")
    return Rate(limit=int(count), period=float(period))


def window_at(now: float, period: float) -> Window:
    index = math.floor(now / period)
    # now / period can round up to the next integer just before a boundary: never go negative.
    return Window(index=index, elapsed=max(0.0, now - index * period))


def estimate(previous: int, current: int, elapsed: float, period: float) -> float:
    """Hits in the last ``period`` seconds, assuming the previous window's were spread evenly."""
    overlap = max(0.0, 1.0 - elapsed / period)
    return previous * overlap + current


def decide(rate: Rate, window: Window, *, previous: int, current: int) -> Decision:
    """Whether the hit that made ``current`` (already counted) is within the rate."""
    if estimate(previous, current, window.elapsed, rate.period) <= _allowance(rate, previous):
        return Decision(allowed=True, retry_after=0.0)
    # A microsecond over the exact answer: a float holds epoch seconds only to ~0.25 us, and a
    # client that waits exactly retry_after must not be refused by that rounding.
    wait = _retry_after(rate, window, previous, current) + 1e-6
    return Decision(allowed=False, retry_after=wait)


def _allowance(rate: Rate, previous: int) -> float:
    # Hits paced exactly period/limit apart put limit + 1 hits in every closed period (the first
    # and last are exactly period apart), and the even-spread estimate counts a share of that
    # first one: so steady traffic at exactly the rate estimates to just under limit + 1. Allow
    # that one hit only when there is a previous window to blame it on, so a fresh burst is
    # exactly ``limit``. The tolerance absorbs float rounding at window boundaries.
    return rate.limit + min(previous, 1) + 1e-9


def _retry_after(rate: Rate, window: Window, previous: int, current: int) -> float:
    # The estimate falls as the previous window slides out; find when one more hit fits.
    # Solve previous * (1 - t/period) + current + 1 <= limit + 1 for t (seconds into this window).
    room = rate.limit - current
    if room >= 0 and previous > 0:
        t = rate.period * (1.0 - room / previous)
        return max(0.0, t - window.elapsed)
    # Even with the previous window gone this one is full: wait for the next window, where this
    # window's count becomes the weighted "previous".
    wait = rate.period - window.elapsed
    if current > rate.limit:
        # In the next window: current * (1 - t/period) + 1 <= limit + 1.
        wait += rate.period * (1.0 - rate.limit / current)
    return wait


@dataclass(slots=True)
class WindowCounter:
    """The same sliding window kept in process, for limits that belong to one connection.

    counter = WindowCounter()
    counter.hit(parse_rate("20/min"), now=1000.0)   # Decision(allowed=True, retry_after=0.0)
    """

    window: int = 0
    previous: int = 0
    current: int = 0

    def hit(self, rate: Rate, now: float) -> Decision:
        window = window_at(now, rate.period)
        if window.index != self.window:
            self.previous = self.current if window.index == self.window + 1 else 0
            self.current, self.window = 0, window.index
        self.current += 1
        return decide(rate, window, previous=self.previous, current=self.current)


# A lease takes at most this share of a limit at once (see Lease).
LEASE_SHARE = 50


@dataclass(slots=True)
class Lease:
    """Hits of one window claimed from the shared counter in a batch, then used one by one here.

    A shared limit costs a Redis round trip per hit (~200 µs of worker CPU in redis-py, the
    fan-out profile in docs/benchmarks.md). A worker that keeps seeing a key claims the next
    ``size`` count numbers at once (INCRBY) and decides its following hits with them, doubling
    the claim while the key stays busy in the window, up to ``limit / LEASE_SHARE``. Every hit
    still has its own number, so no more than the limit is ever allowed; numbers claimed but
    not used count as hits, so with W workers a key can be refused up to W * (cap - 1) hits
    early: at 600/min and two workers, 22 hits (under 4 %).

        lease = Lease.claimed(window=16, previous=40, end=8, size=4)  # numbers 5..8 are ours
        lease.take(16)   # 6 (5 went to the hit that made the claim), then 7, 8, then None
    """

    window: int
    previous: int  # the previous window's count when claimed
    next: int  # the next number of ours
    end: int  # the last number of ours
    size: int  # how many the claim took

    @classmethod
    def claimed(cls, *, window: int, previous: int, end: int, size: int) -> Lease:
        """After INCRBY size returned ``end``: the first number went to the hit that claimed."""
        return cls(window=window, previous=previous, next=end - size + 2, end=end, size=size)

    def take(self, window: int) -> int | None:
        """The next number of ours in ``window``, or None when a new claim is needed."""
        if window != self.window or self.next > self.end:
            return None
        current = self.next
        self.next += 1
        return current


def lease_size(rate: Rate, lease: Lease | None, window: int) -> int:
    """One at first in a window (a quiet key claims nothing extra), then double the last claim
    (a claim of size 0 marks a refusing key: it goes on one at a time)."""
    if lease is None or lease.window != window:
        return 1
    return max(1, min(rate.limit // LEASE_SHARE, lease.size * 2))
