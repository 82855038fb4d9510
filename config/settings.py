"""Settings, read from the environment (see the configuration table in README.md).

With no environment at all this is the embedded default: SQLite, the in-memory channel layer,
local-memory cache and shared state, one process. ``DATABASE_URL`` switches to PostgreSQL and
``REDIS_URL`` to the channels-redis layer, a Redis cache and Redis shared state for N workers.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.redis_target import layer_host

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}.")


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_hosts(name: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` (Redis sentinels)."""
    hosts = []
    for item in env_list(name, []):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ImproperlyConfigured(f"{name} lists host:port pairs, comma-separated: {item!r}.")
        hosts.append((host, int(port)))
    return hosts


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return default if value in (None, "") else int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}.") from None


def env_caps(name: str) -> dict[str, int]:
    """``"lobby=500,document=50"`` as ``{"lobby": 500, "document": 50}``."""
    caps = {}
    for item in env_list(name, []):
        kind, _, value = item.partition("=")
        if not value.strip().isdigit() or int(value) < 1:
            raise ImproperlyConfigured(f"{name}: {item!r} is not kind=positive integer.")
        caps[kind.strip()] = int(value)
    return caps


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for a local demo with a throwaway key)."
        )
    SECRET_KEY = "insecure-local-demo-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
if not DEBUG and "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list hosts, not '*', when not DEBUG.")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "channels",
    "config.realtime",
    "collab",
    "comments",
    "forms_live",
    "presence",
    "monitoring",
    "axes",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last (django-axes): it turns a locked-out sign-in's response into the lockout answer,
    # which then passes the Prometheus middleware and is counted as a 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # Health checks make the pool test a connection before handing it out: after a PostgreSQL
    # restart or a killed backend, a dead pooled connection would otherwise cost a 500.
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)
    if _database["ENGINE"] == "django.db.backends.postgresql":
        # A small pool per process: the WebSocket side's ORM threads (REALTIME_ORM_THREADS, one
        # fewer than the pool) and Django's own thread each hold one connection while they work;
        # the timeout makes an outage a fast 503, not a hang.
        _database["OPTIONS"] = {
            "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 3),
            "pool": {
                "min_size": 1,
                "max_size": env_int("DATABASE_POOL_MAX", 4),
                "timeout": env_int("DATABASE_CONNECT_TIMEOUT", 3),
            },
        }
    # Behind PgBouncer in transaction pooling (docs/operations.md), a session outlives no
    # transaction: no server-side cursors, which QuerySet.iterator() would hold across them.
    # Prepared statements, the other session feature, Django already leaves off for psycopg.
    DATABASE_POOLER = os.environ.get("DATABASE_POOLER", "")
    if DATABASE_POOLER not in {"", "pgbouncer"}:
        raise ImproperlyConfigured("DATABASE_POOLER must be empty or 'pgbouncer'.")
    if DATABASE_POOLER:
        _database["DISABLE_SERVER_SIDE_CURSORS"] = True
    elif _database["ENGINE"] == "django.db.backends.postgresql":
        # A row locked by a stuck session must fail an op with a retryable error, not hold an
        # ORM thread (and the socket waiting on it) for as long as the lock lasts (RELIABILITY
        # F7b). PgBouncer passes no startup options: there, set it on the role
        # (docs/operations.md).
        _database["OPTIONS"]["options"] = (
            f"-c lock_timeout={env_int('DATABASE_LOCK_TIMEOUT_MS', 2000)}"
        )
    DATABASES = {"default": _database}
    # Threads per worker process for the WebSocket side's ORM calls (config/realtime/orm.py),
    # each holding a pooled connection while it works: one connection of the pool is left for
    # Django's own thread (REST views, the handshake's session lookup).
    REALTIME_ORM_THREADS = env_int(
        "REALTIME_ORM_THREADS", max(1, env_int("DATABASE_POOL_MAX", 4) - 1)
    )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        }
    }
    REALTIME_ORM_THREADS = 1  # SQLite takes one writer at a time: Channels' one thread
