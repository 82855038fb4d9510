"""``/ws/collab/documents/<id>/`` through the real ASGI app, Redis layer and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction

from collab.models import Document, Operation, Role
from collab.selectors import op_applied_data
from collab.services import document_create, document_group, member_set, operation_submit
from tests.integration.ws import (
    close_code,
    communicator,
    drain,
    next_of,
    receive,
    request,
    send,
    ticket_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

APPLIED = "collab.op.applied"


def path(document_id: int, since: int | None = None) -> str:
    return f"/ws/collab/documents/{document_id}/" + ("" if since is None else f"?since={since}")


@pytest.fixture
def document(ws_user):
    return document_create(owner=ws_user, title="Notes", content="hello")


@pytest.fixture
async def joined(communicators):
    async def join_(user, document_id: int, since: int | None = None):
        query = f"?ticket={ticket_for(user)}" + ("" if since is None else f"&since={since}")
        comm = communicator(path(document_id) + query, ticket=None)
        communicators.append(comm)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        assert (await receive(comm))["type"] == "session.welcome"
        return comm, await receive(comm)

    return join_


async def share(document, owner, member, role: str) -> None:
    await sync_to_async(member_set)(
        user=owner, document_id=document.pk, member_id=member.pk, role=role
    )


async def submit(comm, version: int, op: list, *, client_id: str = "c1", seq: int = 1) -> dict:
    data = {"version": version, "op": op, "client_id": client_id, "seq": seq}
    return await request(comm, "collab.op.submit", data, id=f"s{seq}")


async def test_joining_sends_the_snapshot_its_version_and_the_members(ws_user, document, joined):
    _, snapshot = await joined(ws_user, document.pk)

    assert snapshot["type"] == "collab.document.snapshot"
    assert (snapshot["data"]["content"], snapshot["data"]["version"]) == ("hello", 1)
    assert [m["user"]["id"] for m in snapshot["data"]["members"]] == [ws_user.pk]


async def test_strangers_and_missing_documents_are_closed_with_4404(
    ws_user, ws_other_user, document
):
    for user, document_id in ((ws_other_user, document.pk), (ws_user, 999999), (ws_user, 10**25)):
        comm = communicator(path(document_id), ticket=ticket_for(user))
        await comm.connect(timeout=5)
        assert await close_code(comm) == 4404
        await comm.disconnect()


async def test_an_op_is_acked_with_its_version_and_reaches_the_others_once(
    ws_user, ws_other_user, document, joined
):
    await share(document, ws_user, ws_other_user, Role.EDITOR)
    alice, _ = await joined(ws_user, document.pk)
    bob, _ = await joined(ws_other_user, document.pk)

    reply = await submit(alice, 1, [5, "!"], client_id="alice", seq=1)
    applied = await next_of(bob, APPLIED)

    assert reply == {"type": "ack", "id": "s1", "data": {"version": 2}}
    assert applied["stream"] == document_group(document.pk)
    assert applied["seq"] == 2
    assert applied["data"] == {
        "op": [5, "!"],
        "version": 2,
        "client_id": "alice",
        "seq": 1,
        "author": {"id": ws_user.pk, "username": ws_user.username},
    }
    assert all(f["type"] != APPLIED for f in await drain(alice))  # the ack is its own op
    assert all(f["type"] != APPLIED for f in await drain(bob))  # once


async def test_a_resubmitted_op_is_acked_with_the_original_version(ws_user, document, joined):
    comm, _ = await joined(ws_user, document.pk)
    first = await submit(comm, 1, ["x"], client_id="tab", seq=4)

    again = await submit(comm, 1, ["x"], client_id="tab", seq=4)

    assert first["data"] == again["data"] == {"version": 2}
    assert await sync_to_async(Operation.objects.filter(document=document).count)() == 2


async def test_a_viewer_may_watch_but_not_submit(ws_user, ws_other_user, document, joined):
    await share(document, ws_user, ws_other_user, Role.VIEWER)
    viewer, snapshot = await joined(ws_other_user, document.pk)

    reply = await submit(viewer, 1, ["x"])

    assert snapshot["data"]["content"] == "hello"
    assert reply["error"]["code"] == "forbidden"


async def test_resuming_with_since_replays_the_missed_ops_in_order(ws_user, document, joined):
    for seq, op in enumerate([[5, "1"], [6, "2"], [7, "3"]], start=1):
        await sync_to_async(operation_submit)(
            document_id=document.pk, base_version=seq, op=op, client_id="x", seq=seq, user=ws_user
        )

    comm, first = await joined(ws_user, document.pk, since=2)
    second = await receive(comm)
    resumed = await receive(comm)

    assert [(f["type"], f["seq"]) for f in (first, second)] == [(APPLIED, 3), (APPLIED, 4)]
    assert resumed["type"] == "collab.document.resumed"
    assert resumed["data"]["version"] == 4


@pytest.mark.parametrize("since", ["abc", "-1", "99", ""])
async def test_an_unusable_since_gets_a_fresh_snapshot(ws_user, document, communicators, since):
    query = f"?since={since}&ticket={ticket_for(ws_user)}"
    comm = communicator(path(document.pk) + query, ticket=None)
    communicators.append(comm)
    await comm.connect(timeout=5)
    await receive(comm)  # welcome

    assert (await receive(comm))["type"] == "collab.document.snapshot"


async def test_a_lost_broadcast_is_filled_from_the_database_in_order(
    ws_user, ws_other_user, document, joined
):
    await share(document, ws_user, ws_other_user, Role.EDITOR)
    alice, _ = await joined(ws_user, document.pk)
    bob, _ = await joined(ws_other_user, document.pk)

    @sync_to_async
    def commit_without_broadcast() -> None:
        # As if the channel layer dropped the broadcast of version 2.
        with transaction.atomic():
            document_row = Document.objects.select_for_update().get(pk=document.pk)
            document_row.content, document_row.version = "hello?", 2
            document_row.save()
            Operation.objects.create(
                document=document_row, version=2, op=[5, "?"], author=ws_user, client_id="z", seq=1
            )

    await commit_without_broadcast()
    await submit(alice, 2, [6, "!"], client_id="alice", seq=1)

    frames = [f for f in await drain(bob) if f["type"] == APPLIED]
    assert [(f["seq"], f["data"]["op"]) for f in frames] == [(2, [5, "?"]), (3, [6, "!"])]


async def test_an_ack_comes_after_every_earlier_op(ws_user, ws_other_user, document, joined):
    await share(document, ws_user, ws_other_user, Role.EDITOR)
    alice, _ = await joined(ws_user, document.pk)
    await sync_to_async(operation_submit)(
        document_id=document.pk, base_version=1, op=["B"], client_id="b", seq=1, user=ws_other_user
    )

    await send(
        alice,
        "collab.op.submit",
        {"version": 1, "op": [5, "A"], "client_id": "a", "seq": 1},
        id="a1",
    )
    frames = []
    while not frames or frames[-1]["type"] != "ack":
        frames.append(await receive(alice))

    assert [(f["type"], f.get("seq")) for f in frames if f["type"] in (APPLIED, "ack")] == [
        (APPLIED, 2),
        ("ack", None),
    ]
    assert frames[-1]["data"] == {"version": 3}


async def test_cursors_reach_the_others_moved_through_newer_ops(
    ws_user, ws_other_user, document, joined
):
    await share(document, ws_user, ws_other_user, Role.EDITOR)
    alice, _ = await joined(ws_user, document.pk)
    bob, _ = await joined(ws_other_user, document.pk)
    await submit(bob, 1, ["12"], client_id="b", seq=1)  # alice's cursor at v1 moves by 2
    await next_of(alice, APPLIED)

    reply = await request(
        alice, "collab.cursor.set", {"version": 1, "cursor": 3, "selection": [1, 4]}
    )
    moved = await next_of(bob, "collab.cursor.moved")

    assert reply["data"] == {"version": 2, "cursor": 5}
    assert moved["data"] == {
        "user": {"id": ws_user.pk, "username": ws_user.username},
        "client_id": None,
        "version": 2,
        "cursor": 5,
        "selection": [3, 6],
    }


@pytest.mark.parametrize(
    "data",
    [
        {"version": 1},
        {"version": 1, "cursor": -1},
        {"version": 1, "cursor": 1, "selection": [1]},
        {"version": 1, "cursor": 1, "selection": "1,2"},
        {"version": 9, "cursor": 1},
        {"version": 1, "cursor": 1, "client_id": 5},
    ],
)
async def test_bad_cursors_are_invalid(ws_user, document, joined, data):
    comm, _ = await joined(ws_user, document.pk)

    reply = await request(comm, "collab.cursor.set", data)

    assert reply["error"]["code"] == "invalid"


def test_op_applied_data_names_no_connection(ws_user, document):
    operation = Operation.objects.get(document=document, version=1)

    assert set(op_applied_data(operation)) == {"op", "version", "client_id", "seq", "author"}


async def test_editors_see_others_arrive_start_editing_and_leave(
    ws_user, ws_other_user, document, joined
):
    await share(document, ws_user, ws_other_user, "editor")
    first, _ = await joined(ws_user, document.pk)
    await drain(first)
    second, _ = await joined(ws_other_user, document.pk)

    arrival = await next_of(first, "presence.member.joined")
    await submit(second, 1, [5, "!"], client_id="c2")
    editing = await next_of(first, "presence.member.updated")
    await second.disconnect()
    departure = await next_of(first, "presence.member.left")

    assert arrival["data"]["member"]["user"]["id"] == ws_other_user.pk
    assert arrival["data"]["room"] == f"document.{document.pk}"
    assert editing["data"]["member"]["state"] == "editing"
    assert departure["data"]["user"]["id"] == ws_other_user.pk


async def test_a_locked_document_holds_no_op_on_another_document(ws_user, joined):
    """RELIABILITY F7 b: one document's row locked by another session; an op on it waits and is
    refused `unavailable` after lock_timeout, and meanwhile an op on a second document of the
    same process is acked (ORM calls run on a pool of threads: config/realtime/orm.py)."""
    locked, other = await sync_to_async(
        lambda: [document_create(owner=ws_user, title=t, content="x") for t in ("A", "B")]
    )()
    on_locked, _ = await joined(ws_user, locked.pk)
    on_other, _ = await joined(ws_user, other.pk)
    holding, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        with transaction.atomic():
            Document.objects.select_for_update().get(pk=locked.pk)
            holding.set()
            release.wait(30)
        connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert await asyncio.to_thread(holding.wait, 10)
        waiting = asyncio.ensure_future(submit(on_locked, 1, [1, "a"], client_id="L"))
        await asyncio.sleep(0.2)  # the locked op is on an ORM thread, waiting for the row

        reply = await submit(on_other, 1, [1, "b"], client_id="O")

        assert reply["type"] == "ack" and reply["data"] == {"version": 2}
        assert not waiting.done()  # still waiting for the lock: the other op did not queue
        refused = await asyncio.wait_for(waiting, timeout=15)
        assert refused["type"] == "error" and refused["error"]["code"] == "unavailable"
    finally:
        release.set()
        await asyncio.to_thread(holder.join, 10)
