"""Every Prometheus metric of the project is defined here, and only here.

    from monitoring import metrics
    metrics.WS_MESSAGES_IN.labels(app="presence", type="presence.signal.send").inc()

Label values come from closed sets (app names, registered message types, ErrorCode values),
never from client input, so a client cannot blow up the number of series.

Multiprocess mode: when PROMETHEUS_MULTIPROC_DIR names a directory shared by every Daphne worker
of a host (emptied before they start), each worker writes its values there and ``/metrics`` on
any of them answers for all (``registry()``). Unset, one process exports its own default registry.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

# prometheus_client reads it when first imported: set it in the environment, not in settings.
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

WS_CONNECTIONS = Gauge(
    "collab_ws_connections",
    "Open authenticated WebSocket connections.",
    ["app"],
    multiprocess_mode="livesum",
)
WS_CONNECTS = Counter(
    "collab_ws_connects_total", "WebSocket handshakes by outcome.", ["app", "outcome"]
)
WS_MESSAGES_IN = Counter(
    "collab_ws_messages_in_total", "Client frames received, by message type.", ["app", "type"]
)
WS_MESSAGES_OUT = Counter(
    "collab_ws_messages_out_total", "Frames sent to clients, by kind.", ["app", "kind"]
)
ERRORS = Counter(
    "collab_errors_total", "Errors answered, by channel and code.", ["channel", "code"]
)
RATE_LIMITED = Counter(
    "collab_rate_limited_total", "Requests refused by a rate limit.", ["channel", "action"]
)
HANDLER_SECONDS = Histogram(
    "collab_ws_handler_seconds",
    "Time to handle one client command, from receipt to reply.",
    ["app", "type"],
    buckets=LATENCY_BUCKETS,
)
OP_COMMIT_SECONDS = Histogram(
    "collab_op_commit_seconds",
    "Time to commit one collab op: lock, transform, store (operation_submit).",
    buckets=LATENCY_BUCKETS,
)
DELIVERY_SECONDS = Histogram(
    "collab_broadcast_delivery_seconds",
    "From commit (or send, for soft state) to the frame handed to a socket, on each worker.",
    ["app"],
    buckets=LATENCY_BUCKETS,
)
LAYER_SEND_FAILURES = Counter(
    "collab_layer_send_failures_total",
    "Channel-layer group sends that raised, by reason.",
    ["reason"],
)
LAYER_OVER_CAPACITY = Counter(
    "collab_layer_over_capacity_total",
    "Messages the channel layer dropped because a receiving channel was full.",
)
PRESENCE_CONNECTIONS = Gauge(
    "collab_presence_connections",
    "Connections the workers keep present (all apps).",
    multiprocess_mode="livesum",
)
PRESENCE_USERS = Gauge(
    "collab_presence_users",
    "Distinct users with at least one connection on a worker (one series per worker pid).",
    multiprocess_mode="liveall",
)
PRESENCE_TRANSITIONS = Counter(
    "collab_presence_transitions_total",
    "Presence changes published, by what caused them.",
    ["cause"],
)
PRESENCE_REAPED = Counter(
    "collab_presence_reaped_total", "Connections dropped because their worker stopped refreshing."
)
READINESS_OK = Gauge(
    "collab_readiness_ok",
    "1 when the last /readyz check of a dependency passed on this host, else 0.",
    ["check"],
    multiprocess_mode="livemostrecent",
)
READINESS_SECONDS = Gauge(
    "collab_readiness_check_seconds",
    "Latency of the last /readyz check of a dependency on this host.",
    ["check"],
    multiprocess_mode="livemostrecent",
)
WORKER_START_TIME = Gauge(
    "collab_worker_start_time_seconds",
    "Start time of each live worker process; count() of it is the number of live workers.",
    multiprocess_mode="liveall",
)
WORKER_CRASHES = Counter(
    "collab_worker_crashes_total",
    "Workers found dead without having exited cleanly (their live gauges were dropped).",
)

WORKER_START_TIME.set(time.time())


def registry() -> CollectorRegistry:
    """What /metrics exports: every worker's values in multiprocess mode, else this process's."""
    if MULTIPROC_DIR is None:
        return REGISTRY
    _reap_dead_workers(Path(MULTIPROC_DIR))
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected, path=MULTIPROC_DIR)
    return collected


def _reap_dead_workers(directory: Path) -> None:
    # A worker killed without running atexit leaves its live gauges behind (its connections
    # would count for ever). The workers share the host, so any of them can tell it is gone.
    pids = {int(f.stem.rsplit("_", 1)[1]) for f in directory.glob("gauge_live*_*.db")}
    for pid in pids - {os.getpid()}:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, MULTIPROC_DIR)
            WORKER_CRASHES.inc()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if MULTIPROC_DIR is not None:
    atexit.register(multiprocess.mark_process_dead, os.getpid(), MULTIPROC_DIR)


class LayerOverCapacityCounter(logging.Handler):
    """Counts the drops channels-redis reports only in a log line (LOGGING in settings)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "%s of %s channels over capacity in group %s" and record.args:
            LAYER_OVER_CAPACITY.inc(int(record.args[0]))  # type: ignore[index]
