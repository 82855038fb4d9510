"""The load generator: lean asyncio WebSocket clients, one or more generator processes.

Django-free on purpose: each generator process only imports this module (plus uvloop when
installed), so its CPU goes to the clients. The parent (scenarios.py) drives each process
through a pipe, one phase at a time:

    parent -> child          child -> parent
                             ("ready",)
    ("connect",)             ("connected", connect report)     every client joined its room
    ("send", t0, s, r, d)    ("sent", send report)             r signals/s from t0 for s seconds,
                                                               then d seconds of drain
    ("stop",)                ("stopped", stop report)          then every socket is closed

A client connects with ``?ticket=``, waits for ``session.welcome``, joins its room
(``presence.room.join``), then hands every frame to one callback (rawws.py: no task per frame).
A signal carries its id and the sender's ``time.monotonic()`` (system-wide on Linux), so any
process can time its delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from monitoring.loadtest.rawws import ClosedError, HandshakeError, RawWebSocket, open_websocket

SIGNAL_FRAME = '{"type":"presence.signal.send","data":{"room":"%s","data":{"m":%d,"t":%.6f}}}'
HEARTBEAT_FRAME = '{"type":"session.heartbeat"}'
# Seconds between looks at the send schedule. A timer wakeup costs ~90 µs of CPU on these VMs,
# so sends due within one tick go out together rather than each on its own wakeup.
SEND_TICK = 0.01
CLOSE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ClientSpec:
    index: int  # global client number
    url: str  # ws://host:port/ws/presence/?ticket=...
    room: str
    room_index: int
    member: int  # position in its room


@dataclass
class Plan:
    proc: int
    procs: int
    clients: list[ClientSpec]
    origin: str
    connect_rate: float  # connection attempts per second for this process; 0 = all at once
    handshake_timeout: float
    heartbeat_seconds: float
    deadline: float  # time.monotonic() by which the process has given up and exited


@dataclass(slots=True)
class Client:
    spec: ClientSpec
    ws: RawWebSocket


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
class Generator:
    plan: Plan
    clients: list[Client] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    connect_ms: list[float] = field(default_factory=list)
    first_attempt: float | None = None
    last_established: float | None = None
    # What the readers saw. Signals are recorded only inside a send window.
    recording: bool = False
    latencies_ms: array[float] = field(default_factory=lambda: array("d"))
    received: dict[int, int] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    other_frames: Counter[str] = field(default_factory=Counter)
    unrecorded_signals: int = 0
    _heartbeat: asyncio.Task[None] | None = None

    # --- connecting --------------------------------------------------------------------------
    async def connect_all(self) -> dict[str, Any]:
        start = time.monotonic()
        rate = self.plan.connect_rate
        self.first_attempt = start
        # From the first client on: a paced connect phase can outlast the server's silence
        # timeout (45 s), and a client that joined early must not be closed as silent (4408).
        self._heartbeat = asyncio.create_task(self._heartbeat_forever())
        attempts = []
        for n, spec in enumerate(self.plan.clients):
            if rate > 0:
                await _sleep_until(start + n / rate)
            attempts.append(asyncio.create_task(self._connect(spec)))
        await asyncio.gather(*attempts)
        return {
            "attempted": len(self.plan.clients),
            "established": len(self.clients),
            "failures": dict(self.failures),
            "connect_ms": list(self.connect_ms),
            "first_attempt": self.first_attempt,
            "last_established": self.last_established,
            "rooms": dict(Counter(c.spec.room_index for c in self.clients)),
        }

    async def _connect(self, spec: ClientSpec) -> None:
        started = time.monotonic()
        ws = None
        try:
            async with asyncio.timeout(self.plan.handshake_timeout):
                ws = await open_websocket(spec.url, origin=self.plan.origin)
                welcome = json.loads(await ws.recv())
                if welcome.get("type") != "session.welcome":
                    raise Refused(f"no_welcome_{welcome.get('type')}")
                welcomed_at = time.monotonic()  # connect_ms: TCP + upgrade + auth + welcome
                join = {"id": "join", "type": "presence.room.join", "data": {"room": spec.room}}
                ws.send_text(json.dumps(join))
                reply = json.loads(await ws.recv())
                if reply.get("type") != "ack":
                    raise Refused(f"join_{reply.get('error', {}).get('code', reply.get('type'))}")
        except Exception as error:
            self.failures[classify(error)] += 1
            if ws is not None:
                ws.abort()
            return
        self.connect_ms.append((welcomed_at - started) * 1000)
        self.last_established = time.monotonic()
        ws.on_message = self._on_frame
        self.clients.append(Client(spec, ws))

    async def _heartbeat_forever(self) -> None:
        """Every client sends session.heartbeat once per interval, spread over the interval,
        so that a long hold is not closed as silent (4408)."""
        period = max(1, int(self.plan.heartbeat_seconds))
        tick = 0
        while True:
            await asyncio.sleep(1)
            tick += 1
            for client in self.clients[tick % period :: period]:
                with contextlib.suppress(ClosedError):
                    client.ws.send_text(HEARTBEAT_FRAME)

    # --- reading -----------------------------------------------------------------------------
    def _on_frame(self, raw: str) -> None:
        now = time.monotonic()
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "presence.signal.received":
            body = frame["data"]["data"]
            if not self.recording:
                self.unrecorded_signals += 1
                return
            self.latencies_ms.append((now - body["t"]) * 1000)
            message_id = body["m"]
            self.received[message_id] = self.received.get(message_id, 0) + 1
        elif kind == "error":
            self.errors[frame.get("error", {}).get("code", "unknown")] += 1
        else:
            self.other_frames[kind] += 1

    # --- sending -----------------------------------------------------------------------------
    async def send_window(
        self, t0: float, duration: float, rate: float, drain: float
    ) -> dict[str, Any]:
        """Send ``rate`` signals/s in total from this process's clients, round-robin in the
        order (member, room): consecutive signals go to different rooms, as independent users'
        would, instead of one room's members sending back to back."""
        senders = sorted(self.clients, key=lambda c: (c.spec.member, c.spec.room_index))
        total = int(duration * rate) if senders else 0
        sent_ids, sent_rooms = array("q"), array("i")
        failed = 0
        lag_max = 0.0
        self.recording = True
        await _sleep_until(t0)
        cpu_started = time.process_time()
        seq = 0
        while seq < total and time.monotonic() < t0 + duration + 1:
            due = min(total, int((time.monotonic() - t0) * rate) + 1)
            while seq < due:
                client = senders[seq % len(senders)]
                message_id = seq * self.plan.procs + self.plan.proc
                frame = SIGNAL_FRAME % (client.spec.room, message_id, time.monotonic())
                try:
                    client.ws.send_text(frame)
                except ClosedError:
                    failed += 1
                else:
                    sent_ids.append(message_id)
                    sent_rooms.append(client.spec.room_index)
                seq += 1
            lag_max = max(lag_max, time.monotonic() - (t0 + (seq - 1) / rate))
            await asyncio.sleep(SEND_TICK)
        sending_ended = time.monotonic()
        await _sleep_until(t0 + duration + drain)
        self.recording = False
        return {
            "scheduled": total,
            "unsent": total - seq,  # the window ran out before the schedule did
            "send_failures": failed,
            "sent_ids": sent_ids,
            "sent_rooms": sent_rooms,
            "send_seconds": sending_ended - t0,
            "send_lag_max_ms": lag_max * 1000,
            "received": self.received,
            "latencies_ms": self.latencies_ms,
            "errors": dict(self.errors),
            "cpu_seconds": time.process_time() - cpu_started,
        }

    # --- the end -----------------------------------------------------------------------------
    def stop_report(self) -> dict[str, Any]:
        closed = Counter(str(c.ws.close_code) for c in self.clients if c.ws.closed.done())
        return {
            "open": len(self.clients) - sum(closed.values()),
            "closed_by_server": dict(closed),
            "errors": dict(self.errors),
            "other_frames": dict(self.other_frames),
            "unrecorded_signals": self.unrecorded_signals,
        }

    async def close_all(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for client in self.clients:
            with contextlib.suppress(ClosedError):
                client.ws.close()
        if self.clients:
            await asyncio.wait([c.ws.closed for c in self.clients], timeout=CLOSE_TIMEOUT)
        for client in self.clients:
            client.ws.abort()


async def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        await asyncio.sleep(remaining)


# --- the process -------------------------------------------------------------------------------
def generator_main(conn: Any, plan: Plan) -> None:
    """Entry point of a generator process (multiprocessing, spawn)."""
    try:
        import uvloop
    except ImportError:  # the standard loop works, it just costs the generator more CPU
        asyncio.run(_serve(conn, plan))
    else:
        uvloop.run(_serve(conn, plan))


async def _serve(conn: Any, plan: Plan) -> None:
    generator = Generator(plan)
    watchdog = asyncio.create_task(_exit_when_orphaned(os.getppid()))
    try:
        conn.send(("ready",))
        if await _next_message(conn, plan.deadline) != ("connect",):
            return
        async with asyncio.timeout(max(0.0, plan.deadline - time.monotonic())):
            conn.send(("connected", await generator.connect_all()))
        while (message := await _next_message(conn, plan.deadline)) is not None:
            if message[0] == "send":
                conn.send(("sent", await generator.send_window(*message[1:])))
            else:  # "stop"
                break
        conn.send(("stopped", generator.stop_report()))
    finally:
        watchdog.cancel()
        await generator.close_all()
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
