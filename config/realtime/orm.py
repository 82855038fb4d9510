"""Where the WebSocket side runs its ORM work: a few threads per worker process, not one.

    from config.realtime.orm import database_sync_to_async   # instead of channels.db's
    role = await database_sync_to_async(document_role)(user=user, document_id=42)

Channels' ``database_sync_to_async`` is thread-sensitive: every ORM call of a process runs on
one thread, one after the other. So one slow query or one lock wait holds every socket of the
worker (RELIABILITY.md F7: with a document row locked, ops on *other* documents of that worker
waited out the lock; with PostgreSQL 200 ms away, every call queued behind every other), and a
reconnect burst reads its snapshots one at a time (F2, F11). Here the calls go to a pool of
``REALTIME_ORM_THREADS`` threads instead, each with its own connection from the process's
psycopg pool, and closing stale connections around each call as Channels' version does.

What keeps this safe: a consumer still awaits its own calls one by one; writes that race (two
ops on one document from two sockets) are ordered by their row locks in PostgreSQL; and
broadcasts may now reach the layer out of commit order, which receivers already handle (a
later seq first makes them fill the gap from the database, and the earlier one is then a
duplicate: config/realtime/ordered.py).

With one thread (the default on SQLite, which takes one writer at a time) this is Channels'
function itself. REST views keep Django's own thread-sensitive path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from channels.db import DatabaseSyncToAsync
from channels.db import database_sync_to_async as channels_database_sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

P = ParamSpec("P")
R = TypeVar("R")

_pools: dict[int, ThreadPoolExecutor] = {}  # by size: one in production, tests may change it


def database_sync_to_async(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``func`` run on one of the process's ORM threads (or Channels' one, with one thread)."""

    @functools.wraps(func)
    async def call(*args: Any, **kwargs: Any) -> R:
        threads = settings.REALTIME_ORM_THREADS
        if threads <= 1:
            return await channels_database_sync_to_async(func)(*args, **kwargs)
        runner = DatabaseSyncToAsync(func, thread_sensitive=False, executor=_executor(threads))
        return await runner(*args, **kwargs)

    return call


def _executor(threads: int) -> ThreadPoolExecutor:
    if threads not in _pools:
        _pools[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="orm")
    return _pools[threads]


# Writes to one stream (a document, a thread, a form) take turns in this worker. They would
# queue on the stream's row lock in PostgreSQL anyway, but there each waiter holds an ORM
# thread and a pooled connection, and with a slow database the queue's tail waits past
# lock_timeout: F7 (a), PostgreSQL 200 ms away, turned every op of one busy document into a
# retry. Waiting here costs nothing; only the workers' turns meet on the row lock.
_turns: dict[str, tuple[asyncio.Lock, int]] = {}  # and how many hold or wait for it


@contextlib.asynccontextmanager
async def in_turn(key: str) -> AsyncIterator[None]:
    """One at a time per ``key`` in this process, in arrival order."""
    lock, users = _turns.get(key, (asyncio.Lock(), 0))
    _turns[key] = (lock, users + 1)
    try:
        async with lock:
            yield
    finally:
        lock, users = _turns[key]
        if users == 1:
            del _turns[key]
        else:
            _turns[key] = (lock, users - 1)


def once_more_if_the_connection_died(service: Callable[..., R], **arguments: Any) -> R:
    """``service(**arguments)`` on this thread, tried again once on a fresh connection when
    PostgreSQL ended the one it had (a restart, a failover, ``pg_terminate_backend``: F8).

    For the stream's reads and writes (OrderedStreamConsumer.read, .write): each write is
    idempotent by its client's key (an op's client_id and seq, a comment's client_msg_id) or
    by the state it sets, so a write that did commit before the connection died is answered
    as the duplicate it now is. Anything else, a lock timeout included, is raised as it was.
    """
    try:
        return service(**arguments)
    except (OperationalError, InterfaceError) as error:
        if not _connection_died(error):
            raise
        connection.close()  # the pool drops a broken connection and hands out a checked one
        return service(**arguments)


def _connection_died(error: Exception) -> bool:
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) in _ENDED_BY_THE_SERVER:
        return True
    raw = connection.connection
    return raw is not None and bool(getattr(raw, "closed", False) or getattr(raw, "broken", False))


# admin_shutdown, crash_shutdown, cannot_connect_now: the server ended or refused the session.
_ENDED_BY_THE_SERVER = {"57P01", "57P02", "57P03"}
