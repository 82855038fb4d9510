"""Shared fixtures. Tests run on real PostgreSQL and Redis; a missing service fails the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient

from config.realtime import kv
from tests.factories import UserFactory


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = []
    if connections["default"].vendor != "postgresql":
        problems.append(f"DATABASE_URL must point at PostgreSQL, got {os.environ['DATABASE_URL']}")
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        problems.append(f"Redis at {settings.REDIS_URL} is not reachable: {error}")
    if problems:
        pytest.exit(
            "The tests need the real services (start them with `bash .ci/services`):\n  "
            + "\n  ".join(problems),
            returncode=3,
        )


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Before pytest-django drops the test database, end every other session on it: pooled
    connections of the ORM thread and of Daphne workers would otherwise keep it "in use"."""
    yield
    with django_db_blocker.unblock():
        for connection in connections.all():
            connection.close()
            if getattr(connection, "pool", None) is not None:
                connection.close_pool()
        with connections["default"]._nodb_cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [settings.DATABASES["default"]["NAME"]],
            )


@pytest.fixture(autouse=True)
def _clean_shared_state(request):
    """Each test starts with no counters, tickets or groups left by another."""
    if request.node.path.is_relative_to(Path(__file__).parent / "unit"):
        yield  # unit tests are pure: they need no Redis
        return
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(f"{settings.REALTIME_KEY_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)
    kv.reset_store()
    yield
    kv.reset_store()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def api_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client
