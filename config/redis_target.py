"""Where Redis is: one URL, or Redis Sentinel (a master name and its sentinels) for failover.

Every Redis client of the project is made here, so the two setups need no other code:

    target = RedisTarget.from_settings()
    target.sync_client(decode_responses=True)          # redis.Redis (REST, services)
    target.async_pool(max_connections=32, timeout=20)  # a bounded, blocking asyncio pool
    layer_host(url=..., sentinels=..., ...)            # one channels-redis "hosts" entry

With Sentinel, each client asks the sentinels for the current master when it connects, and a
connection to a master that was demoted fails and is made again to the new one: a failover costs
the commands in flight, which the realtime layer already treats as a Redis outage (clients retry
and resume). Redis Cluster is not supported: channels-redis does not speak it, and the presence
scripts touch keys of several rooms at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aredis
import redis.asyncio.sentinel as asentinel
import redis.sentinel
from django.conf import settings


class _BlockingSentinelPool(asentinel.SentinelConnectionPool, aredis.BlockingConnectionPool):
    """Sentinel's master lookup with the blocking pool's bound: past ``max_connections`` a
    command waits up to ``timeout`` for a connection instead of failing (a connect burst)."""


@dataclass(frozen=True)
class RedisTarget:
    url: str = ""
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    password: str | None = None
    # Applied to the sentinels themselves (a dead sentinel must not hang a lookup).
    sentinel_timeout: float = 1.0

    @classmethod
    def from_settings(cls) -> RedisTarget:
        return cls(
            url=settings.REDIS_URL,
            sentinels=tuple(settings.REDIS_SENTINELS),
            master=settings.REDIS_SENTINEL_MASTER,
            db=settings.REDIS_DB,
            password=settings.REDIS_PASSWORD or None,
        )

    @property
    def configured(self) -> bool:
        return bool(self.url or self.sentinels)

    def _sentinel_kwargs(self) -> dict[str, Any]:
        return {"socket_timeout": self.sentinel_timeout, "socket_connect_timeout": 1.0}

    def _server_kwargs(self) -> dict[str, Any]:
        return {"db": self.db, "password": self.password}

    def sync_client(self, **options: Any) -> redis.Redis:
        if self.sentinels:
            sentinel = redis.sentinel.Sentinel(
                list(self.sentinels), sentinel_kwargs=self._sentinel_kwargs()
            )
            return sentinel.master_for(self.master, **self._server_kwargs(), **options)
        return redis.Redis.from_url(self.url, **options)

    def async_pool(
        self, *, max_connections: int, timeout: float, **options: Any
    ) -> aredis.ConnectionPool:
        if self.sentinels:
            sentinel = asentinel.Sentinel(
                list(self.sentinels), sentinel_kwargs=self._sentinel_kwargs()
            )
            return _BlockingSentinelPool(
                self.master,
                sentinel,
                max_connections=max_connections,
                timeout=timeout,
                **self._server_kwargs(),
                **options,
            )
        return aredis.BlockingConnectionPool.from_url(
            self.url, max_connections=max_connections, timeout=timeout, **options
        )


def layer_host(
    *,
    url: str,
    sentinels: list[tuple[str, int]],
    master: str,
    db: int,
    password: str,
    **options: Any,
) -> dict[str, Any]:
    """One channels-redis ``hosts`` entry (settings use it before apps are loaded)."""
    if sentinels:
        return {
            "sentinels": list(sentinels),
            "master_name": master,
            "sentinel_kwargs": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
            "db": db,
            "password": password or None,
            **options,
        }
    return {"address": url, **options}