# django-prometheus's wrappers of the same backends count queries, errors and connections per
# database (django_db_* in /metrics); the backend itself is Django's, unchanged.
_INSTRUMENTED_BACKENDS = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}
for _alias in DATABASES.values():
    _alias["ENGINE"] = _INSTRUMENTED_BACKENDS.get(_alias["ENGINE"], _alias["ENGINE"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, shared state -------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Or Redis Sentinel, for failover (config/redis_target.py; docs/operations.md): the sentinels and
# the name of the master they watch, with the database and password of the Redis servers.
REDIS_SENTINELS = env_hosts("REDIS_SENTINELS")
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "")
REDIS_DB = env_int("REDIS_DB", 0)
REDIS_PASSWORD = os.environ.get("REDIS_PASSWORD", "")
if REDIS_SENTINELS and REDIS_URL:
    raise ImproperlyConfigured("Set REDIS_URL or REDIS_SENTINELS, not both.")
if REDIS_SENTINELS and not REDIS_SENTINEL_MASTER:
    raise ImproperlyConfigured("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (the master's name).")
REDIS_ENABLED = bool(REDIS_URL or REDIS_SENTINELS)
REALTIME_KEY_PREFIX = os.environ.get("REALTIME_KEY_PREFIX", "collab:")
# "pubsub" (RedisPubSubChannelLayer, the default) or "core" (RedisChannelLayer). Chosen by
# measurement (docs/benchmarks.md, "Channel layer: the choice"): with two workers, pubsub spent
# half the server CPU per delivery of core with a 3-14x lower p99, lost nothing at 500 msgs/s in
# where core dropped 68 %, and keeps no group state in Redis that a dead worker leaves behind.
REALTIME_CHANNEL_LAYER = os.environ.get("REALTIME_CHANNEL_LAYER", "pubsub")
if REALTIME_CHANNEL_LAYER not in {"pubsub", "core"}:
    raise ImproperlyConfigured("REALTIME_CHANNEL_LAYER must be 'pubsub' or 'core'.")
# Redis pools per worker process, sized in docs/benchmarks.md ("Bursts and pools"): 2,000 clients
# connecting at once keep two workers' event loops saturated for 7-18 s on the benchmark machine,
# so a command queues for a pooled connection (shared state: tickets, rate limits, the epoch)
# rather than failing after a few seconds with "No connection available".
REALTIME_REDIS_POOL_SIZE = env_int("REALTIME_REDIS_POOL_SIZE", 32)
REALTIME_REDIS_POOL_TIMEOUT = env_int("REALTIME_REDIS_POOL_TIMEOUT", 20)

if REDIS_ENABLED:
    _layer_host = layer_host(
        url=REDIS_URL,
        sentinels=REDIS_SENTINELS,
        master=REDIS_SENTINEL_MASTER,
        db=REDIS_DB,
        password=REDIS_PASSWORD,
        # channels-redis uses redis-py's non-blocking pool: past max_connections a command raises
        # MaxConnectionsError ("Too many connections"). The pubsub layer holds 2 connections per
        # worker; the core layer holds one per concurrent command, and redis-py's default of 100
        # failed when 1,000 clients (500 per worker) disconnected at once.
        max_connections=env_int("REALTIME_LAYER_MAX_CONNECTIONS", 2000),
        # redis-py >= 8 reads with a 5 s socket timeout by default, exactly the core layer's
        # BZPOPMIN block (5 s): the receive then fails with "Timeout reading from ..." and the
        # consumer dies (close 1011). Longer than that block, still bounded for a dead Redis.
        socket_timeout=15,
    )
    if REALTIME_CHANNEL_LAYER == "core":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [_layer_host],
                    "prefix": f"{REALTIME_KEY_PREFIX}asgi",
                    # Per worker, not per socket: every channel of a process shares one Redis
                    # list, so this is the backlog a worker may fall behind by before messages are
                    # dropped ("over capacity"). The default of 100 drops them silently.
                    "capacity": env_int("REALTIME_LAYER_CAPACITY", 2000),
                    "expiry": 30,
                    "group_expiry": env_int("REALTIME_GROUP_EXPIRY", 86400),
                },
            }
        }
    else:
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [_layer_host], "prefix": f"{REALTIME_KEY_PREFIX}asgi"},
            }
        }
    # Nothing of ours keeps shared state in Django's cache (that is config/realtime/kv.py); it
    # is there for third-party code. Django's Redis cache takes URLs only, not Sentinel.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{REALTIME_KEY_PREFIX}cache",
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Realtime layer ------------------------------------------------------------------------------
# Browsers send Origin; service clients must send one of these too (CSWSH defence, S3).
REALTIME_ALLOWED_ORIGINS = env_list(
    "DJANGO_WS_ALLOWED_ORIGINS",
    [f"http://{host}:8000" for host in ("localhost", "127.0.0.1")],
)
if not DEBUG and "*" in REALTIME_ALLOWED_ORIGINS:
    raise ImproperlyConfigured("DJANGO_WS_ALLOWED_ORIGINS must not contain '*' when not DEBUG.")
