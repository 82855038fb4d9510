"""A callback WebSocket client for the load generator, on the ``websockets`` Sans-I/O protocol.

The asyncio client of ``websockets`` wakes a task and resolves a future for every frame; at
10,000 frames/s that costs the generator more CPU than the frames are worth on a machine it
shares with the server. This one drives the library's own protocol object (handshake, framing,
masking, pings, close handshake: ``websockets.client.ClientProtocol``) from an
``asyncio.Protocol`` and hands each text message to a plain callback, with no task per frame.

    ws = await open_websocket("ws://127.0.0.1:8001/ws/presence/?ticket=...", origin=origin)
    first = await ws.recv()             # awaitable until a callback is set
    ws.on_message = handle              # from now on every text message goes to handle(text)
    ws.send_text('{"type":"session.heartbeat"}')
    ws.close()                          # close frame, then the socket
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Origin
from websockets.uri import parse_uri


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
    def __init__(self, protocol: ClientProtocol) -> None:
        self.protocol = protocol
        self._fragments: list[bytes] = []
        self._pending: list[str] = []  # messages received before on_message was set
        self._waiter: asyncio.Future[str] | None = None
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.on_message: Callable[[str], None] | None = None

    # --- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                self._on_response(event)
            else:
                self._on_frame(event)
        self._flush()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(0, "connection closed"))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ClosedError(self.close_code))
        if not self.closed.done():
            self.closed.set_result(None)

    # --- events --------------------------------------------------------------------------------
    def _on_response(self, response: Response) -> None:
        if self.protocol.handshake_exc is None:
            self.opened.set_result(None)
        else:
            self.opened.set_exception(HandshakeError(response.status_code, response.reason_phrase))
            self.abort()

    def _on_frame(self, frame: Frame) -> None:
        # Pings and the close handshake are answered by the protocol object itself.
        if frame.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return
        payload = frame.data
        if not frame.fin or self._fragments:
            self._fragments.append(bytes(payload))
            if not frame.fin:
                return
            payload, self._fragments = b"".join(self._fragments), []
        self._deliver(bytes(payload).decode("utf-8"))

    def _deliver(self, text: str) -> None:
        if self.on_message is not None:
            self.on_message(text)
        elif self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(text)
            self._waiter = None
        else:
            self._pending.append(text)

    def _flush(self) -> None:
        if self.transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()  # the protocol's signal to half-close
        if self.protocol.close_expected():
            self.transport.close()

    # --- the client API ------------------------------------------------------------------------
    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code

    @property
    def open(self) -> bool:
        return self.protocol.state is State.OPEN and not self.closed.done()

    async def recv(self) -> str:
        """The next text message (only before ``on_message`` is set)."""
        if self._pending:
            return self._pending.pop(0)
        if self.closed.done():
            raise ClosedError(self.close_code)
        self._waiter = asyncio.get_running_loop().create_future()
        return await self._waiter

    def send_text(self, text: str) -> None:
        if not self.open:
            raise ClosedError(self.close_code)
        self.protocol.send_text(text.encode("utf-8"))
        self._flush()

    def close(self, code: int = 1000) -> None:
        """Start the close handshake; ``closed`` resolves when the server has closed too."""
        if self.open:
            self.protocol.send_close(code)
            self._flush()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def open_websocket(url: str, *, origin: str) -> RawWebSocket:
    """Connect and complete the opening handshake (the caller bounds it with a timeout)."""
    uri = parse_uri(url)
    if uri.secure:
        raise ValueError(f"only ws:// URLs are supported, not {url!r}")
    protocol = ClientProtocol(uri, origin=Origin(origin))
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: RawWebSocket(protocol), uri.host, uri.port)
    try:
        await client.opened
    except BaseException:
        client.abort()
        raise
    return client
