# ruff: noqa: ASYNC109 - a timeout argument on every wait is the point: no wait is unbounded.
"""An asyncio client of the WebSocket protocol (DESIGN section 4), on the ``websockets`` library.

It keeps one socket open for as long as you want it:

- reconnects after any drop, waiting with exponential backoff and full jitter (0.5 s base,
  30 s cap) behind a circuit breaker (``config.client.backoff``), with a fresh ticket each time;
  given several URLs (the workers themselves, without a load balancer), it moves to the next
  one after each failed attempt or drop;
- stops for good only on 4403 and 4404 (this object is not yours) or ``close()``;
- commands are futures with timeouts; a command made while offline, or left unanswered by a
  drop, is sent (again) once the socket is back, in order. Commands carry their idempotency
  keys (``client_msg_id``, ``client_id`` + ``seq``), so the server applies a replay once;
- events with a ``stream`` and ``seq`` are handed over once, in order: the client keeps the last
  seq of every stream and drops anything at or below it; ``resume`` turns those seqs into the
  query string of the next connection (``?since=``);
- sends ``session.heartbeat`` at the interval the welcome names, saying whether the user gave
  input since the last one (``mark_input()``), which is how presence tells active from idle;
- ``send_throttled`` sends a signal (typing) at most once per interval.

    async def ticket() -> str:                # a new single-use ticket for every connection
        ...                                    # POST /api/realtime/tickets/

    client = RealtimeClient("ws://localhost:8000/ws/collab/documents/7/", ticket=ticket,
                            origin="http://localhost:8000",
                            resume=lambda last: {"since": last.get("collab.doc.7")})
    client.on("collab.op.applied", lambda frame: print(frame["data"]))
    client.on_state(lambda state: print("connection", state))
    await client.start()                      # returns at once; await client.wait_open() to wait
    data = await client.command("collab.op.submit", {...}, timeout=10)   # or CommandError
    await client.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from config.client.backoff import BASE_SECONDS, CAP_SECONDS, Breaker, backoff_delay

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Any]
# Close codes after which connecting again cannot help (DESIGN section 4).
TERMINAL_CLOSE_CODES = frozenset({4403, 4404})
CONNECTING, OPEN, OFFLINE, CLOSED = "connecting", "open", "offline", "closed"


class CommandError(Exception):
    """The server answered a command with an ``error`` frame."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code: str = error.get("code", "")
        self.error = error


