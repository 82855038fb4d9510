"""Small shared state every worker must agree on: rate-limit counters, tickets, the epoch.

Two backends behind one interface: Redis when ``REDIS_URL`` or ``REDIS_SENTINELS`` is set
(shared by all workers; config/redis_target.py) and process memory otherwise (the embedded
single-process default). Both have sync methods (REST views, services) and async ones
(consumers), so the hot WebSocket path never hops threads:

    store = get_store()
    previous, current = await store.ahit("rl:7:chat", window=16, period=60.0)
    store.put("ticket:abc", "7", ttl=30)
    user_id = await store.atake("ticket:abc")   # single use: the second take gets None
    await store.areport("workers", "host:123", "{...}", ttl=15)   # one entry per member
    store.reports("workers")                     # {"host:123": "{...}"}: the live entries
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import redis.asyncio as aredis
from django.conf import settings

from config.redis_target import RedisTarget

EPOCH_KEY = "epoch"
T = TypeVar("T")


class SharedStore(Protocol):
    def hit(self, key: str, *, window: int, period: float, amount: int = 1) -> tuple[int, int]: ...
    async def ahit(
        self, key: str, *, window: int, period: float, amount: int = 1
    ) -> tuple[int, int]: ...
    def put(self, key: str, value: str, *, ttl: float) -> None: ...
    async def atake(self, key: str) -> str | None: ...
    async def aget(self, key: str) -> str | None: ...
    def take(self, key: str) -> str | None: ...
    async def aepoch(self) -> str: ...
    def ping(self) -> None: ...
    async def areport(self, name: str, member: str, value: str, *, ttl: float) -> None: ...
    async def adrop_report(self, name: str, member: str) -> None: ...
    def reports(self, name: str) -> dict[str, str]: ...


class RedisStore:
    """Redis-backed store. One async client per event loop: redis-py pools are loop-bound."""

    def __init__(self, target: RedisTarget, prefix: str) -> None:
        self.target = target
        self.prefix = prefix
        options = {"socket_timeout": 3, "socket_connect_timeout": 3, "health_check_interval": 15}
        self._sync = target.sync_client(decode_responses=True, **options)
        self._options = options
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def aclient(self) -> aredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            # Bounded and blocking: a burst of handshakes waits for a connection instead of
            # opening one per concurrent call (redis-py's default pool is unbounded).
            pool = self.target.async_pool(
                decode_responses=True,
                # Per process and event loop (settings REALTIME_REDIS_POOL_*): commands are
                # short, so a few dozen connections serve thousands of sockets; the wait must
                # outlast a connect burst that saturates the loop (docs/benchmarks.md).
                max_connections=settings.REALTIME_REDIS_POOL_SIZE,
                timeout=settings.REALTIME_REDIS_POOL_TIMEOUT,
                **self._options,
            )
            client = self._async[loop] = aredis.Redis(connection_pool=pool)
        return client

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def _hit_pipeline(self, pipe, key: str, window: int, period: float, amount: int):  # type: ignore[no-untyped-def]
        current_key = self._key(f"{key}:{window}")
        pipe.incrby(current_key, amount)
        # Kept two periods: it is read as "previous" during the next window.
        pipe.expire(current_key, int(period * 2) + 1, nx=True)
        pipe.get(self._key(f"{key}:{window - 1}"))
        return pipe

    def hit(self, key: str, *, window: int, period: float, amount: int = 1) -> tuple[int, int]:
        current, _, previous = self._hit_pipeline(
            self._sync.pipeline(transaction=False), key, window, period, amount
        ).execute()
        return int(previous or 0), int(current)

    async def ahit(
        self, key: str, *, window: int, period: float, amount: int = 1
    ) -> tuple[int, int]:
        pipe = self.aclient().pipeline(transaction=False)
        current, _, previous = await self._hit_pipeline(pipe, key, window, period, amount).execute()
        return int(previous or 0), int(current)

    def put(self, key: str, value: str, *, ttl: float) -> None:
        self._sync.set(self._key(key), value, px=int(ttl * 1000))

    def take(self, key: str) -> str | None:
        return self._sync.getdel(self._key(key))

    async def atake(self, key: str) -> str | None:
        return await self.aclient().getdel(self._key(key))

    async def aget(self, key: str) -> str | None:
        return await self.aclient().get(self._key(key))

    async def aepoch(self) -> str:
        # The epoch key is never expired, so it disappears only when Redis lost its data: a new
        # epoch tells clients that groups and presence were forgotten and they must resync.
        # SET NX GET (Redis >= 7): one round trip answers the epoch already there, or sets ours.
        mine = uuid.uuid4().hex[:12]
        existing = await self.aclient().set(self._key(EPOCH_KEY), mine, nx=True, get=True)
        return existing or mine

    def ping(self) -> None:
        self._sync.ping()

    # A report is a key with a TTL (it lapses when its writer dies) listed in a set, so that
    # reading them needs no SCAN over the whole keyspace.
    async def areport(self, name: str, member: str, value: str, *, ttl: float) -> None:
        pipe = self.aclient().pipeline(transaction=False)
        pipe.set(self._key(f"{name}:{member}"), value, px=int(ttl * 1000))
        pipe.sadd(self._key(name), member)
        await pipe.execute()

    async def adrop_report(self, name: str, member: str) -> None:
        pipe = self.aclient().pipeline(transaction=False)
        pipe.delete(self._key(f"{name}:{member}"))
        pipe.srem(self._key(name), member)
        await pipe.execute()

    def reports(self, name: str) -> dict[str, str]:
        members = sorted(self._sync.smembers(self._key(name)))
        if not members:
            return {}
        values = self._sync.mget([self._key(f"{name}:{m}") for m in members])
        lapsed = [m for m, v in zip(members, values, strict=True) if v is None]
        if lapsed:
            self._sync.srem(self._key(name), *lapsed)
        return {m: v for m, v in zip(members, values, strict=True) if v is not None}


class MemoryStore:
    """In-process store for the single-process embedded default. Thread-safe (REST threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[object, float]] = {}  # key -> (value, expires at)
        self._members: dict[str, set[str]] = {}  # report name -> members
        self._epoch = uuid.uuid4().hex[:12]

    def _live(self, key: str, now: float) -> object | None:
        item = self._values.get(key)
        if item is None:
            return None
        if item[1] <= now:
            del self._values[key]
            return None
        return item[0]

    def hit(self, key: str, *, window: int, period: float, amount: int = 1) -> tuple[int, int]:
        now = time.monotonic()
        with self._lock:
            current_key = f"{key}:{window}"
            current = int(self._live(current_key, now) or 0) + amount  # type: ignore[call-overload]
            expires = self._values.get(current_key, (0, now + period * 2 + 1))[1]
            self._values[current_key] = (current, expires)
            previous = int(self._live(f"{key}:{window - 1}", now) or 0)  # type: ignore[call-overload]
            if len(self._values) > 100_000:
                self._sweep(now)
        return previous, current

    async def ahit(
        self, key: str, *, window: int, period: float, amount: int = 1
    ) -> tuple[int, int]:
        return self.hit(key, window=window, period=period, amount=amount)

    def put(self, key: str, value: str, *, ttl: float) -> None:
        with self._lock:
            self._values[key] = (value, time.monotonic() + ttl)

    def take(self, key: str) -> str | None:
        with self._lock:
            value = self._live(key, time.monotonic())
            self._values.pop(key, None)
        return value  # type: ignore[return-value]

    async def atake(self, key: str) -> str | None:
        return self.take(key)

    async def aget(self, key: str) -> str | None:
        with self._lock:
            return self._live(key, time.monotonic())  # type: ignore[return-value]

    async def aepoch(self) -> str:
        return self._epoch

    def ping(self) -> None:
        return None

    async def areport(self, name: str, member: str, value: str, *, ttl: float) -> None:
        self.put(f"{name}:{member}", value, ttl=ttl)
        with self._lock:
            self._members.setdefault(name, set()).add(member)

    async def adrop_report(self, name: str, member: str) -> None:
        with self._lock:
            self._values.pop(f"{name}:{member}", None)
            self._members.get(name, set()).discard(member)

    def reports(self, name: str) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            found = {m: self._live(f"{name}:{m}", now) for m in self._members.get(name, set())}
            self._members[name] = {m for m, v in found.items() if v is not None}
        return {m: v for m, v in found.items() if v is not None}  # type: ignore[misc]

    def _sweep(self, now: float) -> None:
        for key in [k for k, (_, expires) in self._values.items() if expires <= now]:
            del self._values[key]


