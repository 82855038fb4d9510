"""DocumentSession sends an op again after a retryable error (the server short of Redis or the
database, or a rate limit), with the same client_id and seq, and settles; a final error is
recorded and not retried. The peer is a scripted ``websockets`` server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.server import ServerConnection, serve

from collab.client import DocumentSession


def peer(answers: list[dict], received: list[dict]):
    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "session.welcome", "data": {"heartbeat_interval": 60}}))
        snapshot = {"content": "", "version": 0, "members": []}
        await ws.send(json.dumps({"type": "collab.document.snapshot", "data": snapshot}))
        async for raw in ws:
            command = json.loads(raw)
            received.append(command["data"])
            await ws.send(json.dumps({"id": command["id"], **answers.pop(0)}))

    return handler


async def session_against(answers: list[dict], received: list[dict]) -> DocumentSession:
    server = await serve(peer(answers, received), "127.0.0.1", 0).__aenter__()
    port = server.sockets[0].getsockname()[1]
    session = DocumentSession(f"ws://127.0.0.1:{port}/", client_id="tab")
    session.server = server  # type: ignore[attr-defined]
    await session.start(timeout=5)
    return session


async def test_a_retryable_error_sends_the_same_op_again():
    unavailable = {
        "code": "unavailable",
        "message": "Try again.",
        "retry": True,
        "retry_after": 0.05,
    }
    answers = [{"type": "error", "error": unavailable}, {"type": "ack", "data": {"version": 1}}]
    received: list[dict] = []
    session = await session_against(answers, received)

    session.edit(["hi"])
    await session.settled(timeout=5)
    await session.close()
    session.server.close()  # type: ignore[attr-defined]

    assert [(r["client_id"], r["seq"], r["op"]) for r in received] == [("tab", 1, ["hi"])] * 2
    assert (session.version, session.errors) == (1, [])


async def test_a_final_error_is_recorded_and_not_retried():
    invalid = {"code": "invalid", "message": "No.", "retry": False}
    received: list[dict] = []
    session = await session_against([{"type": "error", "error": invalid}], received)

    session.edit(["hi"])
    async with asyncio.timeout(5):
        while not session.errors:  # noqa: ASYNC110 - plain state
            await asyncio.sleep(0.01)
    await session.close()
    session.server.close()  # type: ignore[attr-defined]

    assert len(received) == 1
    assert session.errors[0].code == "invalid"
