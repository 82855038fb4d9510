"""Metric updates on the per-delivery path, kept in process and applied once a second.

In multiprocess mode (PROMETHEUS_MULTIPROC_DIR) every ``inc`` or ``observe`` of prometheus_client
takes a lock, checks the pid (a system call) and writes an mmap: about 10 µs each on this
machine, measured. A broadcast to 10 sockets made 20 of them (a counter and a histogram per
delivery), about a tenth of a worker's CPU in the fan-out profile (docs/benchmarks.md). Here
an update is a dict increment, and each labelled series gets one ``inc(total)`` per flush.

    count(_messages_out("presence", "event"))         # instead of .inc()
    observe(_delivery_seconds("presence"), 0.004)     # instead of .observe(0.004)

Flushes run on the event loop ``FLUSH_SECONDS`` after the first pending update, before every
/metrics answer (so a scrape sees this process's updates at once; other workers' lag at most
``FLUSH_SECONDS``), and at exit. Only the event loop thread may call ``count`` and ``observe``
(Daphne's consumers do); code elsewhere uses prometheus_client directly.
"""

from __future__ import annotations

import asyncio
import atexit
import bisect
from typing import Any

FLUSH_SECONDS = 1.0

_counts: dict[Any, float] = {}
# histogram child -> [count per bucket (as prometheus_client orders them), sum of values]
_histograms: dict[Any, list[Any]] = {}
_scheduled = False


def count(child: Any, amount: float = 1.0) -> None:
    _counts[child] = _counts.get(child, 0.0) + amount
    _schedule()


def observe(child: Any, value: float) -> None:
    pending = _histograms.get(child)
    if pending is None:
        pending = _histograms[child] = [[0] * len(child._upper_bounds), 0.0]
    # The first bucket whose upper bound is >= value, as Histogram.observe chooses it (the last
    # bound is +Inf; only NaN finds none, and observe counts it in no bucket either).
    index = bisect.bisect_left(child._upper_bounds, value)
    if index < len(pending[0]):
        pending[0][index] += 1
    pending[1] += value
    _schedule()


def flush() -> None:
    global _counts, _histograms, _scheduled
    counts, histograms = _counts, _histograms
    _counts, _histograms, _scheduled = {}, {}, False
    for child, amount in counts.items():
        child.inc(amount)
    for child, (buckets, total) in histograms.items():
        # What Histogram.observe does per value, once per bucket: prometheus_client keeps a
        # value per bucket (not cumulative) and a sum; tests/unit/monitoring pins the equivalence.
        child._sum.inc(total)
        for index, hits in enumerate(buckets):
            if hits:
                child._buckets[index].inc(hits)


def _schedule() -> None:
    global _scheduled
    if _scheduled:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no loop (a sync caller): nothing would flush later, so now
        flush()
        return
    _scheduled = True
    loop.call_later(FLUSH_SECONDS, flush)


atexit.register(flush)
