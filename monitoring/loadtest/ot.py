"""Generator processes for the collaborative-editing scenarios: OT editors and joins.

Django-free like clients.py (it imports only the pure ``collab.otclient`` state machine), and
driven by the parent (otscenarios.py) through a pipe, one phase at a time:

    parent -> child                 child -> parent
                                    ("ready",)
    ("connect",)                    ("connected", report)  every editor has its snapshot
    ("edit", t0, s, settle)         ("edited", report)     edit for s seconds from t0, then wait
                                                           (at most settle s) until every
                                                           editor has nothing in flight/buffered
    ("converge", {doc: v}, tmo)     ("converged", report)  wait until each editor is at its
                                                           document's final version v; texts
    ("join", c, start, stop)        ("joined", report)     join plans only: joins start:stop,
                                                           c at a time, timed
    ("stop",)                       ("stopped", report)    then every socket is closed

An editor (``collab.otclient.Editor``) keeps one op in flight, as real clients do. Whenever it
has nothing in flight it makes a small random edit (insert 1-3 characters, or delete one) and
sends it at once: on its ack, the buffered edits or a fresh one go out from the ack callback.
Meanwhile a ticker types into every editor's buffer every ``type_interval`` seconds. A submit's
latency is from its send to its ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import random
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from collab.otclient import Editor
from monitoring.loadtest.generator import (
    CLOSE_TIMEOUT,
    SocketGenerator,
    classify,
    receive_snapshot,
    run_child,
    serve,
    sleep_until,
)
from monitoring.loadtest.rawws import ClosedError, RawWebSocket, open_websocket

WS_PATH = "/ws/collab/documents/{}/"
ALPHABET = "abcdefghijklmnopqrstuvwxyz     "
SUBMIT_FRAME = '{"id":"s%d","type":"collab.op.submit","data":%s}'
SOFT_LENGTH = 2000  # past this many characters an editor deletes more often than it inserts


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class EditorSpec:
    index: int  # global editor number
    url: str  # ws://host:port/ws/collab/documents/<id>/?ticket=...
    document: int  # document index (not id) in the scenario


@dataclass
class OtPlan:
    proc: int
    procs: int
    editors: list[EditorSpec]
    origin: str
    handshake_timeout: float
    heartbeat_seconds: float
    deadline: float
    type_interval: float = 0.02
    seed: int = 0
    connect_rate: float = 0.0  # unused by editors (they connect at once); kept for Run


@dataclass(slots=True)
class Live:
    spec: EditorSpec
    ws: RawWebSocket
    editor: Editor
    rng: random.Random
    sent_at: float = 0.0
    failed: bool = False  # an error answered one of its submits: it can never settle


@dataclass
class OtGenerator(SocketGenerator[EditorSpec, Live]):
    editing: bool = False
    recording: bool = False
    latencies_ms: array[float] = field(default_factory=lambda: array("d"))
    submits: int = 0
    acks: int = 0
    remote_ops: int = 0
    last_ack: float = 0.0

    def _specs(self) -> list[EditorSpec]:
        return self.plan.editors

    def _room(self, live: Live) -> int:
        return live.spec.document

    async def _handshake(self, ws: RawWebSocket, spec: EditorSpec) -> tuple[float, Any]:
        snapshot = await receive_snapshot(ws, "collab.document.snapshot")
        return time.monotonic(), snapshot  # connect_ms: up to the snapshot

    def _admit(
        self, spec: EditorSpec, ws: RawWebSocket, snapshot: dict[str, Any], started: float
    ) -> Live:
        client_id = f"load-{spec.index}-{os.getpid()}-{int(started * 1000)}"
        editor = Editor(client_id=client_id, text=snapshot["content"], version=snapshot["version"])
        rng = random.Random(self.plan.seed * 1_000_003 + spec.index)  # noqa: S311 - load text
        live = Live(spec, ws, editor, rng)
        ws.on_message = lambda raw: self._on_frame(live, raw)
        return live

    # --- the editor loop ---------------------------------------------------------------------
    def _on_frame(self, live: Live, raw: str) -> None:
        frame = json.loads(raw)
        kind = frame.get("type")
        editor = live.editor
        if kind == "ack":
            seq = int(frame["id"][1:])
            if seq != editor.inflight_seq:
                self.other_frames["ack_not_inflight"] += 1
                return
            now = time.monotonic()
            if self.recording:
                self.latencies_ms.append((now - live.sent_at) * 1000)
            self.acks += 1
            self.last_ack = now
            submit = editor.ack(frame["data"]["version"], seq)
            if submit is None and self.editing:
                submit = editor.edit(random_edit(editor.text, live.rng))
            if submit is not None:
                self._send(live, submit, now)
        elif kind == "collab.op.applied":
            data = frame["data"]
            self.remote_ops += 1
            editor.remote(
                data["op"], version=data["version"], client_id=data["client_id"], seq=data["seq"]
            )
        elif kind == "error":
            live.failed = True
            self.errors[frame.get("error", {}).get("code", "unknown")] += 1
        else:
            self.other_frames[kind] += 1

    def _send(self, live: Live, submit: dict[str, Any], now: float | None = None) -> None:
        try:
            live.ws.send_text(SUBMIT_FRAME % (submit["seq"], json.dumps(submit)))
        except ClosedError:
            live.failed = True
            self.errors["closed"] += 1
            return
        live.sent_at = time.monotonic() if now is None else now
        self.submits += 1

    async def edit_window(self, t0: float, duration: float, settle: float) -> dict[str, Any]:
        """Type for ``duration`` seconds from ``t0``; then wait until every editor is settled."""
        await sleep_until(t0)
        cpu_started = time.process_time()
        self.editing = self.recording = True
        end = t0 + duration
        while time.monotonic() < end:
            for live in self.live:
                if not live.failed:
                    submit = live.editor.edit(random_edit(live.editor.text, live.rng))
                    if submit is not None:
                        self._send(live, submit)
            await asyncio.sleep(self.plan.type_interval)
        self.editing = False
        stopped = time.monotonic()
        while time.monotonic() < stopped + settle and not self._settled():  # noqa: ASYNC110 - polls many editors
            await asyncio.sleep(0.002)
        self.recording = False
        return {
            "submits": self.submits,
            "acks": self.acks,
            "latencies_ms": self.latencies_ms,
            "last_ack": self.last_ack,
            "unsettled": sum(not live.editor.settled for live in self.live),
            "failed_editors": sum(live.failed for live in self.live),
            "errors": dict(self.errors),
            "cpu_seconds": time.process_time() - cpu_started,
        }

    def _settled(self) -> bool:
        return all(live.editor.settled or live.failed for live in self.live)

    async def converge(self, versions: dict[int, int], timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """Wait until each editor has its document's final version; report every text."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(  # noqa: ASYNC110
            live.editor.version >= versions.get(live.spec.document, 0) for live in self.live
        ):
            await asyncio.sleep(0.01)
        return {
            "editors": [
                {
                    "index": live.spec.index,
                    "document": live.spec.document,
                    "version": live.editor.version,
                    "settled": live.editor.settled,
                    "sha256": text_digest(live.editor.text),
                    "length": len(live.editor.text),
                    "acked": len(live.editor.acked),
                    "applied_remote": live.editor.applied_remote,
                }
                for live in self.live
            ],
            "remote_ops": self.remote_ops,
        }


