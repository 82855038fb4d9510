"""A reply's ``on_reply`` runs in stream order: before the frames the server sent after it.

The peer is a scripted ``websockets`` server on 127.0.0.1 that answers a command with its ack
and, in the same write, an event committed after it, which is what a busy document does. An OT
client that took its ack when the awaiting task resumed would see that event first.
"""

from __future__ import annotations

import json

from websockets.asyncio.server import ServerConnection, serve

from config.client import RealtimeClient


async def scripted_peer(ws: ServerConnection) -> None:
    await ws.send(json.dumps({"type": "session.welcome", "data": {"heartbeat_interval": 60}}))
    command = json.loads(await ws.recv())
    ack = {"type": "ack", "id": command["id"], "data": {"version": 1}}
    later = {"type": "collab.op.applied", "data": {"version": 2}}
    ws.protocol.send_text(json.dumps(ack).encode())
    ws.protocol.send_text(json.dumps(later).encode())
    ws.send_data()  # both frames in one write
    await ws.wait_closed()


async def test_on_reply_runs_before_the_frames_after_the_reply():
    seen: list[str] = []
    async with serve(scripted_peer, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = RealtimeClient(f"ws://127.0.0.1:{port}/")
        client.on("collab.op.applied", lambda frame: seen.append(f"event {frame['data']}"))
        await client.start()
        await client.wait_open(timeout=5)
        data = await client.command(
            "collab.op.submit", {}, timeout=5, on_reply=lambda f: seen.append(f"ack {f['data']}")
        )
        await client.close()
    assert data == {"version": 1}
    assert seen == ["ack {'version': 1}", "event {'version': 2}"]