_store: SharedStore | None = None
_store_lock = threading.Lock()


def get_store() -> SharedStore:
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                target = RedisTarget.from_settings()
                prefix = settings.REALTIME_KEY_PREFIX
                _store = RedisStore(target, prefix) if target.configured else MemoryStore()
    return _store


def reset_store() -> None:
    """Forget the store (tests that switch settings)."""
    global _store
    _store = None


class BuiltOnStore(Generic[T]):
    """One object made from the shared store (a Redis-backed one when the store is Redis, an
    in-process one otherwise), made again whenever the store is (tests switch settings with
    ``reset_store()``):

        slots = BuiltOnStore(lambda shared: RedisSlots(shared, shared.prefix + "sockets:"),
                             MemorySlots)
        slots.get()
    """

    def __init__(self, on_redis: Callable[[RedisStore], T], in_process: Callable[[], T]) -> None:
        self._on_redis = on_redis
        self._in_process = in_process
        self._built: T | None = None
        self._built_for: object = None
        self._lock = threading.Lock()

    def get(self) -> T:
        shared = get_store()
        with self._lock:
            if self._built is None or self._built_for is not shared:
                if isinstance(shared, RedisStore):
                    self._built = self._on_redis(shared)
                else:
                    self._built = self._in_process()
                self._built_for = shared
            return self._built
