"""Collaborative editing across two real Daphne workers (issue 4's acceptance).

Ten editors, split over both workers, type random inserts and deletes into one document with
the client state machine of collab/otclient.py; some drop their socket mid-edit, reconnect with
``since`` and resubmit what was in flight. Afterwards every replica equals the stored snapshot,
replaying the stored ops from "" gives it too, and no op was applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from dataclasses import dataclass, field

import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from collab import ot
from collab.models import Document, Operation, Role
from collab.otclient import Editor
from collab.services import document_create, member_set
from monitoring.loadtest.workers import Worker
from tests.system.client import ORIGIN, fetch_ticket
from tests.system.conftest import Account

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

EDITORS = 10
EDITS_EACH = 25
# These editors drop their socket once, mid-edit: "idle" ones once everything they sent is
# acked (their next edits are never sent: they go out again after the reconnect), "busy" ones
# right after sending an op (committed or not, its ack is lost).
RECONNECTING = {1: "idle", 4: "idle", 7: "busy"}


def doc_path(document_id: int) -> str:
    return f"/ws/collab/documents/{document_id}/"


@dataclass
class Session:
    """One editor's socket and the Editor state it feeds, frame by frame in arrival order."""

    worker: Worker
    account: Account
    document_id: int
    name: str
    editor: Editor | None = None
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None
    errors: list[dict] = field(default_factory=list)
    resubmitted: int = 0
    acked_by_replay: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self) -> None:
        ticket = await fetch_ticket(self.worker.http_url(), self.account.token)
        query = f"?ticket={ticket}"
        if self.editor is not None:
            self.editor.reconnected()
            query += f"&since={self.editor.version}"
        self.ready.clear()
        url = self.worker.ws_url(doc_path(self.document_id)) + query
        self.ws = await connect(url, origin=ORIGIN)  # type: ignore[arg-type]
        welcome = json.loads(await self.ws.recv())
        assert welcome["type"] == "session.welcome", welcome
        self.reader = asyncio.get_running_loop().create_task(self._read(self.ws))
        await asyncio.wait_for(self.ready.wait(), 10)
        if (again := self.editor.resubmit()) is not None:  # type: ignore[union-attr]
            self.resubmitted += 1
            await self.send(again)

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                await self._handle(json.loads(raw))

    async def _handle(self, frame: dict) -> None:
        kind, data = frame["type"], frame.get("data", {})
        follow = None
        if kind == "collab.document.snapshot":
            assert self.editor is None, "a resume must replay, not snapshot, in this test"
            self.editor = Editor(client_id=self.name, text=data["content"], version=data["version"])
            self.ready.set()
        elif kind == "collab.document.resumed":
            self.ready.set()
        elif kind == "collab.op.applied":
            self._count_replayed_own(data)
            follow = self.editor.remote(  # type: ignore[union-attr]
                data["op"], version=data["version"], client_id=data["client_id"], seq=data["seq"]
            )
        elif kind == "ack":
            follow = self.editor.ack(data["version"], seq=int(frame["id"][1:]))  # type: ignore[union-attr]
        elif kind == "error":
            self.errors.append(frame)
        if follow is not None:
            await self.send(follow)

    def _count_replayed_own(self, data: dict) -> None:
        editor = self.editor
        assert editor is not None
        own = (data["client_id"], data["seq"]) == (self.name, editor.inflight_seq)
        if editor.inflight is not None and own:
            self.acked_by_replay += 1  # committed before the drop; its ack was lost

    async def send(self, submit: dict) -> None:
        message = {"id": f"s{submit['seq']}", "type": "collab.op.submit", "data": submit}
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps(message))  # type: ignore[union-attr]

    async def edit(self, rng: random.Random) -> None:
        text = self.editor.text  # type: ignore[union-attr]
        position = rng.randint(0, len(text))
        if position < len(text) and rng.random() < 0.35:
            change: int | str = -rng.randint(1, min(3, len(text) - position))
        else:
            change = rng.choice(["a", "bc", "👋", "d e"])
        submit = self.editor.edit([position, change] if position else [change])  # type: ignore[union-attr]
        if submit is not None:
            await self.send(submit)

    async def drop(self) -> None:
        """The network goes away: no close handshake, whatever was in flight is lost."""
        self.ws.transport.abort()  # type: ignore[union-attr]
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await self.reader  # type: ignore[misc]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader


