# ruff: noqa: ASYNC109 - a timeout argument on every wait is the point: no wait is unbounded.
"""Generator processes of the ``churn`` scenario: the project's own Python client, cut again and
again, so that the server sees a steady stream of reconnects (issue 9).

Unlike the other generators (lean raw sockets, rawws.py), every socket here is a
``config.client.RealtimeClient``, the library applications use, with its reconnect loop,
backoff, breaker, fresh ticket per connection and offline command queue; document editors are
``collab.client.DocumentSession``\\ s on top of it. What is under test is exactly that path:

- a **presence client** (``/ws/presence/``) joins its room on every open and, every
  ``command_interval`` seconds on average, sends ``presence.room.join`` again as a command,
  online or not; each ack must list the client's own user;
- an **editor** (``/ws/collab/documents/<id>/``) types a small random edit every
  ``type_interval`` seconds on average, online or not;
- every ``cut_min``-``cut_max`` seconds after it is open, each client is cut: ``drop()`` (the
  transport aborted, no close handshake: a network failure), or, for ``clean_share`` of the
  cuts, ``close()`` and ``start()`` (after waiting for its commands and edits to be answered,
  since ``close()`` fails whatever is pending). Right after a drop the client issues one
  command or edit, so some always wait offline and must be acked after the reconnect.

Tickets come from ``POST /api/realtime/tickets/`` with each load user's DRF token, one per
connection, as a real client gets them (blocking urllib in a small thread pool, proxies off:
traffic goes only to the workers' own addresses).

Driven by the parent (churnscenarios.py) through a pipe, one phase at a time (generator.serve):

    parent -> child               child -> parent
                                  ("ready",)
    ("connect",)                  ("connected", report)  every client open; presence clients
                                                         joined, editors have their snapshot
    ("churn", t0, seconds)        ("churned", report)    cut, command, type from t0 on; then
                                                         wait for cuts still reconnecting
    ("settle", timeout)           ("settled", report)    every client open, every command
                                                         answered, every editor settled; one
                                                         last join per presence client
    ("converge", {doc: v}, tmo)   ("converged", report)  editors at their document's version v
    ("stop",)                     ("stopped", report)    then every client is closed

Times are ``time.monotonic()``, system-wide on Linux, so the parent can line up the reopens with
its memory samples.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import json
import logging
import os
import random
import time
import urllib.error
import urllib.request
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from collab.client import DocumentSession
from config.client import Breaker, CommandError, RealtimeClient
from config.client.connection import CLOSED, CONNECTING, OPEN
from monitoring.loadtest.generator import run_child, serve, sleep_until
from monitoring.loadtest.ot import random_edit, text_digest

PRESENCE, EDITOR = "presence", "editor"
POLL_SECONDS = 0.02  # the settle and converge phases look at every client this often
CUT_FINISH_SECONDS = 30.0  # after the churn window, for cuts still reconnecting
CLOSE_ALL_SECONDS = 15.0
# The client library logs a failed connection attempt with the error as its second argument.
CLIENT_LOGGER = "config.client.connection"


@dataclass(frozen=True, slots=True)
class ChurnSpec:
    index: int  # global client number
    kind: str  # PRESENCE or EDITOR
    url: str  # ws://host:port/ws/presence/ or .../ws/collab/documents/<id>/ (no ticket)
    ticket_url: str  # http://host:port/api/realtime/tickets/ on the same worker
    token: str  # the load user's DRF token
    user_id: int
    room: str = ""  # presence clients: lobby.churn-NNNN
    document: int = -1  # editors: the document's index in the scenario


@dataclass
class ChurnPlan:
    proc: int
    procs: int
    clients: list[ChurnSpec]
    origin: str
    handshake_timeout: float
    deadline: float
    connect_rate: float = 0.0  # initial connections per second for this process; 0 = at once
    cut_min: float = 1.0
    cut_max: float = 5.0
    clean_share: float = 0.2
    command_interval: float = 5.0
    type_interval: float = 0.5
    command_timeout: float = 120.0
    drain_timeout: float = 10.0  # before a clean close: for pending commands / unacked edits
    ticket_timeout: float = 10.0
    backoff_base: float = 0.1
    backoff_cap: float = 1.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 2.0
    seed: int = 0


class TicketError(Exception):
    """The ticket endpoint did not give a ticket (its reason is the message)."""


def failure_reason(error: BaseException) -> str:
    """A short, stable reason for a failed connection attempt, for the failures histogram."""
    if isinstance(error, TicketError):
        return str(error)
    if isinstance(error, InvalidStatus):
        return f"http_{error.response.status_code}"
    if isinstance(error, ConnectionClosed):
        code = error.rcvd.code if error.rcvd is not None else None
        return f"closed_{code}" if code is not None else "closed_abnormally"
    if isinstance(error, InvalidMessage):
        return "closed_during_handshake"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, OSError) and error.errno is not None:
        return "os_" + errno.errorcode.get(error.errno, str(error.errno))
    if isinstance(error, ConnectionError) and "first frame" in str(error):
        return "no_welcome"
    return type(error).__name__


class AttemptLog(logging.Handler):
    """Counts what the client library logs: failed attempts by reason, handler errors."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.failures: Counter[str] = Counter()
        self.errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors += 1
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 2 and isinstance(args[1], BaseException):
            self.failures[failure_reason(args[1])] += 1


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post_ticket(url: str, token: str, timeout: float) -> tuple[int, bytes]:
    """POST the ticket endpoint with a DRF token: (status, body), error statuses included."""
    request = urllib.request.Request(  # noqa: S310 - the worker's own http:// URL
        url,
        data=b"",
        method="POST",
        headers={"Authorization": f"Token {token}", "Accept": "application/json"},
    )
    try:
        with _NO_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class Figures:
    """What one process's clients did (counters add up over processes in the parent)."""

    attempts: int = 0
    failed_attempts: int = 0
    tickets: int = 0
    ticket_ms: array[float] = field(default_factory=lambda: array("d"))
    connect_ms: array[float] = field(default_factory=lambda: array("d"))  # connecting -> open
    drop_ms: array[float] = field(default_factory=lambda: array("d"))  # drop() -> open
    clean_ms: array[float] = field(default_factory=lambda: array("d"))  # start() -> open
    close_ms: array[float] = field(default_factory=lambda: array("d"))  # close() itself
    reopens: array[float] = field(default_factory=lambda: array("d"))  # when, during churn
    drops: int = 0
    cleans: int = 0
    clean_fallbacks: int = 0  # not drained in time: dropped instead
    skipped_cuts: int = 0  # the client was not open when its cut came
    unplanned: Counter[str] = field(default_factory=Counter)  # closed without our cut, by code
    issued: int = 0
    issued_offline: int = 0
    acked: int = 0
    acked_offline: int = 0
    acks_without_self: int = 0
    command_errors: Counter[str] = field(default_factory=Counter)
    command_ms: array[float] = field(default_factory=lambda: array("d"))
    edits: int = 0
    edits_offline: int = 0
    actor_errors: Counter[str] = field(default_factory=Counter)

    def counters(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "failed_attempts": self.failed_attempts,
            "tickets": self.tickets,
            "drops": self.drops,
            "cleans": self.cleans,
            "clean_fallbacks": self.clean_fallbacks,
            "skipped_cuts": self.skipped_cuts,
            "unplanned": dict(self.unplanned),
            "issued": self.issued,
            "issued_offline": self.issued_offline,
            "acked": self.acked,
            "acked_offline": self.acked_offline,
            "acks_without_self": self.acks_without_self,
            "command_errors": dict(self.command_errors),
            "edits": self.edits,
            "edits_offline": self.edits_offline,
            "actor_errors": dict(self.actor_errors),
        }