def random_edit(text: str, rng: random.Random) -> list[Any]:
    """Insert 1-3 characters or delete one, at a random position of ``text``."""
    length = len(text)
    insert_share = 0.7 if length < SOFT_LENGTH else 0.3
    if length == 0 or rng.random() < insert_share:
        position = rng.randint(0, length)
        chars = "".join(rng.choices(ALPHABET, k=rng.randint(1, 3)))
        return [position, chars] if position else [chars]
    position = rng.randrange(length)
    return [position, -1] if position else [-1]


# --- joins -------------------------------------------------------------------------------------
@dataclass
class JoinPlan:
    proc: int
    procs: int
    urls: list[str]  # one per join, each with its own ticket
    origin: str
    handshake_timeout: float
    deadline: float
    expected_sha256: str = ""


async def join_all(plan: JoinPlan, concurrency: int, start: int, stop: int) -> dict[str, Any]:
    """URLs ``start:stop`` joined once each, ``concurrency`` at a time: TCP connect ->
    snapshot, timed."""
    urls = plan.urls[start:stop]
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    digests: Counter[str] = Counter()
    sizes: list[int] = []
    queue = list(reversed(urls))
    cpu_started = time.process_time()
    started = time.monotonic()

    async def one(url: str) -> None:
        begun = time.monotonic()
        ws = None
        try:
            async with asyncio.timeout(plan.handshake_timeout):
                ws = await open_websocket(url, origin=plan.origin)
                snapshot = await receive_snapshot(ws, "collab.document.snapshot")
            latencies.append((time.monotonic() - begun) * 1000)
            digests[text_digest(snapshot["content"])] += 1
            sizes.append(len(snapshot["content"]))
            ws.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await ws.closed
        except Exception as error:
            failures[classify(error)] += 1
        finally:
            if ws is not None:
                ws.abort()

    async def lane() -> None:
        while queue:
            await one(queue.pop())

    await asyncio.gather(*(lane() for _ in range(max(1, concurrency))))
    return {
        "joins": len(urls),
        "joined": len(latencies),
        "failures": dict(failures),
        "join_ms": latencies,
        "matching": digests.get(plan.expected_sha256, 0),
        "digests": len(digests),
        "content_chars": max(sizes, default=0),
        "seconds": time.monotonic() - started,
        "cpu_seconds": time.process_time() - cpu_started,
    }


# --- the process -------------------------------------------------------------------------------
def ot_generator_main(conn: Any, plan: OtPlan | JoinPlan) -> None:
    """Entry point of an OT or join generator process (multiprocessing, spawn)."""
    if isinstance(plan, JoinPlan):
        join = functools.partial(join_all, plan)
        stopped = {"errors": {}, "open": 0, "closed_by_server": {}}
        run_child(serve(conn, plan.deadline, {"join": ("joined", join)}, lambda: stopped))
        return
    generator = OtGenerator(plan)
    phases = {
        "connect": ("connected", generator.connect_all),
        "edit": ("edited", generator.edit_window),
        "converge": ("converged", generator.converge),
    }
    run_child(generator.serve(conn, phases))
