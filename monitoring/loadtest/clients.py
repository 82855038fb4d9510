"""The load generator: lean asyncio WebSocket clients, one or more generator processes.

Django-free on purpose: each generator process only imports this module and generator.py (its
sockets' base class and pipe loop; plus uvloop when installed), so its CPU goes to the clients.
The parent (scenarios.py) drives each process through a pipe, one phase at a time:

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

import json
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from monitoring.loadtest.generator import (
    Refused,
    SocketGenerator,
    run_child,
    send_on_schedule,
    sleep_until,
    welcome,
)
from monitoring.loadtest.rawws import ClosedError, RawWebSocket

SIGNAL_FRAME = '{"type":"presence.signal.send","data":{"room":"%s","data":{"m":%d,"t":%.6f}}}'
BARE_SIGNAL_FRAME = '{"m":%d,"t":%.6f}'


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


@dataclass
class Generator(SocketGenerator[ClientSpec, Client]):
    """Presence clients: each joins its room, then sends and receives room signals."""

    # What the readers saw. Signals are recorded only inside a send window.
    recording: bool = False
    latencies_ms: array[float] = field(default_factory=lambda: array("d"))
    received: dict[int, int] = field(default_factory=dict)
    unrecorded_signals: int = 0

    def _specs(self) -> list[ClientSpec]:
        return self.plan.clients

    def _room(self, live: Client) -> int:
        return live.spec.room_index

    async def _handshake(self, ws: RawWebSocket, spec: ClientSpec) -> tuple[float, None]:
        await welcome(ws)
        welcomed_at = time.monotonic()  # connect_ms: TCP + upgrade + auth + welcome
        join = {"id": "join", "type": "presence.room.join", "data": {"room": spec.room}}
        ws.send_text(json.dumps(join))
        reply = json.loads(await ws.recv())
        if reply.get("type") != "ack":
            raise Refused(f"join_{reply.get('error', {}).get('code', reply.get('type'))}")
        return welcomed_at, None

    def _admit(self, spec: ClientSpec, ws: RawWebSocket, handshake: None, started: float) -> Client:
        ws.on_message = self._on_frame
        return Client(spec, ws)

    # --- reading -----------------------------------------------------------------------------
    def _on_frame(self, raw: str) -> None:
        now = time.monotonic()
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "presence.signal.received":
            self._record(frame["data"]["data"], now)
        elif kind == "error":
            self.errors[frame.get("error", {}).get("code", "unknown")] += 1
        else:
            self.other_frames[kind] += 1

    def _record(self, body: dict[str, Any], now: float) -> None:
        if not self.recording:
            self.unrecorded_signals += 1
            return
        self.latencies_ms.append((now - body["t"]) * 1000)
        message_id = body["m"]
        self.received[message_id] = self.received.get(message_id, 0) + 1

    @staticmethod
    def _signal_frame(room: str, message_id: int, sent_at: float) -> str:
        return SIGNAL_FRAME % (room, message_id, sent_at)

    # --- sending -----------------------------------------------------------------------------
    async def send_window(
        self, t0: float, duration: float, rate: float, drain: float
    ) -> dict[str, Any]:
        """Send ``rate`` signals/s in total from this process's clients, round-robin in the
        order (member, room): consecutive signals go to different rooms, as independent users'
        would, instead of one room's members sending back to back."""
        senders = sorted(self.live, key=lambda c: (c.spec.member, c.spec.room_index))
        total = int(duration * rate) if senders else 0
        sent_ids, sent_rooms = array("q"), array("i")
        failed = 0

        def signal(seq: int) -> None:
            nonlocal failed
            client = senders[seq % len(senders)]
            message_id = seq * self.plan.procs + self.plan.proc
            frame = self._signal_frame(client.spec.room, message_id, time.monotonic())
            try:
                client.ws.send_text(frame)
            except ClosedError:
                failed += 1
            else:
                sent_ids.append(message_id)
                sent_rooms.append(client.spec.room_index)

        self.recording = True
        await sleep_until(t0)
        cpu_started = time.process_time()
        seq, lag_max = await send_on_schedule(t0, duration, rate, total, signal)
        sending_ended = time.monotonic()
        await sleep_until(t0 + duration + drain)
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

    def stop_report(self) -> dict[str, Any]:
        return {**super().stop_report(), "unrecorded_signals": self.unrecorded_signals}


@dataclass
class BareGenerator(Generator):
    """The same clients against the bare relay (monitoring/baseline.py): the room is in the
    URL, the socket counts as joined once upgraded (the relay joins its group before it
    accepts), and a signal is the body alone, relayed as it came. No heartbeats: the relay
    has no silence timeout, and every frame it gets would be relayed to the room."""

    async def _handshake(self, ws: RawWebSocket, spec: ClientSpec) -> tuple[float, None]:
        return time.monotonic(), None

    async def _heartbeat_forever(self) -> None:
        return None

    def _on_frame(self, raw: str) -> None:
        self._record(json.loads(raw), time.monotonic())

    @staticmethod
    def _signal_frame(room: str, message_id: int, sent_at: float) -> str:
        return BARE_SIGNAL_FRAME % (message_id, sent_at)


# --- the process -------------------------------------------------------------------------------
def generator_main(conn: Any, plan: Plan) -> None:
    """Entry point of a generator process (multiprocessing, spawn)."""
    _serve(Generator(plan), conn)


def bare_generator_main(conn: Any, plan: Plan) -> None:
    """Entry point of a generator process against the bare relay."""
    _serve(BareGenerator(plan), conn)


def _serve(generator: Generator, conn: Any) -> None:
    run_child(
        generator.serve(
            conn,
            {
                "connect": ("connected", generator.connect_all),
                "send": ("sent", generator.send_window),
            },
        )
    )