class RealtimeClient:
    def __init__(
        self,
        url: str | Sequence[str],
        *,
        ticket: Callable[[], Awaitable[str]] | None = None,
        origin: str | None = None,
        headers: dict[str, str] | None = None,
        resume: Callable[[dict[str, int]], dict[str, Any]] | None = None,
        open_timeout: float = 10.0,
        ping_interval: float = 10.0,
        ping_timeout: float = 10.0,
        breaker: Breaker | None = None,
        backoff_base: float = BASE_SECONDS,
        backoff_cap: float = CAP_SECONDS,
    ) -> None:
        # One URL (a load balancer's), or the workers' own: after a failed attempt or a drop
        # the next one is tried, so a dead worker's clients move to a live one.
        self.urls = [url] if isinstance(url, str) else list(url)
        if not self.urls:
            raise ValueError("RealtimeClient needs a URL")
        self._url_index = 0
        self.ticket = ticket
        self.origin = origin
        self.headers = headers or {}
        self.resume = resume
        self.open_timeout = open_timeout
        # A socket whose peer went silent (a partition: no FIN, no RST) is given up after at
        # most ping_interval + ping_timeout, then the client reconnects.
        self.ping = {"ping_interval": ping_interval, "ping_timeout": ping_timeout}
        self.breaker = breaker or Breaker()
        self.backoff = {"base": backoff_base, "cap": backoff_cap}
        self.state = CLOSED
        self.welcome: dict[str, Any] | None = None
        self.close_code: int | None = None  # of the last socket that closed
        self.last_seq: dict[str, int] = {}
        self.connections = 0  # sockets opened so far
        self.sent_on_open = 0  # commands sent as a socket opened: queued offline or unanswered
        self._ws: ClientConnection | None = None
        # command id -> (frame, future of the reply, on_reply)
        self._pending: dict[str, tuple[str, asyncio.Future[dict[str, Any]], Handler | None]] = {}
        self._ids = itertools.count(1)
        self._handlers: dict[str, list[Handler]] = {}
        self._state_handlers: list[Callable[[str], Any]] = []
        self._opened = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._last_input = 0.0
        self._last_beat = time.monotonic()
        self._last_sent: dict[str, float] = {}

    # --- what callers use ----------------------------------------------------------------------
    def on(self, event_type: str, handler: Handler) -> None:
        """Call ``handler(frame)`` for every event of this type (``"*"``: every event)."""
        self._handlers.setdefault(event_type, []).append(handler)

    def on_state(self, handler: Callable[[str], Any]) -> None:
        """Call ``handler(state)`` on every change: connecting, open, offline, closed."""
        self._state_handlers.append(handler)

    async def start(self) -> None:
        if self._runner is None or self._runner.done():
            self._closing = False
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def wait_open(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            await self._opened.wait()

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._fail_pending(ConnectionError("the client was closed"))
        self._set_state(CLOSED)

    async def command(
        self,
        message_type: str,
        data: dict[str, Any] | None = None,
        *,
        timeout: float = 10.0,
        on_reply: Callable[[dict[str, Any]], Any] | None = None,
    ) -> dict[str, Any]:
        """Send a command and return its ack's data; CommandError for an error frame,
        TimeoutError when no reply came in time (offline time included).

        ``on_reply(frame)`` is called with the ack or error frame as it is read, before any
        frame after it is handled. The awaiting caller resumes only later, when frames that
        were already received may have gone to the handlers: state that must change in order
        with the stream (an OT client's ack) changes here."""
        if self._closing:
            raise ConnectionError("the client is closed")
        command_id = f"c{next(self._ids)}"
        frame = json.dumps({"id": command_id, "type": message_type, "data": data or {}})
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = (frame, future, on_reply)
        try:
            if self.state == OPEN:
                await self._send(frame)  # a failed send stays pending: it goes after reconnect
            async with asyncio.timeout(timeout):
                reply = await future
        finally:
            self._pending.pop(command_id, None)
        if reply["type"] == "error":
            raise CommandError(reply.get("error") or {})
        return reply.get("data") or {}

    async def send(self, message_type: str, data: dict[str, Any] | None = None) -> bool:
        """Fire and forget (typing, cursors): sent only while open; False when dropped."""
        if self.state != OPEN:
            return False
        return await self._send(json.dumps({"type": message_type, "data": data or {}}))

    async def send_throttled(
        self, message_type: str, data: dict[str, Any] | None = None, *, every: float
    ) -> bool:
        """At most one of this type per ``every`` seconds (typing signals while keys go down)."""
        now = time.monotonic()
        if now - self._last_sent.get(message_type, -every) < every:
            return False
        sent = await self.send(message_type, data)
        if sent:
            self._last_sent[message_type] = now
        return sent

    async def drop(self) -> None:
        """Cut the socket as a network failure would (no close handshake); the client then
        reconnects as after any drop."""
        if self._ws is not None:
            self._ws.transport.abort()

    def mark_input(self) -> None:
        """The user typed, clicked or moved: the next heartbeat says active."""
        self._last_input = time.monotonic()

    # --- the connection loop -------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            now = time.monotonic()
            if not self.breaker.allows(now=now):
                self._set_state(OFFLINE)
                await asyncio.sleep(max(0.0, (self.breaker.open_until or now) - now))
                continue
            self._set_state(CONNECTING)
            try:
                ws = await self._open()
            except _Refused as refused:
                if refused.code in TERMINAL_CLOSE_CODES:
                    self._stop(refused.code)
                    return
                self._next_url()  # a worker that is stopping (4012) or not for us: another one
                failures = await self._failed(failures)
                continue
            except Exception as error:  # network, handshake, ticket: try again later
                log.info("connecting to %s failed: %r", self.url, error)
                self._next_url()
                failures = await self._failed(failures)
                continue
            failures = 0
            self.breaker = self.breaker.succeeded()
            await self._serve(ws)
            if self.close_code in TERMINAL_CLOSE_CODES:
                self._stop(self.close_code)
                return
            if not self._closing:
                self._set_state(OFFLINE)
                self._next_url()
                # A socket that was open and dropped: back soon, but not all clients at once.
                await asyncio.sleep(self._delay(0))

    async def _failed(self, failures: int) -> int:
        self.breaker = self.breaker.failed(now=time.monotonic(), random=random.random())  # noqa: S311
        self._set_state(OFFLINE)
        await asyncio.sleep(self._delay(failures))
        return failures + 1

    @property
    def url(self) -> str:
        """The URL the next (or current) socket goes to."""
        return self.urls[self._url_index]

    def _next_url(self) -> None:
        self._url_index = (self._url_index + 1) % len(self.urls)

    def _delay(self, failures: int) -> float:
        return backoff_delay(failures=failures, random=random.random(), **self.backoff)  # noqa: S311

    def _stop(self, code: int | None) -> None:
        self.close_code = code  # also when the socket was refused before its welcome
        self._closing = True
        self._fail_pending(ConnectionError(f"the server closed the socket for good ({code})"))
        self._set_state(CLOSED)

    async def _open(self) -> ClientConnection:
        ws = await connect(
            self._connect_url(await self.ticket() if self.ticket else None),
            origin=self.origin,  # type: ignore[arg-type]
            additional_headers=self.headers,
            open_timeout=self.open_timeout,
            close_timeout=2,
            **self.ping,
        )
        try:
            async with asyncio.timeout(self.open_timeout):
                first = json.loads(await ws.recv())
        except ConnectionClosed:
            raise _Refused(ws.close_code) from None
        except BaseException:
            await ws.close()
            raise
        if first.get("type") != "session.welcome":
            await ws.close()
            raise ConnectionError(f"the first frame was {first.get('type')!r}, not the welcome")
        self.welcome = first["data"]
        return ws

    def _connect_url(self, ticket: str | None) -> str:
        query: dict[str, Any] = {}
        if self.resume is not None:
            query.update(self.resume(dict(self.last_seq)))
        if ticket is not None:
            query["ticket"] = ticket
        parts = urlsplit(self.url)
        extra = urlencode({k: v for k, v in query.items() if v is not None})
        joined = "&".join(q for q in (parts.query, extra) if q)
        return urlunsplit(parts._replace(query=joined))

    async def _serve(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.connections += 1
        self.close_code = None
        self._set_state(OPEN)
        heartbeat = asyncio.get_running_loop().create_task(self._beat())
        try:
            for frame, *_ in list(self._pending.values()):  # queued offline, or unanswered
                if await self._send(frame):
                    self.sent_on_open += 1
            async for raw in ws:
                self._dispatch(raw)
        except ConnectionClosed:
            pass
        finally:
            heartbeat.cancel()
            self._ws = None
            self.close_code = ws.close_code

    async def _beat(self) -> None:
        interval = float((self.welcome or {}).get("heartbeat_interval") or 15)
        while True:
            await asyncio.sleep(interval)
            active = self._last_input > self._last_beat
            self._last_beat = time.monotonic()
            await self.send("session.heartbeat", {"active": active})

    async def _send(self, frame: str) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(frame)
        except ConnectionClosed:
            return False
        return True

    def _dispatch(self, raw: str | bytes) -> None:
        frame = json.loads(raw)
        if frame.get("type") in ("ack", "error"):
            pending = self._pending.get(frame.get("id"))
            if pending is not None and not pending[1].done():
                _, future, on_reply = pending
                if on_reply is not None:
                    self._call(on_reply, frame)
                future.set_result(frame)
            return
        stream, seq = frame.get("stream"), frame.get("seq")
        if isinstance(stream, str) and isinstance(seq, int):
            last = self.last_seq.get(stream)
            if last is not None and seq <= last:
                return  # had it already (a replay overlapping the live stream)
            self.last_seq[stream] = seq
        for handler in (*self._handlers.get(frame.get("type"), ()), *self._handlers.get("*", ())):
            self._call(handler, frame)

    def _call(self, handler: Callable[..., Any], *args: Any) -> None:
        try:
            result = handler(*args)
            if asyncio.iscoroutine(result):
                asyncio.get_running_loop().create_task(result)
        except Exception:  # a caller's bug must not take the connection down
            log.exception("a handler of the realtime client failed")

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        if state == OPEN:
            self._opened.set()
        else:
            self._opened.clear()
        for handler in self._state_handlers:
            self._call(handler, state)

    def _fail_pending(self, error: Exception) -> None:
        for _, future, _ in self._pending.values():
            if not future.done():
                future.set_exception(error)


class _Refused(Exception):
    """The socket opened and the server closed it before its welcome (4401, 4403, 4503...)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code