REALTIME_MAX_MESSAGE_BYTES = env_int("REALTIME_MAX_MESSAGE_BYTES", 65536)
# Routes /ws/bench/bare/ (monitoring/baseline.py), the bare Channels relay that
# `loadtest fanout --baseline` compares us with. A benchmark fixture: off in production.
REALTIME_BARE_BASELINE = env_bool("REALTIME_BARE_BASELINE", False)
REALTIME_MAX_DEPTH = env_int("REALTIME_MAX_DEPTH", 32)
REALTIME_HEARTBEAT_SECONDS = env_int("REALTIME_HEARTBEAT_SECONDS", 15)
# A connection silent for this long (no frame at all) is closed with 4408.
REALTIME_HEARTBEAT_TIMEOUT_SECONDS = env_int("REALTIME_HEARTBEAT_TIMEOUT_SECONDS", 45)
# On SIGTERM a worker closes its sockets with 4012 and waits at most this long for their close
# frames before it stops (config/realtime/shutdown.py); keep it below the service manager's stop
# timeout (deploy/systemd: TimeoutStopSec=20).
REALTIME_SHUTDOWN_GRACE_SECONDS = env_int("REALTIME_SHUTDOWN_GRACE_SECONDS", 5)
REALTIME_TICKET_TTL_SECONDS = env_int("REALTIME_TICKET_TTL_SECONDS", 30)
# Per user and message type, shared by all workers. A type not listed uses the default.
REALTIME_RATE_DEFAULT = os.environ.get("REALTIME_RATE_DEFAULT", "600/min")
REALTIME_RATES: dict[str, str] = {
    "presence.signal.send": os.environ.get("REALTIME_RATE_SIGNAL", "600/min"),
    # Each of these may broadcast to every room the user is in: tighter than the default.
    "presence.status.set": "30/min",
    "presence.activity.set": "120/min",
    "presence.room.update": "240/min",
    "presence.user.watch": "60/min",
    # One op in flight per client: a fast typist's client sends a few per second.
    "collab.op.submit": os.environ.get("REALTIME_RATE_OP", "3000/min"),
    "collab.cursor.set": os.environ.get("REALTIME_RATE_CURSOR", "1200/min"),
    # Each stores rows and broadcasts to the thread (and notifies): a person's pace, with room.
    "comments.comment.create": os.environ.get("REALTIME_RATE_COMMENT", "120/min"),
    "comments.comment.edit": "120/min",
    "comments.comment.delete": "120/min",
    "comments.reaction.add": os.environ.get("REALTIME_RATE_REACTION", "300/min"),
    "comments.reaction.remove": "300/min",
    "comments.thread.resolve": "60/min",
    "comments.thread.reopen": "60/min",
    # Clients repeat it every couple of seconds while typing; the server relays at most one
    # per socket every few seconds whatever arrives.
    "comments.typing.start": "120/min",
    "comments.typing.stop": "120/min",
    "comments.presence.set": "120/min",
    # Forms: a builder's changes and a respondent's values come in bursts while they type.
    "forms.field.change": os.environ.get("REALTIME_RATE_FORM_CHANGE", "600/min"),
    "forms.field.focus": "600/min",
    "forms.submission.update": os.environ.get("REALTIME_RATE_FORM_FILL", "600/min"),
    "forms.submission.submit": "60/min",
    "comments.target.watch": "120/min",
}
# Per connection, counted in the worker itself: for types that scale with sockets rather than
# users. Clients beat every REALTIME_HEARTBEAT_SECONDS; this leaves room for 5x that.
REALTIME_CONNECTION_RATES: dict[str, str] = {"session.heartbeat": "20/min"}
# Rejections within one rate window after which the socket is closed (4429) as abusive.
REALTIME_ABUSE_LIMIT = env_int("REALTIME_ABUSE_LIMIT", 50)
# Open sockets one user may hold at once, all apps and workers together (RELIABILITY.md S9 e;
# config/realtime/socket_slots.py); 0 turns the cap off. A document page holds up to three
# sockets (the document, notifications, an open thread) and the staff page two: 30 is ten pages
# open at once, more than a person keeps, while a script reusing one session or token stops
# there instead of at the 20,000 sockets a worker holds (docs/benchmarks.md). Staff count like
# everyone: theirs are the accounts most worth stealing. Service accounts too: there is no such
# kind of user here, and a service that needs more sockets runs as several users (as the load
# tests do, one socket each) or raises the cap for everyone.
REALTIME_MAX_SOCKETS_PER_USER = env_int("REALTIME_MAX_SOCKETS_PER_USER", 30)
# A socket's place in that count lapses this long after its worker last renewed it (it renews
# every third of this), so the sockets of a worker killed with kill -9 stop counting by then.
REALTIME_SOCKET_SLOT_TTL_SECONDS = env_int("REALTIME_SOCKET_SLOT_TTL_SECONDS", 30)
if REALTIME_MAX_SOCKETS_PER_USER < 0 or REALTIME_SOCKET_SLOT_TTL_SECONDS < 3:
    raise ImproperlyConfigured(
        "REALTIME_MAX_SOCKETS_PER_USER must be 0 (no cap) or more, and "
        "REALTIME_SOCKET_SLOT_TTL_SECONDS at least 3."
    )

