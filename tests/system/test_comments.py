"""Comments across two real Daphne workers (issue 5's acceptance).

Writes made on worker A reach viewers on worker B in ``seq`` order; a frame replayed on both
workers and after a reconnect stores one row and one event; typing shows and lapses; a mention
reaches the mentioned user's bell live; a stranger gets 404 / 4404 and no events.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async

from collab.services import document_create, member_set
from comments.models import Comment, ThreadEvent
from comments.services import thread_create
from monitoring.loadtest.workers import Worker
from tests.system.client import (
    RealtimeClient,
    attempt_handshake,
    fetch_ticket,
    http_request,
    ws_url,
)
from tests.system.conftest import Account

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

NOTIFICATIONS = "/ws/comments/notifications/"
TYPING_SECONDS = 6  # COMMENTS_TYPING_SECONDS, which the workers run with


def thread_path(thread_id: int) -> str:
    return f"/ws/comments/threads/{thread_id}/"


@dataclass(frozen=True)
class Setting:
    document_id: int
    thread_id: int


def _setting(owner: Account, viewers: list[Account]) -> Setting:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(pk=owner.user_id)
    document = document_create(owner=user, title="Spec", content="hello world")
    for viewer in viewers:
        member_set(user=user, document_id=document.pk, member_id=viewer.user_id, role="viewer")
    thread = thread_create(
        user=user,
        target_kind="document",
        target_id=document.pk,
        body="Is this right?",
        client_msg_id="first",
    )
    return Setting(document.pk, thread.thread["id"])


async def connect(worker: Worker, account: Account, path: str) -> RealtimeClient:
    ticket = await fetch_ticket(worker.http_url(), account.token)
    return await RealtimeClient.connect(worker.ws_url(path), ticket=ticket)


async def open_thread(worker: Worker, account: Account, thread_id: int) -> RealtimeClient:
    client = await connect(worker, account, thread_path(thread_id))
    await client.next_event("comments.thread.snapshot")
    return client


def thread_events(client: RealtimeClient) -> list[tuple[str, int]]:
    return [
        (f["type"], f["seq"])
        for f in client.inbox
        if f.get("stream", "").startswith("comments.thread.")
    ]


async def settle(client: RealtimeClient, seq: int) -> None:
    """Wait until the client has been sent the thread's event ``seq``."""
    await client.wait_until(lambda: any(s >= seq for _, s in thread_events(client)))


async def test_writes_on_one_worker_reach_viewers_on_the_other_in_order(
    worker_a, worker_b, alice, bob
):
    setting = await sync_to_async(_setting)(alice, [bob])
    writer = await open_thread(worker_a, alice, setting.thread_id)
    reader = await open_thread(worker_b, bob, setting.thread_id)

    created = await writer.ack("comments.comment.create", {"body": "Yes", "client_msg_id": "a1"})
    comment_id = created["comment"]["id"]
    await writer.ack("comments.comment.edit", {"comment_id": comment_id, "body": "Yes, ship it"})
    await reader.ack("comments.reaction.add", {"comment_id": comment_id, "kind": "love"})
    await writer.ack("comments.comment.delete", {"comment_id": comment_id})
    await settle(reader, 6)
    await settle(writer, 6)

    expected = [
        ("comments.comment.created", 3),
        ("comments.comment.edited", 4),
        ("comments.reaction.added", 5),
        ("comments.comment.deleted", 6),
    ]
    assert thread_events(reader) == expected
    assert thread_events(writer) == expected
    edited = next(f for f in reader.inbox if f["type"] == "comments.comment.edited")
    assert edited["data"]["comment"]["body"] == "Yes, ship it"
    await writer.close()
    await reader.close()


