"""Every Prometheus metric of the project is defined here, and only here.

    from monitoring import metrics
    metrics.WS_MESSAGES_IN.labels(app="presence", type="presence.signal.send").inc()

Label values come from closed sets (app names, registered message types, ErrorCode values),
never from client input, so a client cannot blow up the number of series.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

WS_CONNECTIONS = Gauge(
    "collab_ws_connections", "Open authenticated WebSocket connections.", ["app"]
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
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
PRESENCE_CONNECTIONS = Gauge(
    "collab_presence_connections", "Connections this worker keeps present (all apps)."
)
PRESENCE_USERS = Gauge(
    "collab_presence_users", "Distinct users with at least one connection on this worker."
)
PRESENCE_TRANSITIONS = Counter(
    "collab_presence_transitions_total",
    "Presence changes published, by what caused them.",
    ["cause"],
)
PRESENCE_REAPED = Counter(
    "collab_presence_reaped_total", "Connections dropped because their worker stopped refreshing."
)