# --- Presence (DESIGN section 7) -------------------------------------------------------------
# Every connection's presence entry lapses this long after its worker last refreshed it (the
# worker refreshes a third of the way through), so a worker killed with kill -9 shows its users
# offline within PRESENCE_TTL_SECONDS + PRESENCE_REAP_SECONDS.
PRESENCE_TTL_SECONDS = env_int("PRESENCE_TTL_SECONDS", 30)
PRESENCE_REAP_SECONDS = env_int("PRESENCE_REAP_SECONDS", 5)
# A user with no input on any connection for this long shows as away.
PRESENCE_AWAY_SECONDS = env_int("PRESENCE_AWAY_SECONDS", 300)
# Users a room of a kind may hold at once, e.g. "lobby=500,document=50"; kinds not listed: no cap.
PRESENCE_ROOM_CAPS = env_caps("PRESENCE_ROOM_CAPS")
PRESENCE_MAX_WATCHED = env_int("PRESENCE_MAX_WATCHED", 200)
# Built for every WebSocket connection of every app: it makes the connection count in presence.
REALTIME_PRESENCE_TRACKER = "presence.tracking.ConnectionPresence"
# Called (without waiting) on refused handshakes and rate-limit hits to record a system event.
REALTIME_EVENT_RECORDER = "monitoring.events.socket_event"
# What staff control on every worker at once (config/realtime/control.py): the apps switched off
# and the live announcements, loaded by an async callable returning a ControlState.
REALTIME_CONTROL_STATE = "monitoring.controls.control_state"
# Each worker reloads that state this often whatever it heard (a lost control message still
# takes effect), and writes its socket counts per app this often for the staff view.
REALTIME_CONTROL_REFRESH_SECONDS = env_int("REALTIME_CONTROL_REFRESH_SECONDS", 5)
REALTIME_CONTROL_REPORT_SECONDS = env_int("REALTIME_CONTROL_REPORT_SECONDS", 5)

# --- Collab (DESIGN section 6) ----------------------------------------------------------------
# A DocumentVersion snapshot every this many ops: content at an old version replays from it.
COLLAB_SNAPSHOT_EVERY = env_int("COLLAB_SNAPSHOT_EVERY", 100)
COLLAB_MAX_DOCUMENT_CHARS = env_int("COLLAB_MAX_DOCUMENT_CHARS", 1_000_000)
# Recent ops a socket keeps to move cursors made at a slightly older version.
COLLAB_CURSOR_HISTORY = env_int("COLLAB_CURSOR_HISTORY", 200)

