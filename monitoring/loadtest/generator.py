"""What every load-generator process shares: a base class for its sockets, and the pipe loop.

Django-free on purpose, like its users (clients.py: presence; ot.py: editors and joins;
comments.py: thread sockets): a generator process imports only these modules (plus uvloop when
installed), so its CPU goes to the clients. The parent (scenarios.Run) drives each process
through a pipe, one phase at a time: the child says ("ready",), then answers each phase message
with one reply and its report, and ("stop",) with ("stopped", report) before closing its sockets.

    class OtGenerator(SocketGenerator[EditorSpec, Live]): ...  # _specs _room _handshake _admit
    generator = OtGenerator(plan)
    run_child(generator.serve(conn, {"connect": ("connected", generator.connect_all)}))
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from monitoring.loadtest.rawws import ClosedError, HandshakeError, RawWebSocket, open_websocket

HEARTBEAT_FRAME = '{"type":"session.heartbeat"}'
# Seconds between looks at the send schedule. A timer wakeup costs ~90 µs of CPU on these VMs,
# so sends due within one tick go out together rather than each on its own wakeup.
SEND_TICK = 0.01
CLOSE_TIMEOUT = 10.0


class HasUrl(Protocol):
    @property
    def url(self) -> str: ...


class HasSocket(Protocol):
    ws: RawWebSocket


S = TypeVar("S", bound=HasUrl)  # what a socket is told: ClientSpec, ot.EditorSpec, ...
L = TypeVar("L", bound=HasSocket)  # an open socket and its client state
Phase = tuple[str, Callable[..., Awaitable[dict[str, Any]]]]  # reply kind, and the phase


class Refused(Exception):
    """The server answered, but not with what a client needs (its reason is the message)."""


def classify(error: BaseException) -> str:
    """A short, stable reason for a failed connection, for the failures histogram."""
    if isinstance(error, HandshakeError):
        # 0: the server closed without answering (e.g. Daphne's handshake timeout).
        return f"http_{error.status}" if error.status else "closed_during_handshake"
    if isinstance(error, ClosedError):
        return f"closed_{error.code}" if error.code is not None else "closed_abnormally"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, Refused):
        return str(error)
    if isinstance(error, OSError) and error.errno is not None:
        return "os_" + errno.errorcode.get(error.errno, str(error.errno))
    return type(error).__name__


@dataclass
class SocketGenerator(Generic[S, L]):
    """What every generator child (clients.py, ot.py, comments.py) does with its sockets:
    connect them all, paced by ``plan.connect_rate``; keep them alive with heartbeats; report
    how they ended; close them. A subclass says where its specs are (``_specs``), each socket's
    room (``_room``), what follows the upgrade (``_handshake``: e.g. ``receive_snapshot``) and
    what an admitted socket becomes (``_admit``: its client state, ``ws.on_message`` set).
    """

    plan: Any
    live: list[L] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    connect_ms: list[float] = field(default_factory=list)
    first_attempt: float | None = None
    last_established: float | None = None
    errors: Counter[str] = field(default_factory=Counter)
    other_frames: Counter[str] = field(default_factory=Counter)
    _heartbeat: asyncio.Task[None] | None = None
    heartbeat_frame: ClassVar[str] = HEARTBEAT_FRAME

    def _specs(self) -> list[S]:
        raise NotImplementedError

    def _room(self, live: L) -> int:
        raise NotImplementedError

    async def _handshake(self, ws: RawWebSocket, spec: S) -> tuple[float, Any]:
        """After the upgrade: when the socket counts as connected (connect_ms), and what
        ``_admit`` needs."""
        raise NotImplementedError

    def _admit(self, spec: S, ws: RawWebSocket, handshake: Any, started: float) -> L:
        raise NotImplementedError

    # --- connecting --------------------------------------------------------------------------
    async def connect_all(self) -> dict[str, Any]:
        async with asyncio.timeout(max(0.0, self.plan.deadline - time.monotonic())):
            return await self._connect_all()

    async def _connect_all(self) -> dict[str, Any]:
        start = time.monotonic()
        rate = self.plan.connect_rate
        specs = self._specs()
        self.first_attempt = start
        # From the first socket on: a paced connect phase can outlast the server's silence
        # timeout (45 s), and a socket that joined early must not be closed as silent (4408).
        self._heartbeat = asyncio.create_task(self._heartbeat_forever())
        attempts = []
        for n, spec in enumerate(specs):
            if rate > 0:
                await sleep_until(start + n / rate)
            attempts.append(asyncio.create_task(self._connect(spec)))
        await asyncio.gather(*attempts)
        return {
            "attempted": len(specs),
            "established": len(self.live),
            "failures": dict(self.failures),
            "connect_ms": list(self.connect_ms),
            "first_attempt": self.first_attempt,
            "last_established": self.last_established,
            "rooms": dict(Counter(self._room(live) for live in self.live)),
        }

    async def _connect(self, spec: S) -> None:
        started = time.monotonic()
        ws = None
        try:
            async with asyncio.timeout(self.plan.handshake_timeout):
                ws = await open_websocket(spec.url, origin=self.plan.origin)
                ready_at, handshake = await self._handshake(ws, spec)
        except Exception as error:
            self.failures[classify(error)] += 1
            if ws is not None:
                ws.abort()
            return
        self.connect_ms.append((ready_at - started) * 1000)
        self.last_established = time.monotonic()
        self.live.append(self._admit(spec, ws, handshake, started))

    async def _heartbeat_forever(self) -> None:
        """Every socket sends session.heartbeat once per interval, spread over the interval,
        so that a long hold is not closed as silent (4408)."""
        period = max(1, int(self.plan.heartbeat_seconds))
        tick = 0
        while True:
            await asyncio.sleep(1)
            tick += 1
            for live in self.live[tick % period :: period]:
                with contextlib.suppress(ClosedError):
                    live.ws.send_text(self.heartbeat_frame)

    # --- the end -----------------------------------------------------------------------------
    def stop_report(self) -> dict[str, Any]:
        closed = Counter(str(live.ws.close_code) for live in self.live if live.ws.closed.done())
        return {
            "open": len(self.live) - sum(closed.values()),
            "closed_by_server": dict(closed),
            "errors": dict(self.errors),
            "other_frames": dict(self.other_frames),
        }

    async def close_all(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for live in self.live:
            with contextlib.suppress(ClosedError):
                live.ws.close()
        if self.live:
            await asyncio.wait([live.ws.closed for live in self.live], timeout=CLOSE_TIMEOUT)
        for live in self.live:
            live.ws.abort()

    async def serve(self, conn: Any, phases: dict[str, Phase]) -> None:
        await serve(conn, self.plan.deadline, phases, self.stop_report, self.close_all)


async def welcome(ws: RawWebSocket) -> None:
    """The first frame must be ``session.welcome``."""
    first = json.loads(await ws.recv())
    if first.get("type") != "session.welcome":
        raise Refused(f"no_welcome_{first.get('type')}")


async def receive_snapshot(ws: RawWebSocket, kind: str) -> dict[str, Any]:
    """``session.welcome``, then the data of the ``kind`` frame (presence frames skipped)."""
    await welcome(ws)
    while True:
        frame = json.loads(await ws.recv())
        got = frame.get("type")
        if got == kind:
            return frame["data"]
        if got == "error":
            raise Refused(f"error_{frame.get('error', {}).get('code')}")
        if not str(got).startswith("presence."):
            raise Refused(f"no_snapshot_{got}")


async def send_on_schedule(
    t0: float, duration: float, rate: float, total: int, send: Callable[[int], None]
) -> tuple[int, float]:
    """``send(n)`` for n = 0..total-1 at ``rate``/s from ``t0``, all sends due within one tick
    together; stops when the window (plus 1 s) runs out. Returns (sends made, worst lag in s)."""
    n = 0
    lag_max = 0.0
    while n < total and time.monotonic() < t0 + duration + 1:
        due = min(total, int((time.monotonic() - t0) * rate) + 1)
        while n < due:
            send(n)
            n += 1
        lag_max = max(lag_max, time.monotonic() - (t0 + (n - 1) / rate))
        await asyncio.sleep(SEND_TICK)
    return n, lag_max


async def sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        await asyncio.sleep(remaining)


# --- the process -------------------------------------------------------------------------------
def run_child(main: Coroutine[Any, Any, None]) -> None:
    """Run a generator process's ``main`` on uvloop when installed."""
    try:
        import uvloop
    except ImportError:  # the standard loop works, it just costs the generator more CPU
        asyncio.run(main)
    else:
        uvloop.run(main)


