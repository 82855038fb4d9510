"""A minimal WebSocket client (RFC 6455) for the load generator: asyncio.Protocol, callbacks.

A general-purpose client (the ``websockets`` library) wakes a task and resolves a future for
every frame; at 10,000 frames/s that costs the generator more CPU than the frames are worth on
a machine it shares with the server. This one parses frames inside ``data_received`` and hands
each text message to a plain callback. It speaks only what the load test needs: one text
message per frame or fragmented, pings answered, close handshake; no extensions.

    ws = await open_websocket("ws://127.0.0.1:8001/ws/presence/?ticket=...", origin=origin)
    first = await ws.recv()             # awaitable until a callback is set
    ws.on_message = handle              # from now on every text message goes to handle(text)
    ws.send_text('{"type":"session.heartbeat"}')
    ws.close()                          # close frame, then the socket
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import Callable
from urllib.parse import urlsplit

try:
    from websockets.speedups import apply_mask  # C; websockets is a project dependency
except ImportError:  # pragma: no cover - the pure-Python fallback

    def apply_mask(data: bytes, mask: bytes) -> bytes:
        repeated = (mask * (len(data) // 4 + 1))[: len(data)]
        value = int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")
        return value.to_bytes(len(data), "big")


GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HEADER_BYTES = 16384


class HandshakeError(Exception):
    """The server did not upgrade: ``status`` is its HTTP status, or 0 if it said nothing."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(f"handshake failed: {status} {reason}".strip())
        self.status = status


class ClosedError(Exception):
    """The connection closed; ``code`` is the close code the server sent, if any."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"connection closed ({code})")
        self.code = code


class RawWebSocket(asyncio.Protocol):
    def __init__(self, request: bytes, accept: str) -> None:
        self._request = request
        self._accept = accept
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._pending: list[str] = []  # messages received before on_message was set
        self._waiter: asyncio.Future[str] | None = None
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self._close_sent = False
        self.on_message: Callable[[str], None] | None = None

    # --- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self._request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self.opened.done():
            self._read_handshake()
        if self.opened.done() and not self.opened.exception():
            self._read_frames()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(0, "connection closed"))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ClosedError(self.close_code))
        if not self.closed.done():
            self.closed.set_result(None)

    # --- handshake -----------------------------------------------------------------------------
    def _read_handshake(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                self._fail_handshake(HandshakeError(0, "response headers too large"))
            return
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        parts = head[0].split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status != 101:
            self._fail_handshake(HandshakeError(status, parts[2] if len(parts) > 2 else ""))
        elif headers.get("sec-websocket-accept") != self._accept:
            self._fail_handshake(HandshakeError(status, "bad Sec-WebSocket-Accept"))
        else:
            self.opened.set_result(None)

    def _fail_handshake(self, error: HandshakeError) -> None:
        self.opened.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    # --- frames --------------------------------------------------------------------------------
    def _read_frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            length, start = second & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            mask = b""
            if second & 0x80:  # servers must not mask, but unmask if one does
                mask, start = bytes(buffer[start : start + 4]), start + 4
            end = start + length
            if len(buffer) < end:
                return
            payload = bytes(buffer[start:end])
            del buffer[:end]
            if mask:
                payload = apply_mask(payload, mask)
            self._on_frame(first & 0x0F, bool(first & 0x80), payload)

    def _on_frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
            if not fin or self._fragments:
                self._fragments.append(payload)
                if not fin:
                    return
                payload, self._fragments = b"".join(self._fragments), []
            self._deliver(payload.decode("utf-8"))
        elif opcode == OP_PING:
            self._send_frame(OP_PONG, payload)
        elif opcode == OP_CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if not self._close_sent:  # the server started the close handshake: answer it
                self._close_sent = True
                self._send_frame(OP_CLOSE, payload[:2])
            if self.transport is not None:
                self.transport.close()

    def _deliver(self, text: str) -> None:
        if self.on_message is not None:
            self.on_message(text)
        elif self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(text)
            self._waiter = None
        else:
            self._pending.append(text)

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ClosedError(self.close_code)
        length = len(payload)
        if length < 126:
            header = bytes((0x80 | opcode, 0x80 | length))
        elif length < 65536:
            header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
        mask = os.urandom(4)
        self.transport.write(header + mask + apply_mask(payload, mask))

    # --- the client API ------------------------------------------------------------------------
    async def recv(self) -> str:
        """The next text message (only before ``on_message`` is set)."""
        if self._pending:
            return self._pending.pop(0)
        if self.closed.done():
            raise ClosedError(self.close_code)
        self._waiter = asyncio.get_running_loop().create_future()
        return await self._waiter

    def send_text(self, text: str) -> None:
        self._send_frame(OP_TEXT, text.encode("utf-8"))

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def close(self, code: int = 1000) -> None:
        """Start the close handshake; ``closed`` resolves when the server has closed too."""
        if self.open and not self._close_sent:
            self._close_sent = True
            self._send_frame(OP_CLOSE, code.to_bytes(2, "big"))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def open_websocket(url: str, *, origin: str) -> RawWebSocket:
    """Connect and complete the opening handshake (the caller bounds it with a timeout)."""
    parts = urlsplit(url)
    if parts.scheme != "ws":
        raise ValueError(f"only ws:// URLs are supported, not {url!r}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    key = base64.b64encode(os.urandom(16)).decode()
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()  # noqa: S324
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n\r\n"
    ).encode("latin-1")
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: RawWebSocket(request, accept), host, port)
    try:
        await protocol.opened
    except BaseException:
        protocol.abort()
        raise
    return protocol
