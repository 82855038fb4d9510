"""Generator processes for the ``comments`` scenario: thread sockets that write and read.

Django-free like clients.py and ot.py, and driven by the parent (commentscenarios.py) through a
pipe, one phase at a time:

    parent -> child                 child -> parent
                                    ("ready",)
    ("connect",)                    ("connected", report)  every socket has its thread snapshot
    ("write", t0, s, r, settle)     ("written", report)    r writes/s from t0 for s seconds, then
                                                           wait (at most settle s) until every
                                                           write is answered; the writes
    ("converge", {t: seq}, tmo)     ("converged", report)  wait until every socket of thread t
                                                           has seq; what each socket received
    ("stop",)                       ("stopped", report)    then every socket is closed

A socket is one load user in one thread. Writes go round-robin over the process's sockets in
the order (member, thread), so consecutive writes land in different threads. A write is a
comment (``comments.comment.create``, its key ``L<proc>.<n>``) or, with ``reaction_share``, a
reaction of a kind the user has not used on a random comment the socket has seen; its ack
latency is from its send to its ack. Every socket records each thread event it receives:
``(thread, seq, time.monotonic())`` (system-wide on Linux), so the parent times each delivery
from the send of the write that made that seq. Per socket, seqs must rise by exactly 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from monitoring.loadtest.generator import (
    SocketGenerator,
    receive_snapshot,
    run_child,
    send_on_schedule,
    sleep_until,
)
from monitoring.loadtest.rawws import ClosedError, RawWebSocket

WS_PATH = "/ws/comments/threads/{}/"
REACTION_KINDS = ("like", "love", "laugh", "wow", "sad", "angry")
COMMENT_FRAME = (
    '{"id":"w%d","type":"comments.comment.create",'
    '"data":{"body":"load comment %d sent %.6f","client_msg_id":"%s"}}'
)
REACTION_FRAME = '{"id":"w%d","type":"comments.reaction.add","data":{"comment_id":%d,"kind":"%s"}}'
HEARTBEAT_FRAME = '{"type":"session.heartbeat","data":{}}'
COMMENT, REACTION = 0, 1
NO_SEQ = -1  # unanswered, refused, or a reaction that was there already (no event)


def comment_key(proc: int, n: int) -> str:
    """The ``client_msg_id`` of write ``n`` of generator ``proc``: unique in a run's threads."""
    return f"L{proc}.{n}"


@dataclass(frozen=True, slots=True)
class SocketSpec:
    index: int  # global socket number = load user number - 1
    url: str  # ws://host:port/ws/comments/threads/<id>/?ticket=...
    thread: int  # thread index (not id) in the scenario
    stream: str  # "comments.thread.<id>"
    member: int  # position among its thread's sockets


@dataclass
class CommentsPlan:
    proc: int
    procs: int
    sockets: list[SocketSpec]
    origin: str
    handshake_timeout: float
    heartbeat_seconds: float
    deadline: float
    reaction_share: float = 0.2
    seed: int = 0
    connect_rate: float = 0.0  # unused (sockets connect at once); kept for Run


@dataclass(slots=True)
class Live:
    spec: SocketSpec
    ws: RawWebSocket
    first_seq: int  # the snapshot's
    last_seq: int
    comments: list[int]  # ids this socket has seen, to react to
    seen: set[int] = field(default_factory=set)  # seqs received after the snapshot
    reacted: set[tuple[int, str]] = field(default_factory=set)
    duplicates: int = 0
    out_of_order: int = 0


