# ruff: noqa: ASYNC109 - a timeout argument on every wait is the point: no wait is unbounded.
"""A small WebSocket test client for the system tests, on ``websockets`` (asyncio).

It speaks the envelope of DESIGN section 4 against real Daphne workers:

    ticket = await fetch_ticket(worker.http_url(), token)
    async with await RealtimeClient.connect(worker.ws_url("/ws/presence/"), ticket=ticket) as c:
        reply = await c.request("presence.room.join", {"room": "lobby.x"})   # ack or error frame
        event = await c.next_event("presence.signal.received", timeout=5)

Every wait is bounded: a reply or event that does not come in time raises ``TimeoutError``
naming what was awaited and what arrived instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import itertools
import json
import os
import struct
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

ORIGIN = "http://app.example.test"
DEFAULT_TIMEOUT = 10.0
# Blocking ticket requests run here, not in asyncio's default executor (a handful of threads):
# hundreds of clients reconnecting at once (F2, F11) queued behind each other in this process,
# and the wait counted as the server's.
_TICKET_FETCHES = ThreadPoolExecutor(max_workers=64, thread_name_prefix="ticket")


def ws_url(base: str, ticket: str | None = None) -> str:
    return base if ticket is None else f"{base}?ticket={quote(ticket, safe='')}"


def http_request(
    url: str,
    *,
    method: str = "GET",
    token: str | None = None,
    accept: str = "application/json",
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    json_body: object = None,
) -> tuple[int, bytes, dict[str, str]]:
    """Plain blocking HTTP; returns (status, body, headers) for error statuses too."""
    headers = {"Accept": accept, **(headers or {})}
    if token is not None:
        headers["Authorization"] = f"Token {token}"
    data = None
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


async def fetch_ticket(base_http_url: str, token: str) -> str:
    """POST /api/realtime/tickets/ with a DRF token; the ticket, or AssertionError."""
    url = base_http_url.rstrip("/") + "/api/realtime/tickets/"
    status, body, _ = await asyncio.get_running_loop().run_in_executor(
        _TICKET_FETCHES, functools.partial(http_request, url, method="POST", token=token)
    )
    assert status == 201, f"ticket request answered {status}: {body[:500]!r}"
    payload = json.loads(body)
    assert payload["expires_in"] > 0, payload
    return payload["ticket"]


@dataclass
class HandshakeOutcome:
    """What a bare handshake attempt came to, for the tests of refused connections."""

    http_status: int | None  # set when the HTTP upgrade itself was refused
    close_code: int | None  # set when the socket opened and was then closed by the server
    frames: list[str]  # whatever the server sent before closing


async def attempt_handshake(
    url: str,
    *,
    origin: str | None = ORIGIN,
    send: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> HandshakeOutcome:
    """Open a socket, optionally send one frame at once, and record everything until close.

    Raises TimeoutError if the server neither refuses nor closes within ``timeout``.
    """
    try:
        ws = await connect(
            url,
            origin=origin,  # type: ignore[arg-type]
            open_timeout=timeout,
            close_timeout=2,
        )
    except InvalidStatus as error:
        return HandshakeOutcome(error.response.status_code, None, [])
    frames: list[str] = []
    try:
        if send is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(send)
        async with asyncio.timeout(timeout):
            with contextlib.suppress(ConnectionClosed):
                async for frame in ws:
                    frames.append(frame if isinstance(frame, str) else repr(frame))
    finally:
        await ws.close()
    return HandshakeOutcome(None, ws.close_code, frames)


async def pipelined_handshake(
    host: str,
    port: int,
    path: str,
    frames: list[str],
    *,
    origin: str = ORIGIN,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Send the upgrade request and text frames in one write, without waiting for the 101.

    A hostile client can do this; a polite library cannot. Returns the HTTP status line and
    every (opcode, payload) frame the server sent until it closed the TCP connection.
    """
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}"
        f"\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    )
    writer.write(request.encode() + b"".join(_masked_text_frame(f) for f in frames))
    received = b""
    try:
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionResetError:
        pass  # after its close frame the server may drop the connection
    finally:
        writer.close()
    head, _, rest = received.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], _unmasked_frames(rest)


