"""The Daphne we run (RELIABILITY S12): a version with the header-parsing fix, bad header bytes
refused, frames over Daphne's own limit closed. Against a real worker process."""

from __future__ import annotations

import asyncio
import base64
import os
from importlib.metadata import version

import pytest
from packaging.version import Version
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from monitoring.loadtest.workers import DAPHNE_MAX_MESSAGE_BYTES, Worker
from tests.system.client import ORIGIN, fetch_ticket, ws_url
from tests.system.conftest import Account

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

DAPHNE_MAX_MESSAGE = DAPHNE_MAX_MESSAGE_BYTES  # the workers' --websocket-max-message-size
CLOSE_TOO_BIG = 1009


def test_daphne_has_the_header_parsing_fix():
    assert Version(version("daphne")) >= Version("4.2.2")


async def raw_request(worker: Worker, head: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(worker.host, worker.port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read(65536)
    finally:
        writer.close()


@pytest.mark.parametrize("target", ["/healthz", "/ws/presence/"])
async def test_a_header_with_a_vertical_tab_is_refused_with_400(worker_a: Worker, target: str):
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = (
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n"
    )
    head = (
        f"GET {target} HTTP/1.1\r\nHost: {worker_a.host}\r\n"
        + (upgrade if target.startswith("/ws/") else "")
        + "X-Smuggled: a\x0bb\r\n\r\n"
    ).encode()

    answer = await raw_request(worker_a, head)

    assert answer.split(b"\r\n", 1)[0].startswith(b"HTTP/1.1 400"), answer[:200]
    # The same request without the bad byte is served: the refusal is the header's.
    fine = await raw_request(worker_a, head.replace(b"\x0b", b""))
    assert not fine.startswith(b"HTTP/1.1 400"), fine[:200]


async def test_a_frame_over_daphnes_limit_is_closed_1009(worker_b: Worker, alice: Account):
    ticket = await fetch_ticket(worker_b.http_url(), alice.token)
    async with connect(
        ws_url(worker_b.ws_url("/ws/presence/"), ticket),
        origin=ORIGIN,  # type: ignore[arg-type]
        max_size=None,
    ) as ws:
        await ws.recv()  # the welcome
        with pytest.raises(ConnectionClosed) as closed:
            await ws.send("x" * (DAPHNE_MAX_MESSAGE + 1))
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        # Autobahn fails the connection: a 1009 close frame when it gets out before the reset
        # (the client is still sending), else the socket just ends. Either way: closed.
        assert closed.value.rcvd is None or closed.value.rcvd.code == CLOSE_TOO_BIG
    assert worker_b.alive()
    ticket = await fetch_ticket(worker_b.http_url(), alice.token)
    async with connect(ws_url(worker_b.ws_url("/ws/presence/"), ticket), origin=ORIGIN) as ws:
        assert '"session.welcome"' in await ws.recv()