@pytest.fixture
def editors_and_document(make_account) -> tuple[list[Account], int]:
    accounts = [make_account() for _ in range(EDITORS)]
    owner = Document._meta.get_field("owner").related_model.objects.get(pk=accounts[0].user_id)
    document = document_create(owner=owner, title="Shared", content="start ")
    for account in accounts[1:]:
        member_set(user=owner, document_id=document.pk, member_id=account.user_id, role=Role.EDITOR)
    return accounts, document.pk


async def run_editor(session: Session, seed: int, drops: str | None) -> None:
    rng = random.Random(seed)
    await session.open()
    for step in range(EDITS_EACH):
        await session.edit(rng)
        if drops and step == EDITS_EACH // 2:
            if drops == "idle":
                async with asyncio.timeout(10):
                    # Polled: the Editor is plain state, with no event to wait on.
                    while not session.editor.settled:  # type: ignore[union-attr]  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
            await session.drop()
            for _ in range(2):  # typing on while offline: in flight or buffered, never sent
                await session.edit(rng)
            await asyncio.sleep(rng.uniform(0.05, 0.3))
            await session.open()
        await asyncio.sleep(rng.uniform(0.005, 0.04))


async def settle(sessions: list[Session], document_id: int, within: float = 30) -> int:
    """Wait until every editor has nothing in flight and has the document's last version."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        version = await sync_to_async(
            lambda: Document.objects.values_list("version", flat=True).get(pk=document_id)
        )()
        if all(s.editor.settled and s.editor.version == version for s in sessions):  # type: ignore[union-attr]
            return version
        await asyncio.sleep(0.2)
    states = [(s.name, s.editor.version, s.editor.settled) for s in sessions]  # type: ignore[union-attr]
    raise AssertionError(f"editors did not settle at version {version}: {states}")


async def test_ten_editors_on_two_workers_converge_with_drops_and_resubmits(
    workers: list[Worker], editors_and_document
):
    accounts, document_id = editors_and_document
    sessions = [
        Session(workers[i % 2], account, document_id, name=f"editor-{i}")
        for i, account in enumerate(accounts)
    ]
    try:
        await asyncio.gather(
            *(run_editor(s, seed=i, drops=RECONNECTING.get(i)) for i, s in enumerate(sessions))
        )
        version = await settle(sessions, document_id)
    finally:
        for session in sessions:
            await session.close()

    document = await sync_to_async(Document.objects.get)(pk=document_id)
    ops = await sync_to_async(
        lambda: list(Operation.objects.filter(document_id=document_id).order_by("version"))
    )()
    replayed = ""
    for operation in ops:
        replayed = ot.apply(replayed, operation.op)

    assert [s.errors for s in sessions] == [[]] * EDITORS
    assert [s.editor.text for s in sessions] == [document.content] * EDITORS  # type: ignore[union-attr]
    assert replayed == document.content
    assert [op.version for op in ops] == list(range(1, version + 1))
    # Nothing applied twice: every committed (client_id, seq) is unique and was acked once.
    keys = [(op.client_id, op.seq) for op in ops if op.client_id.startswith("editor-")]
    assert len(keys) == len(set(keys))
    acked = sorted((s.name, seq) for s in sessions for seq in s.editor.acked)  # type: ignore[union-attr]
    assert sorted(keys) == acked
    # Each drop left an op in flight: committed with its ack lost (the replay brings it back
    # as ours), or never received (it goes out again with its seq). Either way nothing is lost:
    # every editor settled, so every local edit was acked.
    resubmitted = sum(s.resubmitted for s in sessions)
    acked_by_replay = sum(s.acked_by_replay for s in sessions)
    assert resubmitted >= list(RECONNECTING.values()).count("idle")
    assert resubmitted + acked_by_replay >= len(RECONNECTING)
    print(
        f"{len(ops)} ops by {EDITORS} editors; after drops {resubmitted} resubmitted,"
        f" {acked_by_replay} acked by the replay; final length {len(document.content)}"
    )
