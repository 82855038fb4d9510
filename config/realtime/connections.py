"""The live connections of this worker process, and the sweeper that enforces heartbeats.

One sweeper task per event loop walks every connection every few seconds, instead of one timer
task per socket: 20,000 idle sockets then cost one loop over a set, not 20,000 timers.

    registry = connections_for_loop()
    registry.add(consumer)        # on accept
    registry.discard(consumer)    # on disconnect
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

from config.errors import CLOSE_HEARTBEAT_TIMEOUT

log = logging.getLogger(__name__)


class Connection(Protocol):
    last_seen: float

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None: ...


class ConnectionRegistry:
    def __init__(self, timeout: float, sweep_every: float) -> None:
        self.timeout = timeout
        self.sweep_every = sweep_every
        self.live: set[Connection] = set()
        self.draining = False  # the worker is stopping: no new sockets (config.realtime.shutdown)
        self._sweeper: asyncio.Task[None] | None = None

    def add(self, connection: Connection) -> None:
        self.live.add(connection)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    def discard(self, connection: Connection) -> None:
        self.live.discard(connection)

    def stale(self, now: float) -> list[Connection]:
        return [c for c in self.live if now - c.last_seen > self.timeout]

    async def _sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while self.live:
            await asyncio.sleep(self.sweep_every)
            for connection in self.stale(loop.time()):
                self.live.discard(connection)
                try:
                    await connection.close(code=CLOSE_HEARTBEAT_TIMEOUT)
                except Exception:  # a socket that is already gone must not stop the sweep
                    log.warning("closing a silent connection failed", exc_info=True)


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectionRegistry] = (
    weakref.WeakKeyDictionary()
)


def connections_for_loop(timeout: float, sweep_every: float) -> ConnectionRegistry:
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = ConnectionRegistry(timeout, sweep_every)
    return registry