# --- Comments -----------------------------------------------------------------------------------
# A typing indicator lapses this long after the last "comments.typing.start" (never stored).
COMMENTS_TYPING_SECONDS = env_int("COMMENTS_TYPING_SECONDS", 6)
COMMENTS_MAX_CODE_CHARS = env_int("COMMENTS_MAX_CODE_CHARS", 20_000)
COMMENTS_MAX_ATTACHMENT_BYTES = env_int("COMMENTS_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024)
COMMENTS_MAX_ATTACHMENTS = env_int("COMMENTS_MAX_ATTACHMENTS", 10)  # per comment
# Types are read from the file's own bytes, never taken from what the client claims.
COMMENTS_ATTACHMENT_TYPES = env_list(
    "COMMENTS_ATTACHMENT_TYPES",
    [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/csv",
    ],
)
# Targets a notifications socket may follow for new and resolved threads at once.
COMMENTS_MAX_WATCHED_TARGETS = env_int("COMMENTS_MAX_WATCHED_TARGETS", 50)
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", BASE_DIR / "media"))

# --- Monitoring: system events and security alerts ---------------------------------------------
# `manage.py prune_events` deletes events older than this.
MONITORING_EVENT_RETENTION_DAYS = env_int("MONITORING_EVENT_RETENTION_DAYS", 90)
# Only behind a proxy that sets X-Forwarded-For (its last entry is the address the proxy saw);
# otherwise any client could name any address.
MONITORING_TRUST_X_FORWARDED_FOR = env_bool("MONITORING_TRUST_X_FORWARDED_FOR", False)
# Socket events with one dedupe key (a user hitting one rate limit) recorded once per this.
MONITORING_EVENT_DEDUPE_SECONDS = env_int("MONITORING_EVENT_DEDUPE_SECONDS", 60)
# Background recordings a worker keeps in flight; beyond it, socket events are dropped (logged).
MONITORING_MAX_PENDING_EVENTS = env_int("MONITORING_MAX_PENDING_EVENTS", 100)
# A rule fires a security_alert when `threshold` events of `kind` share a key ("user" or "ip")
# within `window_seconds`, then stays quiet for that key for one window (monitoring/alerts.py).
MONITORING_ALERT_RULES = [
    {
        "name": "failed_logins_per_user",
        "kind": "login_failed",
        "key": "user",
        "threshold": env_int("MONITORING_ALERT_FAILED_LOGINS_PER_USER", 5),
        "window_seconds": 300,
        "severity": "critical",
    },
    {
        # Higher than per user: one address may be a whole office behind NAT, and a burst on
        # one account from one address is one incident, reported once by the rule above.
        "name": "failed_logins_per_ip",
        "kind": "login_failed",
        "key": "ip",
        "threshold": env_int("MONITORING_ALERT_FAILED_LOGINS_PER_IP", 10),
        "window_seconds": 300,
        "severity": "warning",
    },
    {
        "name": "denied_handshakes_per_ip",
        "kind": "ws_denied",
        "key": "ip",
        "threshold": env_int("MONITORING_ALERT_DENIED_HANDSHAKES_PER_IP", 20),
        "window_seconds": 60,
        "severity": "warning",
    },
]
# Health sampler (`manage.py sample_health`, monitoring/sampling.py): a metric at or over its
# threshold (or a dependency failing) for BREACHES_TO_ALERT samples in a row records one
# health_alert, then OKS_TO_RECOVER samples under it one "recovered". A threshold may also be
# {"warning": 250, "critical": 1000}; a failing dependency is always critical.
MONITORING_HEALTH_INTERVAL_SECONDS = env_int("MONITORING_HEALTH_INTERVAL_SECONDS", 15)
MONITORING_HEALTH_THRESHOLDS = {
    "cpu_percent": env_int("MONITORING_HEALTH_CPU_PERCENT", 90),
    "memory_percent": env_int("MONITORING_HEALTH_MEMORY_PERCENT", 90),
    "database_ms": env_int("MONITORING_HEALTH_DATABASE_MS", 250),
    "redis_ms": env_int("MONITORING_HEALTH_REDIS_MS", 100),
    "channel_layer_ms": env_int("MONITORING_HEALTH_CHANNEL_LAYER_MS", 250),
}
MONITORING_HEALTH_BREACHES_TO_ALERT = env_int("MONITORING_HEALTH_BREACHES_TO_ALERT", 3)
MONITORING_HEALTH_OKS_TO_RECOVER = env_int("MONITORING_HEALTH_OKS_TO_RECOVER", 3)

# --- REST ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["config.api.LimitedJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["config.api.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("API_RATE_USER", "1200/min"),
        "realtime_ticket": os.environ.get("API_RATE_TICKET", "60/min"),
        # Every comment write over REST (threads, comments, edits, reactions, files), together:
        # each stores rows and broadcasts; the socket's per-command rates are of the same order.
        "comments_write": os.environ.get("API_RATE_COMMENTS_WRITE", "240/min"),
        # Every form write over REST (forms, members, fields, conflicts, submission statuses).
        "forms_write": os.environ.get("API_RATE_FORMS_WRITE", "240/min"),
    },
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",  # documents the error answers
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Collab backend API",
    "DESCRIPTION": "REST API of the real-time collaboration backend. WebSocket protocol: README.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("API_MAX_BODY_BYTES", 1024 * 1024)

