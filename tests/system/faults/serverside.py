"""What the workers measured themselves, next to what the test's clients saw.

At full scale one pytest process drives hundreds of clients on the same two cores as the
workers. Its event loop falls behind, and a latency timed at the client then includes that lag
(measured: at 200 editors the test process used a whole core while each worker used a fifth).
Two figures tell the rig from the server:

    lag = LoopLag()                                        # the test process's own delay
    before = handler_histogram(worker, "collab.op.submit")
    ...load...
    lag.stop()
    record(..., client_loop_lag_ms=lag.percentiles(),
           server_ack_ms=handler_quantiles(before, handler_histogram(worker, "collab.op.submit")))

``collab_ws_handler_seconds`` is each worker's time from a command's receipt to its reply. The
workers of one ``daphne_workers`` call share a multiprocess metrics directory, so either one's
/metrics covers both.
"""

from __future__ import annotations

import asyncio
import math

from prometheus_client.parser import text_string_to_metric_families

from monitoring.loadtest.measure import percentiles
from monitoring.loadtest.workers import Worker
from tests.system.client import http_request

HANDLER_METRIC = "collab_ws_handler_seconds"  # receipt of a command to its reply
DELIVERY_METRIC = "collab_broadcast_delivery_seconds"  # commit to the frame handed to a socket
Histogram = dict[float, float]  # upper bound (s) -> cumulative count


def handler_histogram(worker: Worker, command_type: str) -> Histogram:
    """The cumulative buckets of one command type's handler time, both workers together."""
    return histogram(worker, HANDLER_METRIC, type=command_type)


def histogram(worker: Worker, metric: str, **labels: str) -> Histogram:
    """The cumulative buckets of the samples of ``metric`` with these labels, summed."""
    status, body, _ = http_request(worker.http_url("/metrics"), accept="text/plain", timeout=30)
    assert status == 200, status
    buckets: Histogram = {}
    for family in text_string_to_metric_families(body.decode()):
        if family.name != metric:
            continue
        for sample in family.samples:
            wanted = all(sample.labels.get(key) == value for key, value in labels.items())
            if sample.name.endswith("_bucket") and wanted:
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return buckets


def handler_quantiles(
    before: Histogram, after: Histogram, quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)
) -> dict[str, float | None]:
    """Quantiles in ms of what was observed between two readings, interpolated within a
    bucket as Prometheus' histogram_quantile does; past the last finite bound, that bound."""
    window = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    total = window[-1][1] if window else 0.0
    result: dict[str, float | None] = {"count": total}
    for q in quantiles:
        result[f"p{round(q * 100)}"] = None if total == 0 else _quantile(window, q * total)
    return result


def _quantile(window: list[tuple[float, float]], rank: float) -> float:
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in window:
        if count >= rank:
            if math.isinf(bound):
                return round(lower_bound * 1000, 1)
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1
            return round((lower_bound + (bound - lower_bound) * share) * 1000, 1)
        lower_bound, lower_count = bound, count
    return round(lower_bound * 1000, 1)


class LoopLag:
    """How late this process's event loop wakes a task asking for 50 ms, sampled until stop()."""

    PERIOD = 0.05

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._task = asyncio.ensure_future(self._sample())

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self.PERIOD)
            self.lags_ms.append((loop.time() - asked - self.PERIOD) * 1000)

    def stop(self) -> None:
        self._task.cancel()

    def percentiles(self) -> dict[str, float]:
        return percentiles(self.lags_ms)


# The series of L-nominal (RELIABILITY.md L1): op acks, op fan-out, chat (comments) delivery.
NOMINAL_SERIES = {
    "server_ack_ms": (HANDLER_METRIC, {"type": "collab.op.submit"}),
    "server_fanout_ms": (DELIVERY_METRIC, {"app": "collab"}),
    "server_chat_ms": (DELIVERY_METRIC, {"app": "comments"}),
    # Of the ack: the op's transaction alone (row lock, transform, store), where ops of one
    # document queue on each other.
    "server_op_commit_ms": ("collab_op_commit_seconds", {}),
}


class ServerWindow:
    """The workers' own figures over a stretch of a test, with the test process's loop lag.

    window = await ServerWindow.open(worker)
    ...
    figures = await window.close()   # {"server_ack_ms": {...}, ..., "client_loop_lag_ms": {...}}
    """

    def __init__(self, worker: Worker, before: dict[str, Histogram]) -> None:
        self.worker = worker
        self.before = before
        self.lag = LoopLag()

    @classmethod
    async def open(cls, worker: Worker) -> ServerWindow:
        return cls(worker, await asyncio.to_thread(_read_series, worker))

    async def close(self) -> dict[str, dict]:
        self.lag.stop()
        after = await asyncio.to_thread(_read_series, self.worker)
        figures: dict[str, dict] = {
            name: handler_quantiles(self.before[name], after[name]) for name in NOMINAL_SERIES
        }
        figures["client_loop_lag_ms"] = self.lag.percentiles()
        return figures


def _read_series(worker: Worker) -> dict[str, Histogram]:
    return {
        name: histogram(worker, metric, **labels)
        for name, (metric, labels) in NOMINAL_SERIES.items()
    }
