"""System-test fixtures: two real Daphne workers on the pytest-django test database and Redis.

The workers are separate processes, so they only see committed rows: tests that create users
use ``transactional_db`` (the ``account`` fixtures below do). The workers start once per
session; when a test fails, the tail of each worker's log is attached to its report.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from monitoring.loadtest.workers import Worker, daphne_workers
from tests.factories import UserFactory
from tests.system.client import ORIGIN

# Low enough that the cross-worker rate-limit test can exhaust it with a few frames; the other
# tests send at most a handful of signals per user.
SIGNAL_RATE_LIMIT = 10
# POST /api/realtime/tickets/ per user; a test fetches at most a few tickets per user.
TICKET_RATE_LIMIT = 6
LOG_TAIL_CHARS = 6000


@dataclass(frozen=True)
class Account:
    user_id: int
    username: str
    token: str


def database_url(database: dict) -> str:
    """A DATABASE_URL for the test database pytest-django created (its NAME is test_...)."""
    user = quote(database.get("USER") or "", safe="")
    password = quote(database.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{quote(database['NAME'], safe='')}"


def worker_env() -> dict[str, str]:
    database = settings.DATABASES["default"]
    # pytest-django creates the test database only when a selected test is marked django_db.
    assert database["NAME"].startswith("test_"), f"not the test database: {database['NAME']}"
    return {
        "DATABASE_URL": database_url(database),
        # The same Redis and key prefix as this process: its autouse fixture clears the
        # workers' counters and tickets between tests, and its pub/sub stays private to the run.
        "REDIS_URL": os.environ["REDIS_URL"],
        "REALTIME_KEY_PREFIX": os.environ["REALTIME_KEY_PREFIX"],
        "DATABASE_POOL_MAX": "4",  # a worker's default (this process's is larger: testenv)
        "DJANGO_SECRET_KEY": "system-tests-" + secrets.token_hex(16),
        "DJANGO_DEBUG": "0",
        "DJANGO_HTTPS": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_WS_ALLOWED_ORIGINS": ORIGIN,
        "REALTIME_RATE_SIGNAL": f"{SIGNAL_RATE_LIMIT}/min",
        "API_RATE_TICKET": f"{TICKET_RATE_LIMIT}/min",
    }


@pytest.fixture(scope="session")
def workers(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Worker]]:
    """Two Daphne workers (A, B); stopped before the test database is dropped."""
    log_dir = tmp_path_factory.mktemp("daphne-logs")
    with daphne_workers(2, worker_env(), log_dir=log_dir) as started:
        yield started


@pytest.fixture
def worker_a(workers: list[Worker]) -> Worker:
    return _alive(workers[0])


@pytest.fixture
def worker_b(workers: list[Worker]) -> Worker:
    return _alive(workers[1])


def _alive(worker: Worker) -> Worker:
    assert worker.alive(), f"Daphne on port {worker.port} died:\n{worker.log()[-LOG_TAIL_CHARS:]}"
    return worker


@pytest.fixture
def make_account(transactional_db: None) -> Callable[..., Account]:
    """Committed users with DRF tokens, visible to the worker processes."""

    def make(**fields: object) -> Account:
        user = UserFactory(**fields)
        return Account(user.pk, user.username, Token.objects.create(user=user).key)

    return make


@pytest.fixture
def alice(make_account: Callable[[], Account]) -> Account:
    return make_account()


@pytest.fixture
def bob(make_account: Callable[[], Account]) -> Account:
    return make_account()


@pytest.fixture
def staff(make_account: Callable[..., Account]) -> Account:
    """May sign in through the admin login form (password: tests.factories.PASSWORD)."""
    return make_account(is_staff=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.failed:
        for label, worker in _workers_of(item):
            tail = worker.log()[-LOG_TAIL_CHARS:] or "(empty)"
            state = "alive" if worker.alive() else f"exited {worker.process.returncode}"
            report.sections.append((f"daphne {label} :{worker.port} ({state}) log tail", tail))
    return report


def _workers_of(item: pytest.Item) -> list[tuple[str, Worker]]:
    """Every Daphne worker a test used, from its fixtures (a list, a Worker, or a .worker)."""
    found: dict[int, tuple[str, Worker]] = {}
    for name, value in getattr(item, "funcargs", {}).items():
        candidates = value if isinstance(value, list) else [getattr(value, "worker", value)]
        for index, candidate in enumerate(candidates):
            if isinstance(candidate, Worker):
                found.setdefault(candidate.pid, (f"{name}[{index}]", candidate))
    return list(found.values())