@dataclass
class Writes:
    """One row per write, in send order: write n of this process is row n."""

    thread: array[int] = field(default_factory=lambda: array("i"))
    socket: array[int] = field(default_factory=lambda: array("i"))
    kind: array[int] = field(default_factory=lambda: array("b"))
    sent: array[float] = field(default_factory=lambda: array("d"))
    acked: array[float] = field(default_factory=lambda: array("d"))  # 0.0: no ack
    seq: array[int] = field(default_factory=lambda: array("q"))
    comment: array[int] = field(default_factory=lambda: array("q"))  # made, or reacted to
    reaction_kind: list[str] = field(default_factory=list)  # "" for a comment

    def add(self, live: Live, kind: int, now: float, comment: int = 0, reaction: str = "") -> None:
        self.thread.append(live.spec.thread)
        self.socket.append(live.spec.index)
        self.kind.append(kind)
        self.sent.append(now)
        self.acked.append(0.0)
        self.seq.append(NO_SEQ)
        self.comment.append(comment)
        self.reaction_kind.append(reaction)

    def report(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class CommentsGenerator(SocketGenerator[SocketSpec, Live]):
    writes: Writes = field(default_factory=Writes)
    pending: set[int] = field(default_factory=set)  # writes sent, not yet answered
    duplicate_acks: int = 0  # acks saying the key had been used: never expected here
    send_failures: int = 0
    # Every thread event received after the snapshots: (thread, seq, arrival).
    arrival_thread: array[int] = field(default_factory=lambda: array("i"))
    arrival_seq: array[int] = field(default_factory=lambda: array("q"))
    arrival_time: array[float] = field(default_factory=lambda: array("d"))
    event_types: Counter[str] = field(default_factory=Counter)
    heartbeat_frame: ClassVar[str] = HEARTBEAT_FRAME

    def __post_init__(self) -> None:
        self.rng = random.Random(self.plan.seed * 1_000_003 + self.plan.proc)  # noqa: S311

    def _specs(self) -> list[SocketSpec]:
        return self.plan.sockets

    def _room(self, live: Live) -> int:
        return live.spec.thread

    async def _handshake(self, ws: RawWebSocket, spec: SocketSpec) -> tuple[float, Any]:
        snapshot = await receive_snapshot(ws, "comments.thread.snapshot")
        return time.monotonic(), snapshot  # connect_ms: up to the snapshot

    def _admit(
        self, spec: SocketSpec, ws: RawWebSocket, snapshot: dict[str, Any], started: float
    ) -> Live:
        seq = int(snapshot["seq"])
        live = Live(spec, ws, seq, seq, [c["id"] for c in snapshot["comments"]])
        ws.on_message = lambda raw: self._on_frame(live, raw)
        return live

    # --- reading -----------------------------------------------------------------------------
    def _on_frame(self, live: Live, raw: str) -> None:
        now = time.monotonic()
        frame = json.loads(raw)
        kind = frame.get("type")
        if frame.get("stream") == live.spec.stream and "seq" in frame:
            self._on_event(live, frame, now)
        elif kind == "ack":
            self._on_ack(frame, now)
        elif kind == "error":
            self.errors[frame.get("error", {}).get("code", "unknown")] += 1
            with contextlib.suppress(TypeError, ValueError):
                self.pending.discard(int(frame["id"][1:]))
        elif not str(kind).startswith("presence."):
            self.other_frames[kind] += 1

    def _on_event(self, live: Live, frame: dict[str, Any], now: float) -> None:
        seq = frame["seq"]
        self.event_types[frame["type"]] += 1
        if seq in live.seen or seq <= live.first_seq:
            live.duplicates += 1
            return
        if seq != live.last_seq + 1:
            live.out_of_order += 1
        live.seen.add(seq)
        live.last_seq = max(live.last_seq, seq)
        self.arrival_thread.append(live.spec.thread)
        self.arrival_seq.append(seq)
        self.arrival_time.append(now)
        if frame["type"] == "comments.comment.created":
            live.comments.append(frame["data"]["comment"]["id"])

    def _on_ack(self, frame: dict[str, Any], now: float) -> None:
        n = int(frame["id"][1:])
        if n not in self.pending:
            self.other_frames["ack_unexpected"] += 1
            return
        self.pending.discard(n)
        data = frame["data"]
        writes = self.writes
        writes.acked[n] = now
        writes.seq[n] = NO_SEQ if data.get("seq") is None else data["seq"]
        if writes.kind[n] == COMMENT:
            writes.comment[n] = data["comment"]["id"]
            self.duplicate_acks += bool(data.get("duplicate"))

    # --- writing -----------------------------------------------------------------------------
    async def write_window(
        self, t0: float, duration: float, rate: float, settle: float
    ) -> dict[str, Any]:
        """``rate`` writes/s from this process's sockets for ``duration`` seconds from ``t0``;
        then wait until each is acked or refused (at most ``settle`` seconds)."""
        writers = sorted(self.live, key=lambda live: (live.spec.member, live.spec.thread))
        total = int(duration * rate) if writers else 0
        await sleep_until(t0)
        cpu_started = time.process_time()
        n, lag_max = await send_on_schedule(
            t0, duration, rate, total, lambda i: self._write(writers[i % len(writers)])
        )
        sending_ended = time.monotonic()
        while self.pending and time.monotonic() < sending_ended + settle:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        return {
            "t0": t0,
            "scheduled": total,
            "unsent": total - n,
            "send_failures": self.send_failures,
            "send_seconds": sending_ended - t0,
            "send_lag_max_ms": lag_max * 1000,
            "unanswered": len(self.pending),
            "duplicate_acks": self.duplicate_acks,
            "writes": self.writes.report(),
            "errors": dict(self.errors),
            "cpu_seconds": time.process_time() - cpu_started,
        }

    def _write(self, live: Live) -> None:
        n = len(self.writes.sent)
        now = time.monotonic()
        react = self.rng.random() < self.plan.reaction_share
        target = self._reaction_target(live) if react else None
        if target is None:
            frame = COMMENT_FRAME % (n, n, now, comment_key(self.plan.proc, n))
            self.writes.add(live, COMMENT, now)
        else:
            frame = REACTION_FRAME % (n, *target)
            self.writes.add(live, REACTION, now, *target)
        try:
            live.ws.send_text(frame)
        except ClosedError:
            self.send_failures += 1
            return
        self.pending.add(n)

    def _reaction_target(self, live: Live) -> tuple[int, str] | None:
        """A comment this socket has seen and a kind its user has not put on it, if any: a
        reaction that is there already would change nothing and send no event."""
        for _ in range(4):
            choice = (self.rng.choice(live.comments), self.rng.choice(REACTION_KINDS))
            if choice not in live.reacted:
                live.reacted.add(choice)
                return choice
        return None

    async def converge(self, last_seqs: dict[int, int], timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """Wait until every socket has its thread's last seq; report what each received."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(  # noqa: ASYNC110
            live.last_seq >= last_seqs.get(live.spec.thread, 0) for live in self.live
        ):
            await asyncio.sleep(0.01)
        return {
            "sockets": [
                {
                    "index": live.spec.index,
                    "thread": live.spec.thread,
                    "first_seq": live.first_seq,
                    "last_seq": live.last_seq,
                    "received": len(live.seen),
                    "duplicates": live.duplicates,
                    "out_of_order": live.out_of_order,
                }
                for live in self.live
            ],
            "arrivals": (self.arrival_thread, self.arrival_seq, self.arrival_time),
            "event_types": dict(self.event_types),
        }


# --- the process -------------------------------------------------------------------------------
def comments_generator_main(conn: Any, plan: CommentsPlan) -> None:
    """Entry point of a comments generator process (multiprocessing, spawn)."""
    generator = CommentsGenerator(plan)
    phases = {
        "connect": ("connected", generator.connect_all),
        "write": ("written", generator.write_window),
        "converge": ("converged", generator.converge),
    }
    run_child(generator.serve(conn, phases))