async def serve(
    conn: Any,
    deadline: float,
    phases: dict[str, Phase],
    stop_report: Callable[[], dict[str, Any]],
    close: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Say "ready"; then run each phase the parent asks for and send its reply with the
    phase's report, until "stop" (or the deadline, or the parent is gone): "stopped", then
    ``close``."""
    watchdog = asyncio.create_task(_exit_when_orphaned(os.getppid()))
    try:
        conn.send(("ready",))
        while (message := await _next_message(conn, deadline)) is not None:
            if message[0] == "stop":
                break
            if message[0] not in phases:
                raise RuntimeError(f"a generator got {message[0]!r}")
            reply, phase = phases[message[0]]
            conn.send((reply, await phase(*message[1:])))
        conn.send(("stopped", stop_report()))
    finally:
        watchdog.cancel()
        if close is not None:
            await close()
        conn.close()


async def _exit_when_orphaned(parent: int) -> None:
    """A parent killed without cleanup leaves no generator behind: its sockets close with us."""
    while True:
        await asyncio.sleep(1)
        if os.getppid() != parent:
            os._exit(1)


async def _next_message(conn: Any, deadline: float) -> tuple[Any, ...] | None:
    """The parent's next message, or None at the deadline or when the parent is gone."""
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not await asyncio.to_thread(conn.poll, remaining):
        return None
    try:
        return conn.recv()
    except EOFError:
        return None
