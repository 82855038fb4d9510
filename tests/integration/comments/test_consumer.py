"""``/ws/comments/threads/<id>/`` and ``/ws/comments/notifications/`` through the real ASGI
app, Redis layer and PostgreSQL."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from collab.services import document_create, member_set
from comments.models import Comment, Thread, ThreadEvent
from comments.services import comment_create, thread_create
from tests.factories import UserFactory
from tests.integration.ws import (
    close_code,
    communicator,
    drain,
    next_of,
    none_of,
    receive,
    request,
    send,
    ticket_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


def path(thread_id: int) -> str:
    return f"/ws/comments/threads/{thread_id}/"


@pytest.fixture
def document(ws_user):
    return document_create(owner=ws_user, title="Notes", content="hello world")


@pytest.fixture
def thread(ws_user, document):
    result = thread_create(
        user=ws_user,
        target_kind="document",
        target_id=document.pk,
        body="First!",
        client_msg_id="t-1",
        anchor={"start": 0, "end": 5, "version": 1},
    )
    return result.thread


@pytest.fixture
def viewer(ws_user, document):
    user = UserFactory()
    member_set(user=ws_user, document_id=document.pk, member_id=user.pk, role="viewer")
    return user


@pytest.fixture
async def joined(communicators):
    async def join_(user, thread_id: int, since: int | None = None, route: str | None = None):
        query = f"?ticket={ticket_for(user)}" + ("" if since is None else f"&since={since}")
        comm = communicator((route or path(thread_id)) + query, ticket=None)
        communicators.append(comm)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        assert (await receive(comm))["type"] == "session.welcome"
        return comm, await receive(comm)

    return join_


async def create(comm, body: str, key: str, **extra) -> dict:
    data = {"body": body, "client_msg_id": key, **extra}
    return await request(comm, "comments.comment.create", data, id=key)


async def test_joining_sends_the_thread_its_comments_seq_and_members(ws_user, thread, joined):
    _, snapshot = await joined(ws_user, thread["id"])

    assert snapshot["type"] == "comments.thread.snapshot"
    data = snapshot["data"]
    assert data["thread"]["anchor"] == {"start": 0, "end": 5, "version": 1}
    assert [c["body"] for c in data["comments"]] == ["First!"]
    assert (data["seq"], data["more"]) == (2, False)
    assert [(m["user"]["id"], m["state"]) for m in data["members"]] == [(ws_user.pk, "viewing")]


async def test_strangers_missing_threads_and_huge_ids_are_closed_with_4404(
    ws_user, ws_other_user, thread
):
    for user, thread_id in ((ws_other_user, thread["id"]), (ws_user, 999999), (ws_user, 10**25)):
        comm = communicator(path(thread_id), ticket=ticket_for(user))
        await comm.connect(timeout=5)
        assert await close_code(comm) == 4404
        await comm.disconnect()


async def test_a_comment_is_acked_then_reaches_every_viewer_with_the_next_seq(
    ws_user, viewer, thread, joined
):
    author, _ = await joined(ws_user, thread["id"])
    reader, _ = await joined(viewer, thread["id"])

    reply = await create(author, "Second", "m-1")

    assert reply["type"] == "ack"
    assert (reply["data"]["seq"], reply["data"]["duplicate"]) == (3, False)
    for comm in (author, reader):
        event = await next_of(comm, "comments.comment.created")
        assert (event["stream"], event["seq"]) == (f"comments.thread.{thread['id']}", 3)
        assert event["data"]["comment"]["body"] == "Second"


async def test_a_frame_replayed_ten_times_and_after_a_reconnect_makes_one_row_and_one_event(
    ws_user, viewer, thread, joined
):
    author, _ = await joined(ws_user, thread["id"])
    reader, _ = await joined(viewer, thread["id"])
    acks = [await create(author, "Once", "m-dup") for _ in range(10)]
    await author.disconnect()
    again, _ = await joined(ws_user, thread["id"])
    acks.append(await create(again, "Once", "m-dup"))

    assert {a["data"]["comment"]["id"] for a in acks} == {acks[0]["data"]["comment"]["id"]}
    assert [a["data"]["duplicate"] for a in acks] == [False] + [True] * 10
    assert {a["data"]["seq"] for a in acks} == {3}
    created = [f for f in await drain(reader) if f["type"] == "comments.comment.created"]
    assert [f["seq"] for f in created] == [3]
    rows = await sync_to_async(Comment.objects.filter(client_msg_id="m-dup").count)()
    events = await sync_to_async(ThreadEvent.objects.filter(thread_id=thread["id"]).count)()
    assert (rows, events) == (1, 3)


async def test_edit_delete_react_and_resolve_reach_viewers_in_seq_order(
    ws_user, viewer, thread, joined
):
    author, _ = await joined(ws_user, thread["id"])
    reader, _ = await joined(viewer, thread["id"])
    comment_id = (await create(author, "Draft", "m-2"))["data"]["comment"]["id"]

    steps = [
        ("comments.comment.edit", {"comment_id": comment_id, "body": "Final"}),
        ("comments.reaction.add", {"comment_id": comment_id, "kind": "like"}),
        ("comments.reaction.remove", {"comment_id": comment_id, "kind": "like"}),
        ("comments.comment.delete", {"comment_id": comment_id}),
        ("comments.thread.resolve", {}),
        ("comments.thread.reopen", {}),
    ]
    for n, (type_, data) in enumerate(steps):
        assert (await request(author, type_, data, id=f"r{n}"))["type"] == "ack"

    frames = [f for f in await drain(reader) if f["type"].startswith("comments.") and "seq" in f]
    assert [(f["type"], f["seq"]) for f in frames] == [
        ("comments.comment.created", 3),
        ("comments.comment.edited", 4),
        ("comments.reaction.added", 5),
        ("comments.reaction.removed", 6),
        ("comments.comment.deleted", 7),
        ("comments.thread.resolved", 8),
        ("comments.thread.reopened", 9),
    ]
    assert frames[4]["data"]["comment"]["body"] == ""


async def test_resume_with_since_replays_missed_events_without_deleted_text(
    ws_user, thread, joined
):
    comment = await sync_to_async(comment_create)(
        user=ws_user, thread_id=thread["id"], body="Secret", client_msg_id="m-3"
    )
    author, _ = await joined(ws_user, thread["id"])
    await request(author, "comments.comment.delete", {"comment_id": comment.data["id"]})

    resumed, first = await joined(ws_user, thread["id"], since=2)
    later = [f for f in [first, *await drain(resumed)] if f["type"].startswith("comments.")]

    assert [(f["type"], f.get("seq")) for f in later] == [
        ("comments.comment.created", 3),
        ("comments.comment.deleted", 4),
        ("comments.thread.resumed", None),
    ]
    assert "Secret" not in str(later)
    _, snapshot = await joined(ws_user, thread["id"], since=99)  # from the future: a snapshot
    assert snapshot["type"] == "comments.thread.snapshot"


async def test_a_gap_in_broadcasts_is_filled_from_the_database(ws_user, thread, joined):
    reader, _ = await joined(ws_user, thread["id"])
    # Event 3 committed but its broadcast lost (as a full channel or a Redis restart loses it):
    # stored the way a service stores it, without the broadcast.
    await sync_to_async(_store_event_without_broadcast)(thread["id"], 3)

    await sync_to_async(comment_create)(
        user=ws_user, thread_id=thread["id"], body="After", client_msg_id="m-c"
    )
    frames = [f for f in await drain(reader) if "seq" in f]

    assert [(f["type"], f["seq"]) for f in frames] == [
        ("comments.thread.lost", 3),
        ("comments.comment.created", 4),
    ]


def _store_event_without_broadcast(thread_id: int, seq: int) -> None:
    Thread.objects.filter(pk=thread_id).update(last_seq=seq)
    ThreadEvent.objects.create(thread_id=thread_id, seq=seq, type="comments.thread.lost", data={})


async def test_bad_input_gets_stable_codes_and_the_socket_stays_open(
    ws_user, document, thread, joined
):
    other = await sync_to_async(thread_create)(
        user=ws_user, target_kind="document", target_id=document.pk, body="x", client_msg_id="o"
    )
    comm, _ = await joined(ws_user, thread["id"])
    cases = [
        ("comments.comment.create", {"body": "", "client_msg_id": "e1"}, "invalid"),
        ("comments.comment.create", {"body": "   ", "client_msg_id": "e2"}, "invalid"),
        ("comments.comment.create", {"body": "x" * 2001, "client_msg_id": "e3"}, "too_large"),
        ("comments.comment.create", {"body": "x"}, "invalid"),
        ("comments.comment.create", {"body": 7, "client_msg_id": "e4"}, "invalid"),
        (
            "comments.comment.create",
            {"body": "x", "client_msg_id": "e5", "parent_id": other.comment["id"]},
            "invalid",
        ),
        ("comments.reaction.add", {"comment_id": 1, "kind": "meh"}, "invalid"),
        ("comments.reaction.add", {"comment_id": "1", "kind": "like"}, "invalid"),
        # A comment of another thread is not reachable from this thread's socket.
        ("comments.comment.edit", {"comment_id": other.comment["id"], "body": "y"}, "not_found"),
        ("comments.comment.delete", {"comment_id": 2**70}, "invalid"),
        ("comments.presence.set", {"state": "typing"}, "invalid"),
    ]
    for n, (type_, data, code) in enumerate(cases):
        reply = await request(comm, type_, data, id=f"e{n}")
        assert (type_, reply["type"], reply["error"]["code"]) == (type_, "error", code)
    assert (await request(comm, "session.heartbeat", {}, id="alive"))["type"] == "ack"


async def test_only_the_author_edits_and_viewers_cannot_resolve(ws_user, viewer, thread, joined):
    comm, _ = await joined(viewer, thread["id"])
    first = await sync_to_async(_first_comment_id)(thread["id"])

    edit = await request(comm, "comments.comment.edit", {"comment_id": first, "body": "mine"})
    resolve = await request(comm, "comments.thread.resolve", {}, id="r")

    assert edit["error"]["code"] == "forbidden"
    assert resolve["error"]["code"] == "forbidden"


def _first_comment_id(thread_id: int) -> int:
    return Comment.objects.filter(thread_id=thread_id).order_by("id").values_list("pk")[0][0]


async def test_typing_shows_to_others_and_lapses_by_itself(
    ws_user, viewer, thread, joined, settings
):
    settings.COMMENTS_TYPING_SECONDS = 1
    typist, _ = await joined(ws_user, thread["id"])
    reader, _ = await joined(viewer, thread["id"])

    for _ in range(3):  # repeated starts within half the lifetime: relayed once
        await send(typist, "comments.typing.start")
    started = await next_of(reader, "comments.typing.started")
    stopped = await next_of(reader, "comments.typing.stopped")

    assert started["data"] == {
        "user": {"id": ws_user.pk, "username": ws_user.username},
        "expires_in": 1,
    }
    assert stopped["data"]["user"]["id"] == ws_user.pk
    assert await none_of(reader, "comments.typing.started", within=0.3)


async def test_typing_shows_in_thread_presence_and_stops_when_the_comment_is_posted(
    ws_user, viewer, thread, joined
):
    typist, _ = await joined(ws_user, thread["id"])
    reader, _ = await joined(viewer, thread["id"])

    await send(typist, "comments.typing.start")
    typing = await next_of(reader, "presence.member.updated")
    await create(typist, "Done typing", "m-t")
    stopped = await next_of(reader, "comments.typing.stopped")
    back = await next_of(reader, "presence.member.updated")

    assert typing["data"]["member"]["state"] == "typing"
    assert stopped["data"]["user"]["id"] == ws_user.pk
    assert back["data"]["member"]["state"] == "viewing"


async def test_a_mention_notifies_the_mentioned_user_live_with_the_unread_count(
    ws_user, viewer, thread, joined
):
    bell, snapshot = await joined(viewer, 0, route="/ws/comments/notifications/")
    author, _ = await joined(ws_user, thread["id"])

    await create(author, f"Please look, @{viewer.username.upper()}", "m-4")
    created = await next_of(bell, "comments.notification.created")
    read = await request(bell, "comments.notifications.read", {"all": True}, id="read")

    assert snapshot["type"] == "comments.notifications.snapshot"
    assert snapshot["data"] == {"unread": 0, "notifications": []}
    assert created["data"]["notification"]["kind"] == "mention"
    assert created["data"]["unread"] == 1
    assert read["data"]["unread"] == 0
    assert (await next_of(bell, "comments.notifications.read"))["data"]["unread"] == 0


async def test_a_mention_of_someone_who_cannot_see_the_target_notifies_nobody(
    ws_user, ws_other_user, thread, joined
):
    bell, _ = await joined(ws_other_user, 0, route="/ws/comments/notifications/")
    author, _ = await joined(ws_user, thread["id"])

    reply = await create(author, f"hi @{ws_other_user.username}", "m-5")

    assert reply["data"]["comment"]["mentions"] == []
    assert await none_of(bell, "comments.notification.created", within=0.5)


async def test_watching_a_target_brings_new_threads_and_strangers_cannot_watch(
    ws_user, ws_other_user, document, joined
):
    bell, _ = await joined(ws_user, 0, route="/ws/comments/notifications/")
    stranger, _ = await joined(ws_other_user, 0, route="/ws/comments/notifications/")
    target = {"target_kind": "document", "target_id": document.pk}

    assert (await request(bell, "comments.target.watch", target))["type"] == "ack"
    denied = await request(stranger, "comments.target.watch", target)
    await sync_to_async(thread_create)(
        user=ws_user, target_kind="document", target_id=document.pk, body="New", client_msg_id="n"
    )

    assert denied["error"]["code"] == "not_found"
    assert (await next_of(bell, "comments.thread.created"))["data"]["thread"]["seq"] == 1
    assert await none_of(stranger, "comments.thread.created", within=0.3)


async def test_resolving_through_rest_services_reaches_open_sockets(ws_user, thread, joined):
    comm, _ = await joined(ws_user, thread["id"])
    from comments.services import thread_resolve

    await sync_to_async(thread_resolve)(user=ws_user, thread_id=thread["id"], resolved=True)

    event = await next_of(comm, "comments.thread.resolved")
    assert (event["seq"], event["data"]["thread"]["resolved"]) == (3, True)


async def test_viewers_are_in_the_thread_room_and_leave_it_on_disconnect(
    ws_user, viewer, thread, joined
):
    first, _ = await joined(ws_user, thread["id"])
    second, snapshot = await joined(viewer, thread["id"])
    joined_event = await next_of(first, "presence.member.joined")
    if joined_event["data"]["member"]["user"]["id"] == ws_user.pk:  # its own, first
        joined_event = await next_of(first, "presence.member.joined")
    await second.disconnect()
    left = await next_of(first, "presence.member.left")

    assert {m["user"]["id"] for m in snapshot["data"]["members"]} == {ws_user.pk, viewer.pk}
    assert joined_event["data"]["member"]["user"]["id"] == viewer.pk
    assert left["data"]["user"]["id"] == viewer.pk


async def test_the_thread_room_is_open_on_the_presence_socket_to_who_may_see_the_thread(
    ws_user, ws_other_user, viewer, thread, open_ws
):
    room = {"room": f"thread.{thread['id']}"}
    allowed, _ = await open_ws(viewer)
    refused, _ = await open_ws(ws_other_user)

    assert (await request(allowed, "presence.room.join", room))["type"] == "ack"
    assert (await request(refused, "presence.room.join", room))["error"]["code"] == "not_found"
    missing = {"room": "thread.99999999999999999999"}
    assert (await request(refused, "presence.room.join", missing, id="m"))["type"] == "error"


async def test_a_notification_from_a_target_one_has_lost_keeps_its_text_to_itself(
    ws_user, viewer, document, thread, joined
):
    from collab.services import member_remove

    await sync_to_async(comment_create)(
        user=ws_user,
        thread_id=thread["id"],
        body=f"@{viewer.username} secret plan",
        client_msg_id="x",
    )
    _, before = await joined(viewer, 0, route="/ws/comments/notifications/")
    await sync_to_async(member_remove)(user=ws_user, document_id=document.pk, member_id=viewer.pk)
    _, after = await joined(viewer, 0, route="/ws/comments/notifications/")

    assert [n["excerpt"] for n in before["data"]["notifications"]] == [
        f"@{viewer.username} secret plan"
    ]
    assert [n["excerpt"] for n in after["data"]["notifications"]] == [""]


async def test_a_deleted_thread_tells_its_sockets_and_followers_and_closes_with_4404(
    ws_user, viewer, document, thread, joined
):
    from collab.services import document_delete

    reader, _ = await joined(viewer, thread["id"])
    bell, _ = await joined(ws_user, 0, route="/ws/comments/notifications/")
    target = {"target_kind": "document", "target_id": document.pk}
    await request(bell, "comments.target.watch", target)

    await sync_to_async(document_delete)(user=ws_user, document_id=document.pk)

    told = await next_of(reader, "comments.thread.deleted")
    assert told["data"] == {"thread": {"id": thread["id"]}}
    assert await close_code(reader) == 4404
    assert (await next_of(bell, "comments.thread.deleted"))["data"]["thread"]["id"] == thread["id"]
    assert not await sync_to_async(Thread.objects.filter(pk=thread["id"]).exists)()
