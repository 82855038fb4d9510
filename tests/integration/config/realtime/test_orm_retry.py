"""once_more_if_the_connection_died (config/realtime/orm.py): a stream write whose connection
PostgreSQL ended (pg_terminate_backend, as F8 does every 30 s) runs once more on a fresh
connection; any other database error is raised at once."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, connections

from config.realtime.orm import once_more_if_the_connection_died

pytestmark = pytest.mark.django_db(transaction=True)


def terminate(pid: int) -> None:
    """From another thread, so with another connection, as an operator or a failover would."""

    def run() -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        connections["default"].close()

    killer = threading.Thread(target=run)
    killer.start()
    killer.join(10)


def test_a_write_whose_connection_was_ended_runs_once_more_on_a_fresh_one():
    backends: list[int] = []

    def service() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.append(cursor.fetchone()[0])
            if len(backends) == 1:
                terminate(backends[0])
            cursor.execute("SELECT 41 + 1")
            return cursor.fetchone()[0]

    assert once_more_if_the_connection_died(service) == 42
    assert len(backends) == 2 and backends[0] != backends[1]


def test_a_lock_timeout_is_raised_without_a_second_try():
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(4242)")
            holding.set()
            release.wait(10)
            cursor.execute("SELECT pg_advisory_unlock(4242)")
        connections["default"].close()

    holder = threading.Thread(target=hold)
    holder.start()
    calls: list[int] = []

    def service() -> None:
        calls.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '100ms'")
            cursor.execute("SELECT pg_advisory_lock(4242)")

    try:
        assert holding.wait(10)
        with pytest.raises(OperationalError, match="lock timeout"):
            once_more_if_the_connection_died(service)
    finally:
        release.set()
        holder.join(10)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert calls == [1]
