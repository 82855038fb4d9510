"""Environment for the test run, loaded as a pytest plugin (``-p tests.testenv``) so that it is
in place before pytest-django imports the settings.

Tests run on the real services: PostgreSQL and Redis on this machine unless DATABASE_URL /
REDIS_URL say otherwise. They never fall back to SQLite or memory: a missing service fails the
run (see tests/conftest.py).
"""

import os
import uuid

# A database name of its own per run (pytest-django creates and drops "test_<name>"), so two runs
# on one machine (a developer's and CI's, or parallel sessions) never drop each other's database.
os.environ.setdefault(
    "DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/collab_{uuid.uuid4().hex[:8]}"
)
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-" + uuid.uuid4().hex)
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_HTTPS", "0")
# Pub/sub channels ignore the Redis database number: a per-run prefix keeps concurrent runs
# (and the developer's own server) from hearing each other.
os.environ.setdefault("REALTIME_KEY_PREFIX", f"test-{uuid.uuid4().hex[:8]}:")
# Under pytest-xdist (`pytest -n 2`, if installed) each process inherits the run's variables:
# a prefix of its own per process, as pytest-django gives each its own test database.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER")
_prefix = os.environ["REALTIME_KEY_PREFIX"]
if _xdist_worker and not _prefix.endswith(f"-{_xdist_worker}:"):
    os.environ["REALTIME_KEY_PREFIX"] = f"{_prefix.rstrip(':')}-{_xdist_worker}:"
# This process holds more connections than a worker: the test's own, Django's thread for
# sync_to_async, the WebSocket side's ORM threads (config/realtime/orm.py, as many as a
# worker's) and threads tests start. Daphne workers started by tests get a worker's pool
# (tests/system/conftest.py worker_env).
os.environ.setdefault("DATABASE_POOL_MAX", "8")
os.environ.setdefault("REALTIME_ORM_THREADS", "3")
os.environ.setdefault("DJANGO_WS_ALLOWED_ORIGINS", "http://testserver,http://localhost:8000")
# Sockets record refused handshakes and rate-limit hits in background tasks. One still writing
# when its test ends would deadlock with the database flush between tests (TRUNCATE against
# the INSERT's foreign-key check), so tests run without them; tests/integration/monitoring
# turns them on (the `socket_events` fixture) and waits for them before the test ends.
os.environ.setdefault("MONITORING_MAX_PENDING_EVENTS", "0")