def _masked_text_frame(text: str) -> bytes:
    payload, mask = text.encode(), os.urandom(4)
    size = len(payload)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack("!H", size)
    return b"\x81" + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _unmasked_frames(data: bytes) -> list[tuple[int, bytes]]:
    frames = []
    while len(data) >= 2:
        opcode, size, offset = data[0] & 0x0F, data[1] & 0x7F, 2
        if size == 126:
            size, offset = struct.unpack("!H", data[2:4])[0], 4
        elif size == 127:
            size, offset = struct.unpack("!Q", data[2:10])[0], 10
        frames.append((opcode, data[offset : offset + size]))
        data = data[offset + size :]
    return frames


class RealtimeClient:
    """One WebSocket connection: replies matched by id, everything else kept in an inbox."""

    def __init__(self, ws: ClientConnection, welcome: dict[str, Any]) -> None:
        self.ws = ws
        self.welcome = welcome
        self.inbox: list[dict[str, Any]] = []  # events and replies that matched no request
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._arrived = asyncio.Condition()
        self._ids = itertools.count(1)
        self._reader = asyncio.get_running_loop().create_task(self._read_forever())

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        ticket: str | None = None,
        origin: str | None = ORIGIN,
        headers: dict[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RealtimeClient:
        """Connect and wait for ``session.welcome``, which must be the first frame."""
        ws = await connect(
            ws_url(url, ticket),
            origin=origin,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=timeout,
            close_timeout=2,
        )  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(timeout):
                first = json.loads(await ws.recv())
        except (ConnectionClosed, TimeoutError) as error:
            await ws.close()
            raise AssertionError(
                f"no session.welcome from {url}: {error!r}, close code {ws.close_code}"
            ) from None
        assert first["type"] == "session.welcome", f"first frame was {first}"
        return cls(ws, first["data"])

    async def __aenter__(self) -> RealtimeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def request(
        self, type_: str, data: dict[str, Any] | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Send a command with a fresh id; return its ``ack`` or ``error`` frame."""
        command_id = f"t{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        try:
            await self.ws.send(json.dumps({"id": command_id, "type": type_, "data": data or {}}))
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TimeoutError(
                f"no reply to {type_} ({command_id}) in {timeout}s; inbox: {self.inbox[-5:]}"
            ) from None
        finally:
            self._pending.pop(command_id, None)

    async def ack(
        self, type_: str, data: dict[str, Any] | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Like request, but the reply must be an ack; returns its data."""
        reply = await self.request(type_, data, timeout=timeout)
        assert reply["type"] == "ack", f"{type_} {data} was answered with {reply}"
        return reply["data"]

    async def next_frame(
        self, type_: str, *, timeout: float = DEFAULT_TIMEOUT, **match: Any
    ) -> dict[str, Any]:
        """Take the first inbox frame of this type (and these top-level values), waiting."""

        def find() -> dict[str, Any] | None:
            for index, frame in enumerate(self.inbox):
                if frame.get("type") == type_ and all(frame.get(k) == v for k, v in match.items()):
                    return self.inbox.pop(index)
            return None

        try:
            async with asyncio.timeout(timeout), self._arrived:
                while (frame := find()) is None:
                    if self._reader.done():
                        raise AssertionError(
                            f"connection closed ({self.close_code}) while waiting for {type_}; "
                            f"inbox: {self.inbox[-5:]}"
                        )
                    await self._arrived.wait()
                return frame
        except TimeoutError:
            raise TimeoutError(
                f"no {type_} {match or ''} in {timeout}s; inbox: {self.inbox[-5:]}"
            ) from None

    async def wait_until(
        self, condition: Callable[[], bool], *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Wait until ``condition()`` holds, checked whenever a frame arrives."""
        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(condition)
        except TimeoutError:
            raise TimeoutError(f"still not so after {timeout}s; inbox: {self.inbox[-5:]}") from None

    async def next_event(self, type_: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        return await self.next_frame(type_, timeout=timeout)

    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> int | None:
        async with asyncio.timeout(timeout):
            await self.ws.wait_closed()
        return self.close_code

    async def _read_forever(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                is_reply = frame.get("type") in ("ack", "error")
                future = self._pending.get(frame.get("id")) if is_reply else None
                if future is not None and not future.done():
                    future.set_result(frame)
                else:
                    self.inbox.append(frame)
                async with self._arrived:
                    self._arrived.notify_all()
        except ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(
                        ConnectionError(f"connection closed with {self.ws.close_code}")
                    )
            async with self._arrived:
                self._arrived.notify_all()
