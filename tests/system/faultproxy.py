"""A TCP fault proxy for the fault tests (RELIABILITY.md section 1): put it between the workers
and PostgreSQL or Redis, or between clients and a worker, and break the hop on demand.

    proxy = FaultProxy(upstream_port=5432).start()       # 127.0.0.1:proxy.port -> :5432
    proxy.delay(0.2)        # every chunk waits 200 ms each way
    proxy.blackhole()       # connections stay open, nothing gets through (a half-open partition)
    proxy.refuse()          # every open connection reset, new ones refused (a restart, a crash)
    proxy.heal()            # pass everything again
    proxy.stop()

It runs its own event loop in a thread, so the tests' loops, sync or async, never wait on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading

from monitoring.loadtest.workers import free_port

CHUNK = 65536


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.mode = "pass"  # pass, blackhole, refuse
        self.latency = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def stop(self) -> None:
        self._call(self._reset_all)
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # --- the faults -------------------------------------------------------------------------
    def delay(self, seconds: float) -> None:
        self.latency = seconds

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def refuse(self) -> None:
        self.mode = "refuse"
        self._call(self._reset_all)

    def heal(self) -> None:
        self.mode, self.latency = "pass", 0.0

    @property
    def connections(self) -> int:
        return len(self._open)

    # --- inside the proxy's loop --------------------------------------------------------------
    def _call(self, function) -> None:  # type: ignore[no-untyped-def]
        async def run() -> None:
            function()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def _reset_all(self) -> None:
        for writer in list(self._open):
            _reset(writer)
        self._open.clear()

    async def _serve(self, client_reader, client_writer) -> None:  # type: ignore[no-untyped-def]
        if self.mode == "refuse":
            _reset(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(client_writer)
            return
        self._open.update((client_writer, upstream_writer))
        pumps = [
            asyncio.create_task(self._pump(client_reader, upstream_writer)),
            asyncio.create_task(self._pump(upstream_reader, client_writer)),
        ]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for writer in (client_writer, upstream_writer):
            self._open.discard(writer)
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(CHUNK):
                if self.mode == "blackhole":
                    continue  # read and dropped: the sender sees an open, silent connection
                if self.latency:
                    await asyncio.sleep(self.latency)
                writer.write(chunk)
                await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, as a crashed or restarted server's connections end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
