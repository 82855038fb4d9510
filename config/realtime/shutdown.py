"""Going away politely: on SIGTERM a worker closes its sockets with 4012 before it stops.

Daphne (Twisted) stops on SIGTERM by dropping every TCP connection, so clients saw 1006
(abnormal closure) and could not tell a deploy from a network failure. Here the first socket of
the process installs a SIGTERM handler in front of Twisted's: it refuses new handshakes, closes
every open socket with 4012 (service restart: 1012 in the private range, since Daphne lets an
application send only 1000 or 3000-4999; clients reconnect at once, through the load balancer to
another worker, and resume with ``since``), waits until their close frames are out or
``REALTIME_SHUTDOWN_GRACE_SECONDS`` pass, and then hands the signal to Twisted, which stops as
before. A second SIGTERM during the wait goes to Twisted at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from django.conf import settings

from config.errors import CLOSE_SERVICE_RESTART
from config.realtime import outbox
from config.realtime.connections import ConnectionRegistry

log = logging.getLogger(__name__)
_installed = False


def install(registry: ConnectionRegistry) -> None:
    """Put the drain in front of the current SIGTERM handler, once per process."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return  # signal handlers are the main thread's; Daphne runs its loop there
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return  # no handler to hand over to (not under Daphne): leave SIGTERM alone
    loop = asyncio.get_running_loop()
    draining: list[asyncio.Task[None]] = []

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if draining:  # asked twice: stop now
            previous(signum, frame)
            return
        then = lambda: previous(signum, frame)  # noqa: E731
        draining.append(loop.create_task(drain(registry, then)))

    signal.signal(signal.SIGTERM, on_sigterm)
    _installed = True


async def drain(registry: ConnectionRegistry, then: Callable[[], Any]) -> None:
    registry.draining = True
    open_sockets = list(registry.live)
    log.info("SIGTERM: closing %d sockets with %d", len(open_sockets), CLOSE_SERVICE_RESTART)
    try:
        async with asyncio.timeout(settings.REALTIME_SHUTDOWN_GRACE_SECONDS):
            await asyncio.gather(
                *(c.close(code=CLOSE_SERVICE_RESTART) for c in open_sockets),
                return_exceptions=True,
            )
            # Closed sockets leave the registry as their disconnect is handled, which is also
            # when Daphne has written their close frames.
            while any(c in registry.live for c in open_sockets):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            # Broadcasts of writes acked before the signal still go out, so the other
            # workers' clients are not left waiting for the next write to fill the gap.
            await outbox.flush()
    except TimeoutError:
        log.warning("SIGTERM: sockets still open after the grace period; stopping anyway")
    then()
