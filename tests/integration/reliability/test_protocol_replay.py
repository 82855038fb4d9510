"""RELIABILITY.md P4: replayed reaction, form-builder and submission frames, through the real
ASGI app, Redis layer and PostgreSQL. (Comments: tests/integration/comments/test_consumer.py and
tests/system/test_comments.py; across two workers: tests/system/test_protocol_workers.py.)

Each frame is replayed 10 times on one socket (pipelined, as a client resending its queue does)
and once more after a reconnect: one row, one event, and every member sees that event once.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from collab.services import document_create, member_set
from comments.models import Reaction, ThreadEvent
from comments.services import thread_create
from forms_live.models import FormChange, FormField, Submission
from forms_live.services import field_add, form_change, form_create
from forms_live.services import member_set as form_member_set
from monitoring.models import SystemEvent
from tests.integration.ws import communicator, drain, receive, ticket_for

pytestmark = pytest.mark.django_db(transaction=True)

REPLAYS = 10


@pytest.fixture
async def joined(communicators):
    async def join_(user, path: str, query: str = ""):
        comm = communicator(f"{path}?ticket={ticket_for(user)}{query}", ticket=None)
        communicators.append(comm)
        assert (await comm.connect(timeout=5))[0]
        assert (await receive(comm))["type"] == "session.welcome"
        return comm, await receive(comm)

    return join_


async def replayed(comm, type_: str, data: dict, times: int = REPLAYS) -> list[dict]:
    """The same frame ``times`` times at once (ids differ only so replies can be told apart);
    the replies in order."""
    for n in range(times):
        await comm.send_to(text_data=json.dumps({"id": f"r{n}", "type": type_, "data": data}))
    replies: dict[str, dict] = {}
    while len(replies) < times:
        frame = await receive(comm)
        if frame["type"] in ("ack", "error"):
            replies[frame["id"]] = frame
    return [replies[f"r{n}"] for n in range(times)]


def of_type(frames: list[dict], type_: str) -> list[dict]:
    return [f for f in frames if f["type"] == type_]


async def test_a_reaction_replayed_ten_times_and_after_a_reconnect_is_one_row_and_one_event(
    ws_user, ws_other_user, joined
):
    @sync_to_async
    def setting() -> tuple[int, int]:
        document = document_create(owner=ws_user, title="Spec", content="hello")
        member_set(user=ws_user, document_id=document.pk, member_id=ws_other_user.pk, role="viewer")
        created = thread_create(
            user=ws_user,
            target_kind="document",
            target_id=document.pk,
            body="Hi",
            client_msg_id="t",
        )
        return created.thread["id"], created.comment["id"]

    thread_id, comment_id = await setting()
    path = f"/ws/comments/threads/{thread_id}/"
    reactor, _ = await joined(ws_other_user, path)
    author, _ = await joined(ws_user, path)
    frame = {"comment_id": comment_id, "kind": "love"}

    replies = await replayed(reactor, "comments.reaction.add", frame)
    await reactor.disconnect()
    again, _ = await joined(ws_other_user, path)
    replies += await replayed(again, "comments.reaction.add", frame, times=1)

    assert {r["type"] for r in replies} == {"ack"}
    # Reactions carry no client_msg_id: a reaction already there is a no-op, acked with seq null.
    assert [r["data"]["seq"] for r in replies] == [3] + [None] * REPLAYS
    assert {json.dumps(r["data"]["reactions"]) for r in replies} == {
        json.dumps([{"kind": "love", "count": 1, "users": [ws_other_user.pk]}])
    }
    assert await sync_to_async(Reaction.objects.filter(comment_id=comment_id).count)() == 1
    events = await sync_to_async(ThreadEvent.objects.filter(thread_id=thread_id).count)()
    assert events == 3  # created thread, first comment, one reaction
    added = of_type(await drain(author), "comments.reaction.added")
    assert [(f["seq"], f["data"]["kind"]) for f in added] == [(3, "love")]
    assert of_type(await drain(again), "comments.reaction.added") == []


async def test_a_builder_change_replayed_ten_times_and_after_a_reconnect_is_one_revision(
    ws_user, ws_other_user, joined
):
    @sync_to_async
    def setting() -> int:
        form = form_create(owner=ws_user, title="Sign-up", conflict_policy="lww")
        form_member_set(user=ws_user, form_id=form.pk, member_id=ws_other_user.pk, role="editor")
        return form.pk

    form_id = await setting()
    path = f"/ws/forms/{form_id}/edit/"
    builder, _ = await joined(ws_other_user, path)
    owner, _ = await joined(ws_user, path)
    add = {"base_revision": 0, "client_msg_id": "add-1", "key": "email", "type": "email"}
    add["label"] = "E-mail"
    change = {"base_revision": 1, "client_msg_id": "chg-1", "key": "email", "prop": "label"}
    change["value"] = "Work e-mail"

    replies = await replayed(builder, "forms.field.add", add)
    replies += await replayed(builder, "forms.field.change", change)
    await builder.disconnect()
    again, _ = await joined(ws_other_user, path)
    replies += await replayed(again, "forms.field.add", add, times=1)
    replies += await replayed(again, "forms.field.change", change, times=1)

    assert {r["type"] for r in replies} == {"ack"}, replies
    adds, changes = [*replies[:REPLAYS], replies[-2]], [*replies[REPLAYS:-2], replies[-1]]
    assert {(r["data"]["revision"], r["data"]["outcome"]) for r in adds} == {(1, "applied")}
    assert {(r["data"]["revision"], r["data"]["outcome"]) for r in changes} == {(2, "applied")}
    assert [r["data"]["duplicate"] for r in adds] == [False] + [True] * REPLAYS
    assert [r["data"]["duplicate"] for r in changes] == [False] + [True] * REPLAYS
    revisions = await sync_to_async(
        lambda: list(FormChange.objects.filter(form_id=form_id).values_list("revision", flat=True))
    )()
    assert sorted(revisions) == [1, 2]
    field = await sync_to_async(FormField.objects.get)(form_id=form_id)
    assert (field.key, field.label) == ("email", "Work e-mail")
    frames = await drain(owner)
    assert [f["seq"] for f in of_type(frames, "forms.field.added")] == [1]
    assert [f["seq"] for f in of_type(frames, "forms.field.changed")] == [2]


async def test_a_submission_sent_ten_times_and_after_a_reconnect_is_submitted_once(
    ws_user, ws_other_user, joined
):
    @sync_to_async
    def setting() -> int:
        form = form_create(owner=ws_user, title="Poll", conflict_policy="lww")
        field_add(
            user=ws_user,
            form_id=form.pk,
            base_revision=0,
            client_msg_id="f",
            key="name",
            type="text",
            label="Name",
            required=True,
        )
        form_change(
            user=ws_user,
            form_id=form.pk,
            base_revision=1,
            client_msg_id="p",
            prop="status",
            value="published",
        )
        return form.pk

    form_id = await setting()
    path = f"/ws/forms/{form_id}/fill/"
    fill, _ = await joined(ws_other_user, path)
    values = {"values": {"name": "Bob"}}

    updates = await replayed(fill, "forms.submission.update", values)
    sent = await replayed(fill, "forms.submission.submit", {})
    await fill.disconnect()
    again, snapshot = await joined(ws_other_user, path, "&resumed=1")
    sent += await replayed(again, "forms.submission.submit", {}, times=1)

    assert {r["type"] for r in updates + sent} == {"ack"}
    # Values are state, not events: setting the same value again changes nothing.
    assert {r["data"]["submission"]["values"]["name"] for r in updates} == {"Bob"}
    assert [r["data"]["duplicate"] for r in sent] == [False] + [True] * REPLAYS
    assert {r["data"]["submission"]["submitted_at"] for r in sent} == {
        sent[0]["data"]["submission"]["submitted_at"]
    }
    assert snapshot["data"]["submission"]["status"] == "submitted"
    rows = await sync_to_async(
        lambda: list(Submission.objects.filter(form_id=form_id).values_list("status", flat=True))
    )()
    assert rows == ["submitted"]
    audit = await sync_to_async(SystemEvent.objects.filter(kind="form_submitted").count)()
    assert audit == 1
