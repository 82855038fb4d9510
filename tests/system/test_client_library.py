# ruff: noqa: ASYNC109, ASYNC110 - bounded polling waits on client state, by design.
"""The Python client (config/client) against two real Daphne workers: commands, events,
reconnecting with a fresh ticket, commands made offline sent once after it, resuming a stream
with ``since``, and stopping for good on 4404."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from collab.client import DocumentSession
from collab.models import Document, Role
from collab.services import document_create, member_set
from config.client import Breaker, CommandError, RealtimeClient
from monitoring.loadtest.workers import Worker, free_port
from tests.system.client import ORIGIN, fetch_ticket, http_request
from tests.system.conftest import Account

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

PRESENCE = "/ws/presence/"
WAIT = 10.0


@pytest.fixture
def admin(make_account) -> Account:
    return make_account(is_staff=True, is_superuser=True)


def ticket_source(worker: Worker, account: Account, calls: list[str]) -> Callable:
    async def ticket() -> str:
        calls.append(account.username)
        return await fetch_ticket(worker.http_url(), account.token)

    return ticket


async def eventually(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


@sync_to_async
def shared_document(owner: Account, editor: Account, title: str) -> Document:
    """A document ``owner`` owns and ``editor`` may edit, committed for the workers."""
    user = get_user_model().objects.get(pk=owner.user_id)
    document = document_create(owner=user, title=title)
    member_set(user=user, document_id=document.pk, member_id=editor.user_id, role=Role.EDITOR)
    return document


async def test_commands_are_acked_and_events_reach_their_handlers(worker_a, worker_b, alice, bob):
    tickets: list[str] = []
    listener = RealtimeClient(
        worker_a.ws_url(PRESENCE), ticket=ticket_source(worker_a, alice, tickets), origin=ORIGIN
    )
    speaker = RealtimeClient(
        worker_b.ws_url(PRESENCE), ticket=ticket_source(worker_b, bob, tickets), origin=ORIGIN
    )
    heard: list[dict] = []
    listener.on("presence.signal.received", heard.append)
    for client in (listener, speaker):
        await client.start()
        await client.wait_open()

    joined = await listener.command("presence.room.join", {"room": "lobby.client"})
    await speaker.command("presence.room.join", {"room": "lobby.client"})
    await speaker.command(
        "presence.signal.send", {"room": "lobby.client", "data": {"hello": "there"}}
    )
    with pytest.raises(CommandError) as refused:
        await speaker.command("presence.room.join", {"room": "no room"})
    await eventually(lambda: bool(heard))

    assert [m["user"]["id"] for m in joined["members"]] == [alice.user_id]
    assert heard[0]["data"]["data"] == {"hello": "there"}
    assert refused.value.code == "invalid"
    assert listener.welcome["user"]["id"] == alice.user_id
    for client in (listener, speaker):
        await client.close()
    assert listener.state == "closed"


async def test_after_a_drop_it_reconnects_with_a_new_ticket_and_sends_what_was_queued_once(
    worker_a, alice, admin
):
    tickets: list[str] = []
    states: list[str] = []
    client = RealtimeClient(
        worker_a.ws_url(PRESENCE), ticket=ticket_source(worker_a, alice, tickets), origin=ORIGIN
    )
    client.on_state(states.append)
    await client.start()
    await client.wait_open()

    # Staff disconnect every socket of alice (4401): the client comes back on its own.
    status, _, _ = await asyncio.to_thread(
        http_request,
        worker_a.http_url(f"/api/monitoring/users/{alice.user_id}/disconnect/"),
        method="POST",
        token=admin.token,
    )
    await eventually(lambda: client.state != "open")
    queued = asyncio.ensure_future(
        client.command("presence.room.join", {"room": "lobby.queued"}, timeout=WAIT)
    )
    joined = await queued

    assert status == 202
    assert [m["user"]["id"] for m in joined["members"]] == [alice.user_id]
    assert client.connections == 2 and len(tickets) == 2
    assert states[:4] == ["connecting", "open", "offline", "connecting"]
    assert client.state == "open"
    await client.close()


async def test_a_resumed_document_stream_arrives_once_and_in_order(worker_a, worker_b, alice, bob):
    document = await shared_document(alice, bob, "Resume")
    stream = f"collab.doc.{document.pk}"
    path = f"/ws/collab/documents/{document.pk}/"
    reader = RealtimeClient(
        worker_a.ws_url(path),
        ticket=ticket_source(worker_a, alice, []),
        origin=ORIGIN,
        resume=lambda last: {"since": last.get(stream)},
    )
    writer = RealtimeClient(worker_b.ws_url(path), ticket=ticket_source(worker_b, bob, []),
                            origin=ORIGIN)  # fmt: skip
    versions: list[int] = []
    reader.on("collab.op.applied", lambda frame: versions.append(frame["seq"]))
    for client in (reader, writer):
        await client.start()
        await client.wait_open()

    text_length = 0  # every op appends one "x": the length is the version

    async def write(n: int) -> None:
        nonlocal text_length
        for _ in range(n):
            op = ["x"] if text_length == 0 else [text_length, "x"]
            submit = {"version": text_length, "op": op, "client_id": "w", "seq": text_length + 1}
            text_length = (await writer.command("collab.op.submit", submit))["version"]

    await write(3)
    await eventually(lambda: versions == [1, 2, 3])
    await reader._ws.close()  # the reader drops; three more ops while it is away
    await eventually(lambda: reader.state != "open")
    await write(3)
    await reader.wait_open()
    await write(1)
    await eventually(lambda: len(versions) >= 7)
    await asyncio.sleep(0.3)

    assert versions == [1, 2, 3, 4, 5, 6, 7]  # the missed three replayed, nothing twice
    assert reader.last_seq[stream] == 7 and reader.connections == 2
    for client in (reader, writer):
        await client.close()


async def test_a_socket_to_an_object_that_is_not_yours_stops_for_good(worker_a, alice):
    client = RealtimeClient(
        worker_a.ws_url("/ws/collab/documents/999999/"),
        ticket=ticket_source(worker_a, alice, tickets := []),
        origin=ORIGIN,
    )
    states: list[str] = []
    client.on_state(states.append)
    await client.start()
    await eventually(lambda: client.state == "closed" and len(states) > 1)
    await asyncio.sleep(1.0)

    assert len(tickets) == 1  # no retry loop against a 4404
    assert client.close_code == 4404  # refused before any welcome, and it says why
    with pytest.raises(ConnectionError):
        await client.command("session.heartbeat", {})
    await client.close()


# --- issue 8's acceptance: a 10 s drop mid-typing on both clients ------------------------------
OFFLINE_SECONDS = 10.0
KEYSTROKES = 40


class Partition:
    """While on, a client can get no ticket, so it cannot reconnect (as with the network down)."""

    def __init__(self) -> None:
        self.until = 0.0

    def gate(self, ticket: Callable) -> Callable:
        async def gated() -> str:
            if asyncio.get_running_loop().time() < self.until:
                raise ConnectionError("partitioned")
            return await ticket()

        return gated


async def type_keys(session: DocumentSession, alphabet: str, rng: random.Random) -> None:
    for key in alphabet:
        position = rng.randint(0, len(session.text))
        session.edit([position, key] if position else [key])
        await asyncio.sleep(0.05)


async def test_a_ten_second_drop_mid_typing_loses_no_keystroke_and_all_agree(
    worker_a, worker_b, alice, bob
):
    document = await shared_document(alice, bob, "Typing")
    path = f"/ws/collab/documents/{document.pk}/"
    partition = Partition()
    sessions = [
        DocumentSession(
            worker.ws_url(path),
            client_id=name,
            ticket=partition.gate(ticket_source(worker, account, [])),
            origin=ORIGIN,
            backoff_cap=1.0,  # back within a second of the partition ending, not 30
            breaker=Breaker(threshold=1000),
        )
        for name, worker, account in (("a", worker_a, alice), ("b", worker_b, bob))
    ]
    for session in sessions:
        await session.start()
    # Distinct keys, so "every keystroke present once" is a count of each character.
    keys = ["".join(chr(0x4E00 + i) for i in range(KEYSTROKES)),
            "".join(chr(0x3040 + i) for i in range(KEYSTROKES))]  # fmt: skip
    typing = [
        asyncio.ensure_future(type_keys(s, k, random.Random(n)))
        for n, (s, k) in enumerate(zip(sessions, keys, strict=True))
    ]
    await asyncio.sleep(0.6)  # a dozen keys in: both drop, mid-typing, for ten seconds
    partition.until = asyncio.get_running_loop().time() + OFFLINE_SECONDS
    for session in sessions:
        await session.client.drop()
    await eventually(lambda: all(s.client.state != "open" for s in sessions))
    await asyncio.gather(*typing)  # the rest is typed offline
    offline_still = all(s.client.state != "open" for s in sessions)
    for session in sessions:
        await session.settled(timeout=60)
    await eventually(lambda: sessions[0].version == sessions[1].version)
    stored = await sync_to_async(lambda: type(document).objects.get(pk=document.pk))()

    assert offline_still
    assert sessions[0].text == sessions[1].text == stored.content
    assert sorted(stored.content) == sorted(keys[0] + keys[1])  # each keystroke exactly once
    assert all(s.client.connections == 2 for s in sessions)
    assert [s.errors for s in sessions] == [[], []]
    for session in sessions:
        await session.close()


# --- the same with the browser client (config/realtime/static/realtime/client.js) in Node -------
JS_TYPING = Path(__file__).parent / "js" / "typing.mjs"


async def test_the_browser_client_survives_a_ten_second_drop_mid_typing_too(
    worker_a, worker_b, alice, bob
):
    document = await shared_document(alice, bob, "Typing in JS")
    path = f"/ws/collab/documents/{document.pk}/"
    keys = [
        "".join(chr(0x4E00 + i) for i in range(KEYSTROKES)),
        "".join(chr(0x1F600 + i) for i in range(KEYSTROKES)),
    ]  # astral: two UTF-16 units
    sides = [
        {"name": name, "ws": worker.ws_url(path), "http": worker.http_url("").rstrip("/"),
         "token": account.token, "keys": key}
        for name, worker, account, key in (("a", worker_a, alice, keys[0]),
                                           ("b", worker_b, bob, keys[1]))
    ]  # fmt: skip
    params = {"sides": sides, "origin": ORIGIN, "offline_seconds": OFFLINE_SECONDS, "seed": 7}
    node = shutil.which("node")
    assert node, "node is needed (.ci/services installs it)"

    process = await asyncio.create_subprocess_exec(
        node, "--experimental-websocket", "--no-warnings", str(JS_TYPING),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(json.dumps(params).encode()), 90)
    stored = await sync_to_async(lambda: type(document).objects.get(pk=document.pk))()

    assert process.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["offlineStill"]
    assert result["texts"] == [stored.content, stored.content]
    assert result["versions"] == [stored.version, stored.version]
    assert sorted(stored.content) == sorted(keys[0] + keys[1])  # each keystroke exactly once
    # One reconnect each, once the partition ended. A socket closed before the drop (seen once
    # in CI, code unknown then) is not what this test is about, but its code is reported.
    assert result["connectionsAfterDrop"] == [1, 1], result["closes"]
    early = [close for side in result["closes"] for close in side if close["beforeDrop"]]
    if early:
        warnings.warn(f"sockets closed before the drop: {early}", stacklevel=1)
    assert result["errors"] == [[], []]


async def test_given_several_urls_it_moves_past_a_dead_one(worker_a, alice):
    dead = f"ws://127.0.0.1:{free_port()}{PRESENCE}"  # nothing listens there
    client = RealtimeClient(
        [dead, worker_a.ws_url(PRESENCE)],
        ticket=ticket_source(worker_a, alice, []),
        origin=ORIGIN,
        backoff_cap=0.2,
    )
    await client.start()
    await client.wait_open()

    assert client.url == worker_a.ws_url(PRESENCE)
    assert client.connections == 1
    await client.close()