class Actor:
    """One client and what it does: its cuts, its commands (presence) or its typing (editor)."""

    def __init__(self, generator: ChurnGenerator, spec: ChurnSpec) -> None:
        plan = generator.plan
        self.generator = generator
        self.figures = generator.figures
        self.spec = spec
        self.plan = plan
        seed = plan.seed * 1_000_003 + spec.index
        self.rng = random.Random(seed)  # noqa: S311 - commands and edits
        self.cuts = random.Random(-seed - 1)  # noqa: S311 - when and how it is cut
        options: dict[str, Any] = {
            "origin": plan.origin,
            "open_timeout": plan.handshake_timeout,
            "breaker": Breaker(threshold=plan.breaker_threshold, cooldown=plan.breaker_cooldown),
            "backoff_base": plan.backoff_base,
            "backoff_cap": plan.backoff_cap,
        }
        self.session: DocumentSession | None = None
        if spec.kind == EDITOR:
            client_id = f"churn-{spec.index}-{os.getpid()}-{int(time.time() * 1000)}"
            self.session = DocumentSession(
                spec.url, client_id=client_id, ticket=self.ticket, **options
            )
            self.client = self.session.client
        else:
            self.client = RealtimeClient(spec.url, ticket=self.ticket, **options)
        self.client.on_state(self._on_state)
        self.state = CLOSED
        self.connecting_at = 0.0
        self.opens = 0
        self.cut_at: float | None = None  # a cut of ours is under way (planned, not a failure)
        self.cut_kind = ""
        self.measure_from = 0.0  # what its latency counts from: the drop, or the start()
        self.ready = asyncio.Event()  # open, and no cut of ours under way
        self.paused = False  # a clean close is under way: issue nothing
        self.finished = False  # closed for good at the end of the run
        self.commands: set[asyncio.Task[None]] = set()
        self.members: list[int] | None = None  # users listed by the last join ack

    # --- the connection ------------------------------------------------------------------------
    async def ticket(self) -> str:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        status, body = await loop.run_in_executor(
            self.generator.pool,
            post_ticket,
            self.spec.ticket_url,
            self.spec.token,
            self.plan.ticket_timeout,
        )
        if status != 201:
            raise TicketError(f"ticket_http_{status}")
        self.figures.tickets += 1
        self.figures.ticket_ms.append((time.monotonic() - started) * 1000)
        return json.loads(body)["ticket"]

    def _on_state(self, state: str) -> None:
        now = time.monotonic()
        previous, self.state = self.state, state
        figures = self.figures
        if state == CONNECTING:
            figures.attempts += 1
            self.connecting_at = now
        elif state == OPEN:
            self.opens += 1
            figures.connect_ms.append((now - self.connecting_at) * 1000)
            if self.opens > 1 and self.generator.churning:
                figures.reopens.append(now)
            if self.cut_at is not None:
                latencies = figures.drop_ms if self.cut_kind == "drop" else figures.clean_ms
                latencies.append((now - self.measure_from) * 1000)
                self.cut_at = None
            self.ready.set()
            if self.spec.kind == PRESENCE:
                self.issue()  # rejoin: a new socket is in no room
            return
        self.ready.clear()
        if previous == CONNECTING:
            figures.failed_attempts += 1
        elif previous == OPEN and self.cut_at is None and not self.finished:
            figures.unplanned[str(self.client.close_code)] += 1

    async def start(self) -> bool:
        """Open for the first time (an editor: with its snapshot); False when it did not."""
        try:
            if self.session is not None:
                await self.session.start(timeout=self.plan.handshake_timeout)
            else:
                await self.client.start()
                await self.client.wait_open(self.plan.handshake_timeout)
                await self.drain(self.plan.handshake_timeout)  # the first join
        except TimeoutError:
            return False
        return self.state == OPEN

    async def close(self) -> None:
        self.finished = True
        for task in self.commands:
            task.cancel()
        if self.session is not None:
            await self.session.close()
        else:
            await self.client.close()

    # --- commands and edits --------------------------------------------------------------------
    @property
    def cut(self) -> bool:
        return self.cut_at is not None or self.state != OPEN

    def issue(self) -> None:
        """A ``presence.room.join`` command, online or not; its outcome is counted."""
        offline = self.cut
        self.figures.issued += 1
        self.figures.issued_offline += offline
        task = asyncio.get_running_loop().create_task(self._command(offline))
        self.commands.add(task)
        task.add_done_callback(self.commands.discard)

    async def _command(self, offline: bool) -> None:
        started = time.monotonic()
        try:
            data = await self.client.command(
                "presence.room.join", {"room": self.spec.room}, timeout=self.plan.command_timeout
            )
        except CommandError as error:
            self.figures.command_errors[error.code or "unknown"] += 1
            return
        except TimeoutError:
            self.figures.command_errors["timeout"] += 1
            return
        except ConnectionError:
            self.figures.command_errors["client_closed"] += 1
            return
        self.figures.acked += 1
        self.figures.acked_offline += offline
        self.figures.command_ms.append((time.monotonic() - started) * 1000)
        members = [m["user"]["id"] for m in data.get("members", [])]
        if self.spec.user_id not in members:
            self.figures.acks_without_self += 1
        self.members = members

    def type_one(self) -> None:
        assert self.session is not None
        if self.session.editor is None:
            return  # never had its snapshot (counted as not established)
        self.figures.edits += 1
        self.figures.edits_offline += self.cut
        self.session.edit(random_edit(self.session.text, self.rng))

    def act(self) -> None:
        """One command (presence) or one keystroke (editor)."""
        if self.session is not None:
            self.type_one()
        else:
            self.issue()

    @property
    def settled(self) -> bool:
        if self.session is not None:
            return self.session.editor is not None and self.session.editor.settled
        return not self.commands

    async def drain(self, timeout: float) -> bool:
        """Wait until every command is answered and every edit acked."""
        deadline = time.monotonic() + timeout
        while not self.settled and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(POLL_SECONDS)
        return self.settled

    # --- the churn -----------------------------------------------------------------------------
    async def activity(self, end: float) -> None:
        """Commands (presence) or keystrokes (editor) until ``end``, online or not."""
        interval = self.plan.type_interval if self.session else self.plan.command_interval
        while True:
            delay = self.rng.uniform(0.5, 1.5) * interval
            if time.monotonic() + delay >= end:
                return
            await asyncio.sleep(delay)
            if not self.paused:
                self.act()

    async def cutter(self, end: float) -> None:
        """Cut the client every cut_min-cut_max seconds after it is open, until ``end``."""
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            try:  # the last cut's reconnect is over (a drop is seen some time after drop())
                async with asyncio.timeout(remaining):
                    await self.ready.wait()
            except TimeoutError:
                return
            delay = self.cuts.uniform(self.plan.cut_min, self.plan.cut_max)
            if time.monotonic() + delay >= end:
                return
            await asyncio.sleep(delay)
            if self.state != OPEN or self.cut_at is not None:
                self.figures.skipped_cuts += 1
                continue
            if self.cuts.random() < self.plan.clean_share:
                await self.clean_cut()
            else:
                await self.drop_cut()

    async def drop_cut(self) -> None:
        self.ready.clear()
        self.cut_at = self.measure_from = time.monotonic()
        self.cut_kind = "drop"
        self.figures.drops += 1
        await self.client.drop()
        self.act()  # waits offline: it must be acked after the reconnect

    async def clean_cut(self) -> None:
        self.ready.clear()
        self.paused = True
        try:
            if not await self.drain(self.plan.drain_timeout):
                self.figures.clean_fallbacks += 1
                self.paused = False
                await self.drop_cut()
                return
            self.cut_at = time.monotonic()
            self.cut_kind = "clean"
            self.figures.cleans += 1
            await self.client.close()
            self.measure_from = time.monotonic()
            self.figures.close_ms.append((self.measure_from - self.cut_at) * 1000)
            await self.client.start()
        finally:
            self.paused = False