async def test_a_frame_replayed_on_both_workers_and_after_a_reconnect_is_stored_once(
    worker_a, worker_b, alice, bob
):
    setting = await sync_to_async(_setting)(alice, [bob])
    on_a = await open_thread(worker_a, alice, setting.thread_id)
    on_b = await open_thread(worker_b, alice, setting.thread_id)
    reader = await open_thread(worker_b, bob, setting.thread_id)
    frame = {"body": "Only once", "client_msg_id": "replayed"}

    replies = await asyncio.gather(
        *(client.request("comments.comment.create", frame) for client in [on_a, on_b] * 5)
    )
    await on_a.close()
    again = await open_thread(worker_a, alice, setting.thread_id)
    replies.append(await again.request("comments.comment.create", frame))
    await settle(reader, 3)
    await asyncio.sleep(0.5)  # room for a second event, if one were wrongly sent

    assert {r["type"] for r in replies} == {"ack"}
    assert {r["data"]["comment"]["id"] for r in replies} == {replies[0]["data"]["comment"]["id"]}
    assert {r["data"]["seq"] for r in replies} == {3}
    assert sorted(r["data"]["duplicate"] for r in replies) == [False] + [True] * 10
    assert thread_events(reader) == [("comments.comment.created", 3)]
    rows = await sync_to_async(Comment.objects.filter(client_msg_id="replayed").count)()
    events = await sync_to_async(ThreadEvent.objects.filter(thread_id=setting.thread_id).count)()
    assert (rows, events) == (1, 3)
    for client in (on_b, again, reader):
        await client.close()


async def test_typing_on_one_worker_shows_on_the_other_and_lapses_by_itself(
    worker_a, worker_b, alice, bob
):
    setting = await sync_to_async(_setting)(alice, [bob])
    typist = await open_thread(worker_a, alice, setting.thread_id)
    reader = await open_thread(worker_b, bob, setting.thread_id)

    await typist.send_raw(json.dumps({"type": "comments.typing.start", "data": {}}))
    started = await reader.next_event("comments.typing.started")
    state = await reader.next_frame("presence.member.updated")
    loop = asyncio.get_running_loop()
    began = loop.time()
    stopped = await reader.next_event("comments.typing.stopped", timeout=TYPING_SECONDS + 5)
    lasted = loop.time() - began

    assert started["data"] == {
        "user": {"id": alice.user_id, "username": alice.username},
        "expires_in": TYPING_SECONDS,
    }
    assert state["data"]["member"]["state"] == "typing"
    assert stopped["data"]["user"]["id"] == alice.user_id
    assert TYPING_SECONDS - 1 < lasted < TYPING_SECONDS + 4  # lapsed by itself, after ~6 s
    await typist.close()
    await reader.close()


async def test_a_mention_on_one_worker_rings_the_bell_on_the_other(worker_a, worker_b, alice, bob):
    setting = await sync_to_async(_setting)(alice, [bob])
    bell = await connect(worker_b, bob, NOTIFICATIONS)
    await bell.next_event("comments.notifications.snapshot")
    writer = await open_thread(worker_a, alice, setting.thread_id)

    await writer.ack(
        "comments.comment.create", {"body": f"@{bob.username} please check", "client_msg_id": "m"}
    )
    rung = await bell.next_event("comments.notification.created")

    assert rung["data"]["notification"]["kind"] == "mention"
    assert rung["data"]["notification"]["actor"]["id"] == alice.user_id
    assert rung["data"]["unread"] == 1
    await writer.close()
    await bell.close()


async def test_a_stranger_gets_404_and_4404_and_hears_nothing(
    worker_a, worker_b, alice, bob, make_account
):
    setting = await sync_to_async(_setting)(alice, [bob])
    stranger = await sync_to_async(make_account)()
    bell = await connect(worker_b, stranger, NOTIFICATIONS)
    await bell.next_event("comments.notifications.snapshot")
    target = {"target_kind": "document", "target_id": setting.document_id}
    ticket = await fetch_ticket(worker_b.http_url(), stranger.token)
    refused = await attempt_handshake(
        ws_url(worker_b.ws_url(thread_path(setting.thread_id)), ticket)
    )
    writer = await open_thread(worker_a, alice, setting.thread_id)

    watch = await bell.request("comments.target.watch", target)
    await writer.ack(
        "comments.comment.create",
        {"body": f"cc @{stranger.username}", "client_msg_id": "s"},
    )
    base = worker_b.http_url().rstrip("/")
    urls = (
        f"/api/comments/threads/{setting.thread_id}/",
        f"/api/comments/threads/?target_kind=document&target_id={setting.document_id}",
    )
    rest = [await asyncio.to_thread(http_request, base + url, token=stranger.token) for url in urls]
    owner_sees = await asyncio.to_thread(http_request, base + urls[0], token=alice.token)
    await asyncio.sleep(1)

    assert owner_sees[0] == 200  # so the stranger's 404s are about the stranger
    assert (refused.close_code, refused.frames) == (4404, [])
    assert watch["error"]["code"] == "not_found"
    assert [status for status, _, _ in rest] == [404, 404]
    assert [f["type"] for f in bell.inbox] == []
    await writer.close()
    await bell.close()
