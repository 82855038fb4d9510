"""RELIABILITY.md P1-P3: duplicate ops, out-of-order client seqs, stale and future base versions,
through ``/ws/collab/documents/<id>/`` on the real ASGI app, Redis layer and PostgreSQL.

Our protocol (README "/ws/collab/documents/<id>/"): ``(client_id, seq)`` is an idempotency key,
not an ordering key. A resubmission is answered with the original version and applied once;
causal order comes from the base ``version``, so an op that depends on one not yet sent has a
base newer than the document and is refused with ``conflict``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from asgiref.sync import sync_to_async

from collab import ot
from collab.models import Document, Operation, Role
from collab.services import document_create, member_set, operation_submit
from tests.integration.ws import communicator, drain, receive, ticket_for

pytestmark = pytest.mark.django_db(transaction=True)

APPLIED = "collab.op.applied"


@pytest.fixture
def editor(ws_user, ws_other_user):
    """ws_other_user as an editor of a fresh document owned by ws_user."""

    def make(content: str = "hello") -> Document:
        document = document_create(owner=ws_user, title="Doc", content=content)
        member_set(
            user=ws_user, document_id=document.pk, member_id=ws_other_user.pk, role=Role.EDITOR
        )
        return document

    return make


@pytest.fixture
async def joined(communicators):
    async def join_(user, document_id: int, since: int | None = None):
        query = f"?ticket={ticket_for(user)}" + ("" if since is None else f"&since={since}")
        comm = communicator(f"/ws/collab/documents/{document_id}/{query}", ticket=None)
        communicators.append(comm)
        assert (await comm.connect(timeout=5))[0]
        assert (await receive(comm))["type"] == "session.welcome"
        return comm, await receive(comm)

    return join_


def op_frame(version: int, op: list, client_id: str, seq: int, frame_id: str) -> str:
    data = {"version": version, "op": op, "client_id": client_id, "seq": seq}
    return json.dumps({"id": frame_id, "type": "collab.op.submit", "data": data})


async def replies_to(comm, frames: list[str]) -> dict[str, dict]:
    """Send every frame at once (pipelined, as a reconnecting client does), then collect the
    reply to each by id."""
    for frame in frames:
        await comm.send_to(text_data=frame)
    wanted = {json.loads(f)["id"] for f in frames}
    replies: dict[str, dict] = {}
    while wanted - replies.keys():
        frame = await receive(comm)
        if frame["type"] in ("ack", "error") and frame["id"] in wanted:
            replies[frame["id"]] = frame
    return replies


async def submit(comm, version: int, op: list, client_id: str, seq: int) -> dict:
    frame = op_frame(version, op, client_id, seq, f"{client_id}-{seq}-{version}")
    return next(iter((await replies_to(comm, [frame])).values()))


@sync_to_async
def stored(document_id: int) -> tuple[str, int, list[tuple[str, int]], str]:
    """(content, version, [(client_id, seq)...], content replayed from the op log)."""
    document = Document.objects.get(pk=document_id)
    ops = list(Operation.objects.filter(document_id=document_id).order_by("version"))
    assert [op.version for op in ops] == list(range(1, document.version + 1))
    replayed = ""
    for operation in ops:
        replayed = ot.apply(replayed, operation.op)
    keys = [(op.client_id, op.seq) for op in ops]
    return document.content, document.version, keys, replayed


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def applied_seqs(frames: list[dict]) -> list[int]:
    return [f["seq"] for f in frames if f["type"] == APPLIED]


# --- P1 duplicate op ------------------------------------------------------------------------

# (base, op, seq, copies): the original and 1, 2 or 5 copies of it.
EDITS = [(1, [5, " world"], 1, 1), (2, [11, "!"], 2, 2), (3, [">"], 3, 5)]


async def test_an_op_resent_one_to_five_times_is_applied_once_and_each_copy_gets_the_original_ack(
    ws_user, ws_other_user, editor, joined
):
    once, duplicated = await sync_to_async(editor)(), await sync_to_async(editor)()
    single, _ = await joined(ws_other_user, once.pk)
    for base, op, seq, _ in EDITS:
        assert (await submit(single, base, op, "tab", seq))["type"] == "ack"
    writer, _ = await joined(ws_other_user, duplicated.pk)
    watcher, _ = await joined(ws_user, duplicated.pk)

    acks = {}
    for base, op, seq, copies in EDITS:
        # The original and its copies pipelined: the copies arrive while the first commits.
        frames = [op_frame(base, op, "tab", seq, f"s{seq}-{n}") for n in range(1 + copies)]
        acks.update(await replies_to(writer, frames))

    assert len(acks) == 3 + 1 + 2 + 5
    for frame_id, reply in acks.items():
        seq = int(frame_id[1 : frame_id.index("-")])
        assert (reply["type"], reply["data"]) == ("ack", {"version": seq + 1}), frame_id
    content, version, keys, replayed = await stored(duplicated.pk)
    assert (version, keys[1:]) == (4, [("tab", 1), ("tab", 2), ("tab", 3)])
    assert digest(content) == digest(replayed) == digest((await stored(once.pk))[0])
    assert content == ">hello world!"
    assert applied_seqs(await drain(watcher)) == [2, 3, 4]  # each op reached the others once


async def test_a_resubmission_after_others_ops_and_a_reconnect_is_answered_with_its_version(
    ws_user, ws_other_user, editor, joined
):
    document = await sync_to_async(editor)()
    first, _ = await joined(ws_other_user, document.pk)
    other, _ = await joined(ws_user, document.pk)
    assert (await submit(first, 1, [5, "!"], "tab", 1))["data"] == {"version": 2}
    assert (await submit(other, 2, ["A"], "owner", 1))["data"] == {"version": 3}
    await first.disconnect()

    # The client never saw its ack: after the reconnect it sends the op again at its old base,
    # and a different body under the same key is still the same op (the key decides).
    again, snapshot = await joined(ws_other_user, document.pk)
    replies = [
        await submit(again, 1, [5, "!"], "tab", 1),
        await submit(again, 1, [5, "?"], "tab", 1),
    ]

    assert [r["data"] for r in replies] == [{"version": 2}, {"version": 2}]
    assert snapshot["data"]["content"] == "Ahello!"
    content, version, keys, replayed = await stored(document.pk)
    assert (content, version, replayed) == ("Ahello!", 3, "Ahello!")
    assert keys.count(("tab", 1)) == 1
    assert applied_seqs(await drain(other)) == []  # the duplicates broadcast nothing


async def test_one_op_sent_on_two_sockets_at_once_is_applied_once(ws_other_user, editor, joined):
    document = await sync_to_async(editor)()
    tabs = [(await joined(ws_other_user, document.pk))[0] for _ in range(3)]
    frame = op_frame(1, [5, "!"], "tab", 7, "dup")

    replies = await asyncio.gather(*(replies_to(tab, [frame]) for tab in tabs))

    assert [r["dup"]["data"] for r in replies] == [{"version": 2}] * 3
    content, version, keys, _ = await stored(document.pk)
    assert (content, version, keys.count(("tab", 7))) == ("hello!", 2, 1)


# --- P2 out-of-order seq --------------------------------------------------------------------


async def test_an_op_sent_before_the_one_it_depends_on_is_refused_and_applied_after_it(
    ws_other_user, editor, joined
):
    in_order, out_of_order = await sync_to_async(editor)(), await sync_to_async(editor)()
    # The client typed "!" (seq 4, base 1) and then "?" after it (seq 5, base 2).
    fourth, fifth = (1, [5, "!"], 4), (2, [6, "?"], 5)
    comm, _ = await joined(ws_other_user, in_order.pk)
    for base, op, seq in (fourth, fifth):
        assert (await submit(comm, base, op, "tab", seq))["type"] == "ack"
    comm, _ = await joined(ws_other_user, out_of_order.pk)

    early = await submit(comm, *fifth[:2], "tab", fifth[2])
    unchanged = await stored(out_of_order.pk)
    then = [await submit(comm, base, op, "tab", seq) for base, op, seq in (fourth, fifth)]

    assert early["type"] == "error"
    assert (early["error"]["code"], early["error"]["retry"]) == ("conflict", False)
    assert unchanged[:2] == ("hello", 1)  # never applied before seq 4
    assert [r["data"] for r in then] == [{"version": 2}, {"version": 3}]
    content, _, keys, replayed = await stored(out_of_order.pk)
    assert content == replayed == (await stored(in_order.pk))[0] == "hello!?"
    assert keys[1:] == [("tab", 4), ("tab", 5)]


async def test_a_lower_seq_after_a_higher_one_is_a_new_op_not_a_duplicate(
    ws_other_user, editor, joined
):
    # Two ops made at one base (a client that does not keep one op in flight): seq is a key,
    # not a high-water mark, so 4 after 5 is applied, transformed through 5.
    document = await sync_to_async(editor)()
    comm, _ = await joined(ws_other_user, document.pk)

    fifth = await submit(comm, 1, [5, "?"], "tab", 5)
    fourth = await submit(comm, 1, [5, "!"], "tab", 4)

    assert (fifth["data"], fourth["data"]) == ({"version": 2}, {"version": 3})
    expected = ot.apply(ot.apply("hello", [5, "?"]), ot.transform([5, "!"], [5, "?"], "left"))
    content, _, keys, replayed = await stored(document.pk)
    assert content == replayed == expected
    assert keys[1:] == [("tab", 5), ("tab", 4)]


# --- P3 stale / future base version -------------------------------------------------------


async def test_an_op_fifty_versions_behind_is_transformed_and_every_replica_converges(
    ws_user, ws_other_user, editor, joined
):
    document = await sync_to_async(editor)(content="base text")
    for n in range(50):
        await sync_to_async(operation_submit)(
            document_id=document.pk,
            base_version=1 + n,
            op=[n % 9, str(n % 10)] if n % 9 else [str(n % 10)],
            client_id="other",
            seq=n + 1,
            user=ws_user,
        )
    late, first = await joined(ws_other_user, document.pk, since=1)
    replay = [f for f in [first, *await drain(late)] if f["type"] == APPLIED]
    stale_op = [4, "<late>", -1]

    reply = await submit(late, 1, stale_op, "late", 1)

    assert [f["seq"] for f in replay] == list(range(2, 52))
    assert reply["data"] == {"version": 52}
    content, _, _, replayed = await stored(document.pk)
    # The late client's replica: its own op first, then the 50 others transformed past it.
    replica = ot.apply("base text", stale_op)
    for frame in replay:
        replica = ot.apply(replica, ot.transform(frame["data"]["op"], stale_op, "right"))
        stale_op = ot.transform(stale_op, frame["data"]["op"], "left")
    assert content == replayed == replica
    assert "<late>" in content


async def test_a_base_older_than_the_kept_log_is_refused_and_since_there_gets_a_snapshot(
    ws_other_user, editor, joined
):
    document = await sync_to_async(editor)()
    for n in range(12):
        await sync_to_async(operation_submit)(
            document_id=document.pk,
            base_version=1 + n,
            op=[5 + n, "."],
            client_id="x",
            seq=n + 1,
            user=ws_other_user,
        )
    # No job trims the log today; an operator may (the services check for it).
    await sync_to_async(Operation.objects.filter(document=document, version__lte=10).delete)()
    comm, snapshot = await joined(ws_other_user, document.pk, since=5)
    before = await sync_to_async(Document.objects.values("content", "version").get)(pk=document.pk)

    reply = await submit(comm, 5, [5, "!"], "late", 1)

    assert snapshot["type"] == "collab.document.snapshot"  # the resync: the text at v13
    assert (snapshot["data"]["version"], snapshot["data"]["content"]) == (13, "hello" + "." * 12)
    assert reply["type"] == "error"
    assert reply["error"]["code"] == "conflict"
    assert "kept history" in reply["error"]["message"]
    after = await sync_to_async(Document.objects.values("content", "version").get)(pk=document.pk)
    assert after == before
    assert not await sync_to_async(Operation.objects.filter(client_id="late").exists)()


async def test_a_base_newer_than_the_document_is_refused_and_changes_nothing(
    ws_user, ws_other_user, editor, joined
):
    document = await sync_to_async(editor)()
    comm, _ = await joined(ws_other_user, document.pk)
    watcher, _ = await joined(ws_user, document.pk)

    refused = [await submit(comm, 1 + ahead, [5, "!"], "tab", 1) for ahead in (1, 50, 2**53 - 2)]
    after = await submit(comm, 1, [5, "!"], "tab", 1)  # the same key, now at the right base

    for reply in refused:
        assert reply["type"] == "error", reply
        assert (reply["error"]["code"], reply["error"]["retry"]) == ("conflict", False)
    assert after["data"] == {"version": 2}  # the refusal did not burn the key
    content, version, _, replayed = await stored(document.pk)
    assert (content, version, replayed) == ("hello!", 2, "hello!")
    assert applied_seqs(await drain(watcher)) == [2]