# --- Security ------------------------------------------------------------------------------------
# DJANGO_HTTPS=0 only for plain-HTTP test rigs; production terminates TLS in nginx.
HTTPS = env_bool("DJANGO_HTTPS", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", HTTPS)
CSRF_TRUSTED_ORIGINS = env_list(
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    [origin for origin in REALTIME_ALLOWED_ORIGINS if origin != "*"],
)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Signing in: lockout and the admin's address (RELIABILITY.md S13, S9 a) ---------------------
# LOGIN_FAILURE_LIMIT wrong passwords for one username, or from one address, lock that name (or
# address) out of every login form (/accounts/login/ and the admin's) until LOGIN_LOCKOUT_MINUTES
# pass without another try: HTTP 429 (config/lockout.py). Counted apart, so a guesser spreading
# over many names is stopped by the address, and one spreading over many addresses by the name.
# The price: anyone can lock a name out for a while by guessing at it; staff lift a lockout in
# the admin (Axes: access attempts) or with `manage.py axes_reset_username <name>`.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out name or address
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# The address the monitoring events record: REMOTE_ADDR, or nginx's X-Forwarded-For entry when
# MONITORING_TRUST_X_FORWARDED_FOR says nginx sets it; never a header the client writes.
AXES_CLIENT_IP_CALLABLE = "monitoring.events.client_ip"
AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"
# In the database: shared by every worker, and undone with each test's transaction. Sign-ins are
# recorded as monitoring events already, so not a second time in axes' access log.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_DISABLE_ACCESS_LOG = True
# A success leaves the count alone: otherwise a guesser with an account of their own could sign
# in between guesses at others' and so reset the count of their address.
AXES_RESET_ON_SUCCESS = False
AXES_VERBOSE = False  # no banner at every process start; its warnings of failures stay
# Where the admin lives. Production sets a path of its own (DJANGO_ADMIN_URL, e.g. "ops-7f3k2/")
# so that bots trying /admin/ find nothing; `check --deploy` warns (config.W001) while it is
# "admin/" with DEBUG off (config/checks.py).
ADMIN_URL = os.environ.get("DJANGO_ADMIN_URL", "admin/")
if not re.fullmatch(r"([A-Za-z0-9._~-]+/)+", ADMIN_URL):
    raise ImproperlyConfigured(
        f"DJANGO_ADMIN_URL must be a relative path ending in '/', e.g. 'ops-7f3k2/', "
        f"not {ADMIN_URL!r}."
    )

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/documents/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

STATIC_URL = "static/"
# Served from the apps' static folders too, not only from STATIC_ROOT: the pages and the
# browser client must work on a fresh checkout that never ran collectstatic.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # No manifest: a missing collectstatic must not turn every admin page into a 500.
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"cancelled_cleanup": {"()": "config.logfilters.CancelledCleanup"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
        # channels-redis reports messages dropped over capacity only in an INFO log line.
        "layer_drops": {"class": "monitoring.metrics.LayerOverCapacityCounter"},
    },
    "root": {"handlers": ["stderr"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "channels_redis.core": {"level": "INFO", "handlers": ["layer_drops"]},
        "channels_redis.pubsub": {"filters": ["cancelled_cleanup"]},
    },
}
