"""Collaborative editing across two real Daphne workers (issue 4's acceptance).

Ten editors, split over both workers, type random inserts and deletes into one document through
the project's Python client (``collab.client.DocumentSession``: ``config.client.RealtimeClient``
driving the state machine of collab/otclient.py); some drop their socket mid-edit, keep typing
offline, and the client reconnects with ``since`` and sends again what was in flight or queued.
Afterwards every replica equals the stored snapshot, replaying the stored ops from "" gives it
too, and no op was applied twice.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from asgiref.sync import sync_to_async

from collab import ot
from collab.client import DocumentSession
from collab.models import Document, Operation, Role
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
# acked (their next edits wait offline and go out after the reconnect), "busy" ones right after
# an edit (its op sent or about to be, committed or not: its ack is lost).
RECONNECTING = {1: "idle", 4: "idle", 7: "busy"}


def editor_session(
    worker: Worker, account: Account, document_id: int, name: str
) -> DocumentSession:
    async def ticket() -> str:
        return await fetch_ticket(worker.http_url(), account.token)

    url = worker.ws_url(f"/ws/collab/documents/{document_id}/")
    # A short backoff: the test waits for the reconnect, a real client would wait longer.
    return DocumentSession(url, client_id=name, ticket=ticket, origin=ORIGIN, backoff_cap=0.3)


def random_edit(session: DocumentSession, rng: random.Random) -> None:
    text = session.text
    position = rng.randint(0, len(text))
    if position < len(text) and rng.random() < 0.35:
        change: int | str = -rng.randint(1, min(3, len(text) - position))
    else:
        change = rng.choice(["a", "bc", "👋", "d e"])
    session.edit([position, change] if position else [change])


@pytest.fixture
def editors_and_document(make_account) -> tuple[list[Account], int]:
    accounts = [make_account() for _ in range(EDITORS)]
    owner = Document._meta.get_field("owner").related_model.objects.get(pk=accounts[0].user_id)
    document = document_create(owner=owner, title="Shared", content="start ")
    for account in accounts[1:]:
        member_set(user=owner, document_id=document.pk, member_id=account.user_id, role=Role.EDITOR)
    return accounts, document.pk


async def run_editor(session: DocumentSession, seed: int, drops: str | None) -> None:
    rng = random.Random(seed)
    await session.start()
    for step in range(EDITS_EACH):
        random_edit(session, rng)
        if drops and step == EDITS_EACH // 2:
            if drops == "idle":
                await session.settled(timeout=10)
            else:
                await asyncio.sleep(0)  # the op's command goes out (or is queued): then the drop
            await session.client.drop()
            for _ in range(2):  # typing on while offline: applied here, sent after the reconnect
                random_edit(session, rng)
            await session.client.wait_open(timeout=10)
        await asyncio.sleep(rng.uniform(0.005, 0.04))


async def settle(sessions: list[DocumentSession], document_id: int, within: float = 30) -> int:
    """Wait until every editor has nothing in flight and has the document's last version."""
    await asyncio.gather(*(s.settled(timeout=within) for s in sessions))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        version = await sync_to_async(
            lambda: Document.objects.values_list("version", flat=True).get(pk=document_id)
        )()
        if all(s.version == version for s in sessions):
            return version
        await asyncio.sleep(0.2)
    states = [(s.client_id, s.version, s.editor.settled) for s in sessions]  # type: ignore[union-attr]
    raise AssertionError(f"editors did not settle at version {version}: {states}")


async def test_ten_editors_on_two_workers_converge_with_drops_and_resubmits(
    workers: list[Worker], editors_and_document
):
    accounts, document_id = editors_and_document
    sessions = [
        editor_session(workers[i % 2], account, document_id, name=f"editor-{i}")
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
    assert [s.text for s in sessions] == [document.content] * EDITORS
    assert replayed == document.content
    assert [op.version for op in ops] == list(range(1, version + 1))
    # Nothing applied twice: every committed (client_id, seq) is unique and was acked once.
    keys = [(op.client_id, op.seq) for op in ops if op.client_id.startswith("editor-")]
    assert len(keys) == len(set(keys))
    acked = sorted((s.client_id, seq) for s in sessions for seq in s.editor.acked)  # type: ignore[union-attr]
    assert sorted(keys) == acked
    # Each drop left an op in flight or queued: it went out again when the socket reopened and
    # was applied once (a committed one is acked by the replay or answered as a duplicate).
    for index, session in enumerate(sessions):
        reconnects = 1 if index in RECONNECTING else 0
        assert session.client.connections == 1 + reconnects, session.client_id
        assert session.client.sent_on_open >= reconnects, session.client_id
    print(
        f"{len(ops)} ops by {EDITORS} editors; after drops"
        f" {sum(s.client.sent_on_open for s in sessions)} commands went out again on reconnect;"
        f" final length {len(document.content)}"
    )