@dataclass
class ChurnGenerator:
    plan: ChurnPlan
    actors: list[Actor] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)
    log: AttemptLog = field(default_factory=AttemptLog)
    churning: bool = False
    pool: concurrent.futures.ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        logger = logging.getLogger(CLIENT_LOGGER)
        logger.setLevel(logging.INFO)
        logger.addHandler(self.log)
        logger.propagate = False
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(4, min(32, len(self.plan.clients))), thread_name_prefix="ticket"
        )

    async def connect_all(self) -> dict[str, Any]:
        started = time.monotonic()
        rate = self.plan.connect_rate
        self.actors = [Actor(self, spec) for spec in self.plan.clients]
        starts = []
        for n, actor in enumerate(self.actors):
            if rate > 0:
                await sleep_until(started + n / rate)
            starts.append(asyncio.create_task(actor.start()))
        opened = await asyncio.gather(*starts)
        return {
            "attempted": len(self.actors),
            "established": sum(opened),
            "connect_seconds": time.monotonic() - started,
            "first_connect_ms": list(self.figures.connect_ms),
            **self._failures(),
        }

    async def churn(self, t0: float, seconds: float) -> dict[str, Any]:
        await sleep_until(t0)
        cpu_started = time.process_time()
        end = t0 + seconds
        self.churning = True
        # Latencies of the churn window only (the first connections were reported already).
        self.figures.connect_ms, self.figures.ticket_ms = array("d"), array("d")
        tasks = [
            asyncio.create_task(work(end))
            for actor in self.actors
            for work in (actor.cutter, actor.activity)
        ]
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, BaseException):  # a bug of ours: counted, and the run goes on
                self.figures.actor_errors[repr(outcome)[:200]] += 1
        ended = time.monotonic()
        # Cuts made just before the end are still reconnecting: their latency counts too.
        deadline = ended + CUT_FINISH_SECONDS
        while any(a.cut_at is not None for a in self.actors) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(POLL_SECONDS)
        self.churning = False
        figures = self.figures
        return {
            "ended": ended,
            "reopens": figures.reopens,
            "drop_ms": figures.drop_ms,
            "clean_ms": figures.clean_ms,
            "close_ms": figures.close_ms,
            "connect_ms": figures.connect_ms,
            "ticket_ms": figures.ticket_ms,
            "still_cut": sum(a.cut_at is not None for a in self.actors),
            "cpu_seconds": time.process_time() - cpu_started,
            **figures.counters(),
            **self._failures(),
        }

    async def settle(self, timeout: float) -> dict[str, Any]:
        """Every client open, every command answered, every editor settled; then one last
        join per presence client, whose ack lists its room's members."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline and not all(  # noqa: ASYNC110
            a.state == OPEN and a.settled for a in self.actors
        ):
            await asyncio.sleep(POLL_SECONDS)
        settled_seconds = time.monotonic() - started
        final: dict[int, list[int] | None] = {}
        presence = [a for a in self.actors if a.session is None]
        for actor in presence:
            actor.members = None
            actor.issue()
        remaining = max(1.0, deadline - time.monotonic())
        await asyncio.gather(*(a.drain(remaining) for a in presence))
        for actor in presence:
            final[actor.spec.index] = actor.members
        return {
            "settled_seconds": settled_seconds,
            "not_open": sum(a.state != OPEN for a in self.actors),
            "unsettled": sum(not a.settled for a in self.actors),
            "final_members": final,
            "session_errors": Counter(
                type(error).__name__ + (f":{error.code}" if isinstance(error, CommandError) else "")
                for a in self.actors
                if a.session is not None
                for error in a.session.errors
            ),
            "sent_on_open": sum(getattr(a.client, "sent_on_open", 0) for a in self.actors),
            "connections": sum(a.client.connections for a in self.actors),
            "client_handler_errors": self.log.errors,
            "command_ms": self.figures.command_ms,
            **self.figures.counters(),
            **self._failures(),
        }

    async def converge(self, versions: dict[int, int], timeout: float) -> dict[str, Any]:
        """Wait until each editor is at its document's final version; report every text."""
        editors = [a for a in self.actors if a.session is not None]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(  # noqa: ASYNC110
            a.session.version >= versions.get(a.spec.document, 0)  # type: ignore[union-attr]
            for a in editors
        ):
            await asyncio.sleep(POLL_SECONDS)
        reports = []
        for actor in editors:
            session = actor.session
            assert session is not None and session.editor is not None
            editor = session.editor
            reports.append(
                {
                    "index": actor.spec.index,
                    "document": actor.spec.document,
                    "client_id": editor.client_id,
                    "version": editor.version,
                    "settled": editor.settled,
                    "sha256": text_digest(editor.text),
                    "length": len(editor.text),
                    "seq": editor.seq,  # ops submitted: seq 1..seq
                    "acked": len(editor.acked),
                    "acked_unique": len(set(editor.acked)),
                    "errors": len(session.errors),
                }
            )
        return {"editors": reports}

    def _failures(self) -> dict[str, Any]:
        logged = Counter(self.log.failures)
        # A socket closed before its welcome (4401, 4403, 4503...) is not logged by the client.
        unlogged = self.figures.failed_attempts - sum(logged.values())
        if unlogged > 0:
            logged["closed_before_welcome"] += unlogged
        return {"failures": dict(logged)}

    def stop_report(self) -> dict[str, Any]:
        return {
            "open": sum(a.state == OPEN for a in self.actors),
            "closed_by_server": dict(self.figures.unplanned),
            "errors": dict(self.figures.command_errors),
        }

    async def close_all(self) -> None:
        if self.actors:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_ALL_SECONDS):
                    await asyncio.gather(*(a.close() for a in self.actors), return_exceptions=True)
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def churn_generator_main(conn: Any, plan: ChurnPlan) -> None:
    """Entry point of a churn generator process (multiprocessing, spawn)."""
    generator = ChurnGenerator(plan)
    phases = {
        "connect": ("connected", generator.connect_all),
        "churn": ("churned", generator.churn),
        "settle": ("settled", generator.settle),
        "converge": ("converged", generator.converge),
    }
    run_child(serve(conn, plan.deadline, phases, generator.stop_report, generator.close_all))
