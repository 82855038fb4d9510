"""Helpers for WebSocket integration tests: communicators against the real ASGI application.

comm, welcome = await open_ws(user)                  # fixture from tests/integration/conftest
reply = await request(comm, "session.heartbeat", id="c1")
"""

from __future__ import annotations

import json
from typing import Any

from channels.testing import WebsocketCommunicator

from config.asgi import application as default_application
from config.realtime.tickets import ticket_issue

ORIGIN = "http://testserver"
# Generous: these are upper bounds on waiting, not speed assertions.
TIMEOUT = 5


def communicator(
    path: str = "/ws/presence/",
    *,
    ticket: str | None = None,
    origin: str | None = ORIGIN,
    headers: list[tuple[bytes, bytes]] | None = None,
    application: Any = None,
) -> WebsocketCommunicator:
    query = f"?ticket={ticket}" if ticket is not None else ""
    all_headers = list(headers or [])
    if origin is not None:
        all_headers.append((b"origin", origin.encode()))
    return WebsocketCommunicator(
        application or default_application, path + query, headers=all_headers
    )


def ticket_for(user: Any) -> str:
    return ticket_issue(user_id=user.pk)


async def receive(comm: WebsocketCommunicator) -> dict[str, Any]:
    return await comm.receive_json_from(timeout=TIMEOUT)


async def send(
    comm: WebsocketCommunicator, type_: str, data: dict | None = None, **extra: Any
) -> None:
    await comm.send_to(text_data=json.dumps({"type": type_, "data": data or {}, **extra}))


async def request(
    comm: WebsocketCommunicator, type_: str, data: dict | None = None, *, id: str = "c1"
) -> dict[str, Any]:
    """Send a command and return its reply (ack or error), skipping events in between."""
    await send(comm, type_, data, id=id)
    while True:
        frame = await receive(comm)
        if frame["type"] in ("ack", "error") and frame.get("id") == id:
            return frame


async def close_code(comm: WebsocketCommunicator, within: float = TIMEOUT) -> int:
    """The code of the close the application sends next, skipping any frames before it."""
    while True:
        message = await comm.receive_output(timeout=within)
        if message["type"] == "websocket.close":
            return message.get("code", 1000)


async def drain(comm: WebsocketCommunicator, quiet: float = 0.3) -> list[dict[str, Any]]:
    """Every frame until none arrives for ``quiet`` seconds."""
    frames = []
    while not await comm.receive_nothing(timeout=quiet):
        frames.append(await receive(comm))
    return frames


async def next_of(comm: WebsocketCommunicator, type_: str) -> dict[str, Any]:
    """The next frame of this type, skipping any others."""
    while True:
        frame = await receive(comm)
        if frame["type"] == type_:
            return frame


async def none_of(comm: WebsocketCommunicator, type_: str, within: float = 0.5) -> bool:
    """True when no frame of this type arrives within ``within`` seconds."""
    return all(frame["type"] != type_ for frame in await drain(comm, quiet=within))
