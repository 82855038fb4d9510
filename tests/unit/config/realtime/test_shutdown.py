"""The SIGTERM drain: every open socket is closed with 4012, then the stop goes on; a socket
that does not close in the grace period does not hold the stop up."""

from __future__ import annotations

import asyncio

from config.errors import CLOSE_SERVICE_RESTART
from config.realtime.connections import ConnectionRegistry
from config.realtime.shutdown import drain


class Socket:
    def __init__(self, registry: ConnectionRegistry, *, stuck: bool = False) -> None:
        self.registry, self.stuck, self.codes = registry, stuck, []
        self.last_seen = 0.0
        registry.live.add(self)

    async def close(self, code=None, reason=None) -> None:
        self.codes.append(code)
        if not self.stuck:  # its disconnect is handled a moment later, as Daphne's would be
            asyncio.get_running_loop().call_later(0.01, self.registry.discard, self)


async def test_every_socket_is_closed_with_4012_before_the_stop(settings):
    settings.REALTIME_SHUTDOWN_GRACE_SECONDS = 5
    registry = ConnectionRegistry(timeout=45, sweep_every=15)
    sockets = [Socket(registry) for _ in range(3)]
    stopped: list[int] = []

    await drain(registry, lambda: stopped.append(len(registry.live)))

    assert registry.draining
    assert [s.codes for s in sockets] == [[CLOSE_SERVICE_RESTART]] * 3
    assert stopped == [0]  # stopped once, after every socket left


async def test_a_socket_that_never_closes_does_not_hold_the_stop_up(settings):
    settings.REALTIME_SHUTDOWN_GRACE_SECONDS = 0.2
    registry = ConnectionRegistry(timeout=45, sweep_every=15)
    Socket(registry)
    stuck = Socket(registry, stuck=True)
    stopped: list[int] = []

    await drain(registry, lambda: stopped.append(len(registry.live)))

    assert stopped == [1] and stuck in registry.live  # it went on without that one
