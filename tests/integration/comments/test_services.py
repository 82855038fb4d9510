"""Threads, comments, reactions, attachments and notifications (comments/services.py and
comments/selectors.py) on PostgreSQL, with broadcasts heard through the real Redis channel layer.

Comments live on documents here (collab registers the "document" target kind); anchors move
through ops committed by collab.services.operation_submit.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction

from collab.models import Role
from collab.services import document_create, member_remove, member_set, operation_submit
from comments import selectors
from comments.models import (
    Attachment,
    Comment,
    CommentRevision,
    Notification,
    Reaction,
    Thread,
    ThreadEvent,
)
from comments.selectors import events_between, thread_open, thread_payloads, unread_count
from comments.services import (
    attachment_add,
    comment_create,
    comment_delete,
    comment_edit,
    comment_moderate,
    notification_group,
    notifications_mark_read,
    reaction_set,
    target_group,
    thread_create,
    thread_group,
    thread_resolve,
)
from config.errors import AppError, ErrorCode
from tests.factories import UserFactory

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(64)


# --- helpers -----------------------------------------------------------------------------------


def error_code(call) -> ErrorCode:
    with pytest.raises(AppError) as caught:
        call()
    return caught.value.code


def share(document, owner, user, role=Role.EDITOR):
    member_set(user=owner, document_id=document.pk, member_id=user.pk, role=role)
    return user


def start_thread(document, user, body="First!", key="t1", **options):
    return thread_create(
        user=user,
        target_kind="document",
        target_id=document.pk,
        body=body,
        client_msg_id=key,
        **options,
    )


def post(user, thread_id, body="hi", key=None, **options):
    post.count += 1
    return comment_create(
        user=user,
        thread_id=thread_id,
        body=body,
        client_msg_id=key or f"m{post.count}",
        **options,
    )


post.count = 0


def seqs(thread_id) -> list[int]:
    return list(
        ThreadEvent.objects.filter(thread_id=thread_id)
        .order_by("seq")
        .values_list("seq", flat=True)
    )


def types(thread_id) -> list[str]:
    return [event.type for event in events_between(thread_id=thread_id, after=0)]


def notices(user, kind=None) -> list[Notification]:
    found = Notification.objects.filter(recipient=user)
    return list(found if kind is None else found.filter(kind=kind))


def edit_op(document_id, user, op, *, client_id="editor"):
    """Commit an op at the document's current version, as a client in sync would."""
    from collab.models import Document

    version = Document.objects.get(pk=document_id).version
    edit_op.seq += 1
    return operation_submit(
        document_id=document_id,
        base_version=version,
        op=op,
        client_id=client_id,
        seq=edit_op.seq,
        user=user,
    )


edit_op.seq = 0


@dataclass
class Ear:
    """A channel of the real channel layer joined to some groups, read by a task from the start.
    (Cancelling a receive on the pub/sub layer unsubscribes the channel, so none is cancelled
    until the end.) ``silent`` may be called from inside the action, on its thread."""

    layer: Any
    channel: str
    heard: list[dict[str, Any]] = field(default_factory=list)

    async def pump(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            self.heard.append({**json.loads(message["frame"]), "_message": message})

    def silent(self, timeout: float = 0.3) -> bool:
        before = len(self.heard)
        async_to_sync(asyncio.sleep)(timeout)
        return len(self.heard) == before


def listen(groups: list[str], action, *, timeout: float = 0.5) -> tuple[Any, list[dict]]:
    """Run ``action(ear)`` (sync, in this thread, with its own transactions) while a channel
    listens on ``groups``; returns what it returned (or raised) and the frames heard, after
    ``timeout`` more seconds of listening."""

    async def run():
        layer = get_channel_layer()
        ear = Ear(layer, await layer.new_channel())
        for group in groups:
            await layer.group_add(group, ear.channel)
        pump = asyncio.create_task(ear.pump())
        try:
            try:
                outcome = await sync_to_async(action)(ear)
            except Exception as error:  # handed back to the test
                outcome = error
            await asyncio.sleep(timeout)
        finally:
            pump.cancel()
            for group in groups:
                await layer.group_discard(group, ear.channel)
        return outcome, ear.heard

    return async_to_sync(run)()


def concurrently(count: int, work) -> list[Any]:
    """``work(n)`` on ``count`` threads released at once, each on its own connection."""
    barrier = threading.Barrier(count)

    def run(n: int):
        barrier.wait()
        try:
            return work(n)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


class Boom(Exception):
    pass


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def owner(db):
    return UserFactory(username="Olive")


@pytest.fixture
def document(owner):
    return document_create(owner=owner, title="Notes", content="hello world")


@pytest.fixture
def editor(document, owner):
    return share(document, owner, UserFactory(username="Eddie"), Role.EDITOR)


@pytest.fixture
def viewer(document, owner):
    return share(document, owner, UserFactory(username="Vera"), Role.VIEWER)


@pytest.fixture
def stranger(db):
    return UserFactory(username="Stan")


@pytest.fixture
def thread(document, owner):
    return Thread.objects.get(pk=start_thread(document, owner).thread["id"])


# --- thread_create -----------------------------------------------------------------------------


def test_a_new_thread_is_event_1_and_its_first_comment_event_2(document, editor):
    result = start_thread(document, editor, body="Look at this")

    thread = Thread.objects.get(pk=result.thread["id"])
    assert (result.seq, result.duplicate, thread.last_seq) == (2, False, 2)
    assert types(thread.pk) == ["comments.thread.created", "comments.comment.created"]
    created, commented = events_between(thread_id=thread.pk, after=0)
    assert created.data["thread"]["seq"] == 1
    assert commented.data["comment"] == result.comment
    assert result.comment["body"] == "Look at this"
    assert result.thread["target"] == {"kind": "document", "id": document.pk, "key": ""}
    assert result.thread["seq"] == 2


@pytest.mark.django_db(transaction=True)
def test_a_new_thread_is_announced_to_its_targets_group_after_commit():
    owner = UserFactory()
    document = document_create(owner=owner, title="Notes", content="hello")

    result, heard = listen(
        [target_group("document", document.pk)], lambda ear: start_thread(document, owner)
    )

    (frame,) = heard
    assert frame["type"] == "comments.thread.created"
    assert (frame["stream"], frame["seq"]) == (thread_group(result.thread["id"]), 1)
    assert frame["_message"]["dedupe"] == [thread_group(result.thread["id"]), 1]
    assert frame["data"]["thread"]["id"] == result.thread["id"]


def test_a_thread_resubmitted_with_its_key_is_the_original(document, editor):
    first = start_thread(document, editor, body="once", key="k")

    again = start_thread(document, editor, body="twice?", key="k")

    assert again.duplicate
    assert (again.thread["id"], again.comment, again.seq) == (
        first.thread["id"],
        first.comment,
        2,
    )
    assert Thread.objects.count() == 1
    assert Comment.objects.count() == 1
    assert ThreadEvent.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_thread_submitted_twice_at_once_is_made_once():
    owner = UserFactory()
    document = document_create(owner=owner, title="Race", content="hello")

    results = concurrently(
        3, lambda n: start_thread(document, owner, body=f"try {n}", key="same-key")
    )

    assert Thread.objects.count() == 1
    assert Comment.objects.count() == 1
    assert ThreadEvent.objects.count() == 2
    assert sorted(r.duplicate for r in results) == [False, True, True]
    assert {r.thread["id"] for r in results} == {Thread.objects.get().pk}
    assert {r.seq for r in results} == {2}


def test_an_anchor_is_stored_moved_to_the_current_version(document, owner):
    edit_op(document.pk, owner, ["Oh, "])  # version 2: "Oh, hello world"
    world_at_v1 = {"start": 6, "end": 11, "version": 1}

    result = start_thread(document, owner, anchor=world_at_v1)

    assert result.thread["anchor"] == {"start": 10, "end": 15, "version": 2}
    thread = Thread.objects.get(pk=result.thread["id"])
    assert (thread.anchor_start, thread.anchor_end, thread.anchor_version) == (10, 15, 2)


def test_an_anchor_follows_later_edits_when_read(document, owner):
    thread_id = start_thread(document, owner, anchor={"start": 6, "end": 11, "version": 1}).thread[
        "id"
    ]
    edit_op(document.pk, owner, ["Well, "])  # before the range
    edit_op(document.pk, owner, [17, "!"])  # after it
    edit_op(document.pk, owner, [12, -2, "W"])  # inside it: "wo" -> "W"

    (payload,) = thread_payloads([Thread.objects.get(pk=thread_id)])

    document.refresh_from_db()
    assert document.content == "Well, hello Wrld!"
    anchor = payload["anchor"]
    assert anchor["version"] == document.version == 4
    assert document.content[anchor["start"] : anchor["end"]] == "Wrld"


def test_text_typed_at_the_edges_of_an_anchor_stays_outside_it(document, owner):
    thread_id = start_thread(document, owner, anchor={"start": 6, "end": 11, "version": 1}).thread[
        "id"
    ]
    point_id = start_thread(
        document, owner, key="p", anchor={"start": 5, "end": 5, "version": 1}
    ).thread["id"]
    edit_op(document.pk, owner, [6, "big "])  # at the start of "world"
    edit_op(document.pk, owner, [15, "s"])  # at its end
    edit_op(document.pk, owner, [5, ","])  # at the point

    ranged, point = thread_payloads(list(Thread.objects.filter(pk__in=[thread_id, point_id])))

    document.refresh_from_db()
    assert document.content == "hello, big worlds"
    by_id = {p["id"]: p["anchor"] for p in (ranged, point)}
    anchor = by_id[thread_id]
    assert document.content[anchor["start"] : anchor["end"]] == "world"
    assert (by_id[point_id]["start"], by_id[point_id]["end"]) == (5, 5)


def test_an_anchor_on_a_version_the_document_never_had_is_invalid(document, owner):
    code = error_code(
        lambda: start_thread(document, owner, anchor={"start": 0, "end": 1, "version": 9})
    )

    assert code is ErrorCode.INVALID
    assert not Thread.objects.exists()


@pytest.mark.parametrize(
    "anchor",
    [
        {"start": 0, "end": 12, "version": 1},  # "hello world" is 11
        {"start": 12, "end": 12, "version": 1},
        {"start": 0, "end": 6, "version": 0},  # the document was empty at version 0
    ],
)
def test_an_anchor_past_the_end_of_its_versions_text_is_invalid(document, owner, anchor):
    edit_op(document.pk, owner, [11, " and more text"])  # longer now, but not at version 1

    assert error_code(lambda: start_thread(document, owner, anchor=anchor)) is ErrorCode.INVALID
    assert not Thread.objects.exists()


def test_an_anchor_may_span_the_whole_text_or_none_of_it(document, owner):
    whole = start_thread(document, owner, key="a", anchor={"start": 0, "end": 11, "version": 1})
    empty = start_thread(document, owner, key="b", anchor={"start": 0, "end": 0, "version": 0})

    assert whole.thread["anchor"] == {"start": 0, "end": 11, "version": 1}
    assert empty.thread["anchor"] == {"start": 0, "end": 0, "version": 1}


@pytest.mark.parametrize(
    "anchor",
    [
        {"start": 0, "end": 1},
        {"start": 0, "end": 1, "version": 1, "extra": 2},
        {"start": 3, "end": 1, "version": 1},
        {"start": -1, "end": 1, "version": 1},
        {"start": True, "end": 1, "version": 1},
        {"start": "0", "end": 1, "version": 1},
        {"start": 0, "end": 2**53, "version": 1},
        [0, 1, 1],
        "0-1",
    ],
)
def test_a_malformed_anchor_is_invalid(document, owner, anchor):
    assert error_code(lambda: start_thread(document, owner, anchor=anchor)) is ErrorCode.INVALID


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"target_kind": "spreadsheet"}, ErrorCode.INVALID),
        ({"target_kind": ["document"]}, ErrorCode.INVALID),
        ({"target_id": "1"}, ErrorCode.INVALID),
        ({"target_id": 0}, ErrorCode.INVALID),
        ({"target_key": "k" * 65}, ErrorCode.INVALID),
        ({"client_msg_id": ""}, ErrorCode.INVALID),
        ({"client_msg_id": "k" * 65}, ErrorCode.INVALID),
        ({"client_msg_id": "k\x00"}, ErrorCode.INVALID),
        ({"target_key": "f\x00"}, ErrorCode.INVALID),
        ({"body": " "}, ErrorCode.INVALID),
        ({"body": "x" * 2001}, ErrorCode.TOO_LARGE),
    ],
)
def test_bad_thread_input_is_refused_and_stores_nothing(document, owner, changes, code):
    arguments = {
        "user": owner,
        "target_kind": "document",
        "target_id": document.pk,
        "body": "hi",
        "client_msg_id": "k",
        **changes,
    }

    assert error_code(lambda: thread_create(**arguments)) is code
    assert not Thread.objects.exists()


def test_strangers_do_not_find_the_document_to_comment_on(document, stranger):
    assert error_code(lambda: start_thread(document, stranger)) is ErrorCode.NOT_FOUND
    code = error_code(
        lambda: thread_create(
            user=stranger, target_kind="document", target_id=10**12, body="x", client_msg_id="k"
        )
    )
    assert code is ErrorCode.NOT_FOUND


# --- comment_create ----------------------------------------------------------------------------


def test_every_write_to_a_thread_takes_the_next_seq(thread, owner, editor):
    results = []
    for n in range(10):
        results.append(post(editor if n % 2 else owner, thread.pk, body=f"comment {n}"))
    comment_id = results[0].data["id"]
    results.append(reaction_set(user=editor, comment_id=comment_id, kind="like", present=True))
    results.append(comment_edit(user=owner, comment_id=comment_id, body="changed"))
    results.append(thread_resolve(user=editor, thread_id=thread.pk, resolved=True))
    results.append(comment_delete(user=owner, comment_id=comment_id))

    thread.refresh_from_db()
    assert [r.seq for r in results] == list(range(3, 17))
    assert seqs(thread.pk) == list(range(1, 17))
    assert thread.last_seq == 16


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_seqs_without_gaps_or_duplicates():
    owner = UserFactory()
    document = document_create(owner=owner, title="Busy", content="hello")
    writers = [share(document, owner, UserFactory()) for _ in range(6)]
    thread_id = start_thread(document, owner).thread["id"]

    def write(n: int) -> list[tuple[int, int]]:
        written = []
        for k in range(8):
            result = post(writers[n], thread_id, body=f"{n}.{k}", key=f"w{n}.{k}")
            written.append((result.seq, result.data["id"]))
            connection.close()  # back to the pool: it holds 4 connections for 6 writers
        return written

    written = [pair for pairs in concurrently(6, write) for pair in pairs]

    assert sorted(seq for seq, _ in written) == list(range(3, 51))
    assert seqs(thread_id) == list(range(1, 51))
    assert Thread.objects.get(pk=thread_id).last_seq == 50
    events = {
        event.seq: event
        for event in ThreadEvent.objects.filter(
            thread_id=thread_id, type="comments.comment.created"
        )
    }
    for seq, comment_id in written:
        assert events[seq].comment_id == comment_id
        assert events[seq].data["comment"]["id"] == comment_id


def test_a_comment_resubmitted_with_its_key_is_the_original(thread, editor):
    first = post(editor, thread.pk, body="once", key="k")
    post(editor, thread.pk, body="between")

    again = post(editor, thread.pk, body="twice?", key="k")

    assert (again.duplicate, again.seq, again.data) == (True, first.seq, first.data)
    assert Comment.objects.filter(author=editor).count() == 2
    assert seqs(thread.pk) == [1, 2, 3, 4]


def test_the_same_key_from_another_author_is_another_comment(thread, owner, editor):
    mine = post(owner, thread.pk, key="k")
    theirs = post(editor, thread.pk, key="k")

    assert not theirs.duplicate
    assert mine.data["id"] != theirs.data["id"]


@pytest.mark.django_db(transaction=True)
def test_a_comment_submitted_twice_at_once_is_stored_once():
    owner = UserFactory()
    document = document_create(owner=owner, title="Race", content="hello")
    thread_id = start_thread(document, owner).thread["id"]

    results = concurrently(3, lambda n: post(owner, thread_id, body=f"try {n}", key="same"))

    assert Comment.objects.filter(client_msg_id="same").count() == 1
    assert sorted(r.duplicate for r in results) == [False, True, True]
    assert {r.seq for r in results} == {3}
    assert seqs(thread_id) == [1, 2, 3]


def test_a_reply_names_a_comment_of_the_same_thread(document, owner, thread):
    other = Thread.objects.get(pk=start_thread(document, owner, key="t2").thread["id"])
    foreign = other.comments.get()
    own = thread.comments.get()

    reply = post(owner, thread.pk, parent_id=own.pk)

    assert reply.data["parent_id"] == own.pk
    for parent in (foreign.pk, 10**12, "1", True):
        code = error_code(lambda parent=parent: post(owner, thread.pk, parent_id=parent))
        assert code is ErrorCode.INVALID
    assert thread.comments.count() == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("", ErrorCode.INVALID),
        ("   \n\t", ErrorCode.INVALID),
        (None, ErrorCode.INVALID),
        (42, ErrorCode.INVALID),
        (["hi"], ErrorCode.INVALID),
        ("x" * 2001, ErrorCode.TOO_LARGE),
        ("nul \x00 inside", ErrorCode.INVALID),  # PostgreSQL text cannot hold NUL
    ],
)
def test_a_body_that_is_empty_not_text_or_too_long_is_refused(thread, owner, body, code):
    assert error_code(lambda: post(owner, thread.pk, body=body)) is code
    assert seqs(thread.pk) == [1, 2]


def test_a_body_of_exactly_the_limit_is_fine(thread, owner):
    assert post(owner, thread.pk, body="é" * 2000).data["body"] == "é" * 2000


@pytest.mark.parametrize(
    ("code", "language", "error"),
    [
        ("", "python", ErrorCode.INVALID),  # a language needs a snippet
        ("x = 1", "py thon", ErrorCode.INVALID),
        ("x = 1", "pythön", ErrorCode.INVALID),
        ("x = 1", "p" * 33, ErrorCode.INVALID),
        (42, "", ErrorCode.INVALID),
        ("x = 1", 3, ErrorCode.INVALID),
        ("x" * 51, "", ErrorCode.TOO_LARGE),
        ("nul\x00", "", ErrorCode.INVALID),
    ],
)
def test_code_snippet_rules(thread, owner, settings, code, language, error):
    settings.COMMENTS_MAX_CODE_CHARS = 50

    found = error_code(lambda: post(owner, thread.pk, code=code, code_language=language))

    assert found is error


def test_a_snippets_language_is_kept_in_lower_case(thread, owner):
    result = post(owner, thread.pk, code="int main() {}", code_language="C++")
    plain = post(owner, thread.pk, code=None, code_language=None)

    assert (result.data["code"], result.data["code_language"]) == ("int main() {}", "c++")
    assert (plain.data["code"], plain.data["code_language"]) == ("", "")


def test_strangers_and_missing_threads_are_not_found(thread, stranger, owner):
    assert error_code(lambda: post(stranger, thread.pk)) is ErrorCode.NOT_FOUND
    assert error_code(lambda: post(owner, 10**12)) is ErrorCode.NOT_FOUND
    assert seqs(thread.pk) == [1, 2]


def test_a_member_removed_from_the_document_no_longer_finds_its_threads(
    document, owner, editor, thread
):
    member_remove(user=owner, document_id=document.pk, member_id=editor.pk)

    assert error_code(lambda: post(editor, thread.pk)) is ErrorCode.NOT_FOUND


@pytest.mark.django_db(transaction=True)
def test_a_comment_is_broadcast_on_its_threads_stream_only_after_commit():
    owner = UserFactory()
    document = document_create(owner=owner, title="Live", content="hello")
    thread_id = start_thread(document, owner).thread["id"]
    group = thread_group(thread_id)

    def write(ear: Ear):
        with transaction.atomic():
            result = post(owner, thread_id, body="hear me")
            assert ear.silent(), "broadcast before commit"
        return result

    result, heard = listen([group], write)

    assert group == f"comments.thread.{thread_id}"
    (frame,) = heard
    assert frame["type"] == "comments.comment.created"
    assert (frame["stream"], frame["seq"]) == (group, result.seq) == (group, 3)
    assert frame["data"] == {"comment": result.data}
    assert frame["_message"]["dedupe"] == [group, 3]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_comment_is_never_broadcast():
    owner = UserFactory()
    document = document_create(owner=owner, title="Undo", content="hello")
    thread_id = start_thread(document, owner).thread["id"]

    def write(ear: Ear):
        with transaction.atomic():
            post(owner, thread_id, body="never mind @Olive")
            raise Boom

    outcome, heard = listen([thread_group(thread_id), notification_group(owner.pk)], write)

    assert isinstance(outcome, Boom)
    assert heard == []
    assert seqs(thread_id) == [1, 2]
    assert Thread.objects.get(pk=thread_id).last_seq == 2


# --- mentions and replies ----------------------------------------------------------------------


def test_mentions_are_matched_case_insensitively_and_notified(thread, owner, editor, viewer):
    result = post(owner, thread.pk, body="@EDDIE and @vera, please look")

    assert {m["username"] for m in result.data["mentions"]} == {"Eddie", "Vera"}
    assert [n.kind for n in notices(editor)] == ["mention"]
    assert [n.kind for n in notices(viewer)] == ["mention"]
    assert unread_count(user_id=editor.pk) == 1


def test_a_mentioned_user_who_may_not_see_the_thread_learns_nothing(thread, owner, stranger):
    result = post(owner, thread.pk, body="cc @Stan")

    assert result.data["mentions"] == []
    assert notices(stranger) == []


def test_inactive_users_are_not_mentioned(thread, owner, editor):
    editor.is_active = False
    editor.save()

    result = post(owner, thread.pk, body="cc @Eddie")

    assert result.data["mentions"] == []
    assert notices(editor) == []


def test_mentioning_oneself_notifies_nobody(thread, owner):
    post(owner, thread.pk, body="note to @olive: fix this")

    assert notices(owner) == []


def test_an_edit_notifies_only_the_newly_mentioned(thread, owner, editor, viewer):
    comment_id = post(owner, thread.pk, body="@Eddie look").data["id"]

    result = comment_edit(user=owner, comment_id=comment_id, body="@Eddie and @Vera look")

    assert {m["username"] for m in result.data["mentions"]} == {"Eddie", "Vera"}
    assert len(notices(editor)) == 1
    assert len(notices(viewer)) == 1
    comment_edit(user=owner, comment_id=comment_id, body="only @Vera now")
    comment_edit(user=owner, comment_id=comment_id, body="@Eddie again, @Vera")
    assert len(notices(editor)) == 2  # dropped and mentioned again: a new mention
    assert len(notices(viewer)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_mention_is_pushed_to_the_users_notification_group():
    owner = UserFactory()
    document = document_create(owner=owner, title="Ping", content="hello")
    friend = share(document, owner, UserFactory(username="friend"))
    thread_id = start_thread(document, owner).thread["id"]

    result, heard = listen(
        [notification_group(friend.pk)], lambda ear: post(owner, thread_id, body="@friend hi")
    )

    (frame,) = heard
    assert frame["type"] == "comments.notification.created"
    assert frame["data"]["unread"] == 1
    notification = frame["data"]["notification"]
    assert (notification["kind"], notification["comment_id"]) == ("mention", result.data["id"])
    assert notification["excerpt"] == "@friend hi"
    assert notification["actor"] == {"id": owner.pk, "username": owner.username}


def test_a_reply_notifies_its_parents_author(thread, owner, editor, viewer):
    parent = post(viewer, thread.pk, body="question")

    post(editor, thread.pk, body="answer", parent_id=parent.data["id"])

    assert [n.kind for n in notices(viewer)] == ["reply"]
    # The owner started the thread: told of the question, not of the answer to it.
    assert [n.actor for n in notices(owner, "reply")] == [viewer]


def test_a_comment_without_parent_notifies_whoever_started_the_thread(thread, owner, editor):
    post(editor, thread.pk, body="me too")
    post(owner, thread.pk, body="thanks")  # the starter answering their own thread

    assert [n.kind for n in notices(owner)] == ["reply"]
    assert notices(editor) == []


def test_a_parents_author_who_is_mentioned_gets_the_mention_only(thread, owner, editor):
    parent = post(editor, thread.pk, body="question")

    post(owner, thread.pk, body="@Eddie see above", parent_id=parent.data["id"])

    assert [n.kind for n in notices(editor)] == ["mention"]


def test_a_reply_to_someone_who_lost_the_document_notifies_nobody(document, owner, editor):
    thread_id = start_thread(document, editor).thread["id"]
    member_remove(user=owner, document_id=document.pk, member_id=editor.pk)

    post(owner, thread_id, body="answering a departed member")

    assert notices(editor) == []


# --- comment_edit ------------------------------------------------------------------------------


def test_an_edit_keeps_the_text_before_and_is_an_event(thread, owner):
    comment_id = post(owner, thread.pk, body="frist", code="x=1", code_language="py").data["id"]

    result = comment_edit(user=owner, comment_id=comment_id, body="first")

    assert result.seq == 4
    assert (result.data["body"], result.data["code"], result.data["code_language"]) == (
        "first",
        "x=1",
        "py",
    )
    assert result.data["edited_at"] is not None
    revision = CommentRevision.objects.get(comment_id=comment_id)
    assert (revision.body, revision.code) == ("frist", "x=1")
    assert types(thread.pk)[-1] == "comments.comment.edited"


def test_an_edit_that_drops_the_snippet_drops_its_language(thread, owner):
    comment_id = post(owner, thread.pk, code="x=1", code_language="py").data["id"]

    result = comment_edit(user=owner, comment_id=comment_id, body="hi", code="")

    assert (result.data["code"], result.data["code_language"]) == ("", "")


def test_an_edit_to_the_same_text_changes_nothing(thread, owner):
    comment_id = post(owner, thread.pk, body="same", code="x", code_language="Py").data["id"]

    result = comment_edit(user=owner, comment_id=comment_id, body="same")

    assert result.seq is None
    assert result.data["edited_at"] is None
    assert not CommentRevision.objects.exists()
    assert seqs(thread.pk) == [1, 2, 3]


def test_only_the_author_edits(thread, owner, editor, stranger):
    comment_id = post(editor, thread.pk, body="mine").data["id"]

    assert error_code(lambda: comment_edit(user=owner, comment_id=comment_id, body="x")) is (
        ErrorCode.FORBIDDEN
    )
    assert error_code(lambda: comment_edit(user=stranger, comment_id=comment_id, body="x")) is (
        ErrorCode.NOT_FOUND
    )
    assert error_code(lambda: comment_edit(user=owner, comment_id=10**12, body="x")) is (
        ErrorCode.NOT_FOUND
    )
    assert Comment.objects.get(pk=comment_id).body == "mine"


def test_a_deleted_comment_cannot_be_edited(thread, owner):
    comment_id = post(owner, thread.pk).data["id"]
    comment_delete(user=owner, comment_id=comment_id)

    code = error_code(lambda: comment_edit(user=owner, comment_id=comment_id, body="back"))

    assert code is ErrorCode.CONFLICT


# --- comment_delete ----------------------------------------------------------------------------


def test_the_author_deletes_softly_and_replies_stay(thread, owner, viewer):
    parent = post(viewer, thread.pk, body="mine")
    reply = post(owner, thread.pk, body="reply", parent_id=parent.data["id"])

    result = comment_delete(user=viewer, comment_id=parent.data["id"])

    assert (result.data["deleted"], result.data["body"], result.seq) == (True, "", 5)
    assert Comment.objects.get(pk=reply.data["id"]).parent_id == parent.data["id"]


def test_the_documents_owner_deletes_anyones_comment_an_editor_only_their_own(
    thread, owner, editor, viewer
):
    by_viewer = post(viewer, thread.pk).data["id"]
    by_editor = post(editor, thread.pk).data["id"]

    code = error_code(lambda: comment_delete(user=editor, comment_id=by_viewer))
    comment_delete(user=editor, comment_id=by_editor)
    comment_delete(user=owner, comment_id=by_viewer)

    assert code is ErrorCode.FORBIDDEN
    assert Comment.objects.filter(deleted_at__isnull=False).count() == 2


def test_a_second_delete_is_no_event(thread, owner):
    comment_id = post(owner, thread.pk).data["id"]
    first = comment_delete(user=owner, comment_id=comment_id)

    second = comment_delete(user=owner, comment_id=comment_id)

    assert (first.seq, second.seq) == (4, None)
    assert seqs(thread.pk) == [1, 2, 3, 4]


def test_a_deleted_text_is_gone_from_every_replayed_event(
    thread, owner, editor, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    comment_id = post(editor, thread.pk, body="the secret is @Olive", code="k=SECRET").data["id"]
    comment_edit(user=editor, comment_id=comment_id, body="the secret, again")
    attachment_add(
        user=editor,
        comment_id=comment_id,
        upload=SimpleUploadedFile("secret.txt", b"secret notes"),
    )
    reaction_set(user=owner, comment_id=comment_id, kind="like", present=True)

    comment_delete(user=editor, comment_id=comment_id)

    replay = json.dumps([event.data for event in events_between(thread_id=thread.pk, after=0)])
    assert "secret" not in replay.lower()
    assert types(thread.pk)[2:] == [
        "comments.comment.created",
        "comments.comment.edited",
        "comments.attachment.added",
        "comments.reaction.added",
        "comments.comment.deleted",
    ]
    for notification in selectors.notifications_for(user_id=owner.pk):
        assert selectors.notification_payload(notification)["excerpt"] == ""


# --- comment_moderate --------------------------------------------------------------------------


def test_a_moderator_hides_and_restores_a_comment(thread, owner, editor):
    staff = UserFactory(is_staff=True)
    comment_id = post(editor, thread.pk, body="rude words").data["id"]

    hidden = comment_moderate(moderator=staff, comment_id=comment_id, hidden=True)
    again = comment_moderate(moderator=staff, comment_id=comment_id, hidden=True)
    replay_hidden = json.dumps([e.data for e in events_between(thread_id=thread.pk, after=0)])
    edit = error_code(lambda: comment_edit(user=editor, comment_id=comment_id, body="sorry"))
    restored = comment_moderate(moderator=staff, comment_id=comment_id, hidden=False)
    restored_again = comment_moderate(moderator=staff, comment_id=comment_id, hidden=False)

    assert (hidden.seq, hidden.data["hidden"], hidden.data["body"]) == (4, True, "")
    assert again.seq is None
    assert "rude" not in replay_hidden
    assert edit is ErrorCode.CONFLICT
    assert (restored.seq, restored.data["hidden"], restored.data["body"]) == (
        5,
        False,
        "rude words",
    )
    assert restored_again.seq is None
    assert types(thread.pk)[-2:] == ["comments.comment.hidden", "comments.comment.restored"]
    assert error_code(
        lambda: comment_moderate(moderator=staff, comment_id=10**12, hidden=True)
    ) is (ErrorCode.NOT_FOUND)


# --- reactions ---------------------------------------------------------------------------------


def test_an_unknown_reaction_is_invalid(thread, owner):
    comment_id = thread.comments.get().pk

    for kind in ("thumbsup", "", None, ["like"]):
        code = error_code(
            lambda kind=kind: reaction_set(
                user=owner, comment_id=comment_id, kind=kind, present=True
            )
        )
        assert code is ErrorCode.INVALID


def test_reacting_twice_is_one_reaction_and_one_event(thread, owner, editor):
    comment_id = thread.comments.get().pk

    first = reaction_set(user=editor, comment_id=comment_id, kind="like", present=True)
    second = reaction_set(user=editor, comment_id=comment_id, kind="like", present=True)

    assert (first.seq, second.seq) == (3, None)
    assert Reaction.objects.count() == 1
    assert first.data["reactions"] == [{"kind": "like", "count": 1, "users": [editor.pk]}]
    assert seqs(thread.pk) == [1, 2, 3]


def test_removing_a_reaction_that_is_not_there_is_no_event(thread, owner, editor):
    comment_id = thread.comments.get().pk

    absent = reaction_set(user=editor, comment_id=comment_id, kind="love", present=False)
    reaction_set(user=editor, comment_id=comment_id, kind="love", present=True)
    removed = reaction_set(user=editor, comment_id=comment_id, kind="love", present=False)

    assert absent.seq is None
    assert (removed.seq, removed.data["reactions"]) == (4, [])
    assert types(thread.pk)[-2:] == ["comments.reaction.added", "comments.reaction.removed"]
    assert not Reaction.objects.exists()


def test_a_reaction_notifies_the_author_once_while_unread(thread, owner, editor, viewer):
    comment_id = thread.comments.get().pk

    for _ in range(3):
        reaction_set(user=editor, comment_id=comment_id, kind="like", present=True)
        reaction_set(user=editor, comment_id=comment_id, kind="like", present=False)
    reaction_set(user=viewer, comment_id=comment_id, kind="wow", present=True)
    assert [n.actor for n in notices(owner, "reaction")] == [viewer, editor]

    notifications_mark_read(user=owner)
    reaction_set(user=editor, comment_id=comment_id, kind="love", present=True)
    assert len(notices(owner, "reaction")) == 3


def test_reacting_to_ones_own_comment_notifies_nobody(thread, owner):
    reaction_set(user=owner, comment_id=thread.comments.get().pk, kind="like", present=True)

    assert notices(owner) == []


def test_an_author_who_lost_the_document_is_not_told_of_reactions(document, owner, editor):
    thread_id = start_thread(document, editor).thread["id"]
    comment_id = Comment.objects.get(thread_id=thread_id).pk
    member_remove(user=owner, document_id=document.pk, member_id=editor.pk)

    reaction_set(user=owner, comment_id=comment_id, kind="like", present=True)

    assert notices(editor) == []


def test_no_reactions_on_deleted_comments_and_none_by_strangers(thread, owner, stranger):
    comment_id = post(owner, thread.pk).data["id"]

    code = error_code(
        lambda: reaction_set(user=stranger, comment_id=comment_id, kind="like", present=True)
    )
    comment_delete(user=owner, comment_id=comment_id)
    conflict = error_code(
        lambda: reaction_set(user=owner, comment_id=comment_id, kind="like", present=True)
    )

    assert (code, conflict) == (ErrorCode.NOT_FOUND, ErrorCode.CONFLICT)


# --- thread_resolve ----------------------------------------------------------------------------


def test_a_viewer_resolves_only_a_thread_they_started(document, owner, viewer, thread):
    own = start_thread(document, viewer, key="v").thread["id"]

    code = error_code(lambda: thread_resolve(user=viewer, thread_id=thread.pk, resolved=True))
    result = thread_resolve(user=viewer, thread_id=own, resolved=True)

    assert code is ErrorCode.FORBIDDEN
    assert result.data["thread"]["resolved"]
    assert result.data["thread"]["resolved_by"] == {"id": viewer.pk, "username": "Vera"}


def test_resolving_twice_is_one_event_and_reopening_another(thread, editor, stranger):
    first = thread_resolve(user=editor, thread_id=thread.pk, resolved=True)
    second = thread_resolve(user=editor, thread_id=thread.pk, resolved=True)
    reopened = thread_resolve(user=editor, thread_id=thread.pk, resolved=False)
    code = error_code(lambda: thread_resolve(user=stranger, thread_id=thread.pk, resolved=True))

    assert (first.seq, second.seq, reopened.seq) == (3, None, 4)
    assert first.data["thread"]["seq"] == 3
    assert reopened.data["thread"]["resolved_by"] is None
    assert types(thread.pk)[-2:] == ["comments.thread.resolved", "comments.thread.reopened"]
    assert code is ErrorCode.NOT_FOUND


@pytest.mark.django_db(transaction=True)
def test_resolving_is_heard_on_the_thread_and_on_its_target():
    owner = UserFactory()
    document = document_create(owner=owner, title="Done", content="hello")
    thread_id = start_thread(document, owner).thread["id"]
    groups = [thread_group(thread_id), target_group("document", document.pk)]

    result, heard = listen(
        groups, lambda ear: thread_resolve(user=owner, thread_id=thread_id, resolved=True)
    )

    # One channel in both groups hears it twice; sockets drop the copy by its dedupe key.
    assert [(f["type"], f["stream"], f["seq"]) for f in heard] == [
        ("comments.thread.resolved", thread_group(thread_id), 3)
    ] * 2
    assert heard[0]["data"] == result.data


# --- notifications -----------------------------------------------------------------------------


def test_marking_read_touches_only_ones_own_notifications(thread, owner, editor, viewer):
    post(owner, thread.pk, body="@Eddie @Vera one")
    post(owner, thread.pk, body="@Eddie @Vera two")
    mine = [n.pk for n in notices(editor)]
    theirs = [n.pk for n in notices(viewer)]

    result = notifications_mark_read(user=editor, ids=[mine[0], *theirs, 10**12])

    assert result == {"ids": [mine[0]], "unread": 1}
    assert unread_count(user_id=viewer.pk) == 2
    assert notifications_mark_read(user=editor, ids=[mine[0]]) == {"ids": [], "unread": 1}
    assert notifications_mark_read(user=editor) == {"ids": [mine[1]], "unread": 0}
    assert notifications_mark_read(user=editor) == {"ids": [], "unread": 0}
    assert unread_count(user_id=viewer.pk) == 2


@pytest.mark.parametrize(
    "ids", ["1,2", [1, "2"], [0], [-1], [True], [2**63], list(range(1, 1002)), {"a": 1}]
)
def test_bad_notification_ids_are_invalid(owner, ids):
    assert error_code(lambda: notifications_mark_read(user=owner, ids=ids)) is ErrorCode.INVALID


@pytest.mark.django_db(transaction=True)
def test_marking_read_is_pushed_to_the_users_other_sockets_only_when_something_changed():
    owner = UserFactory()
    document = document_create(owner=owner, title="Read", content="hello")
    friend = share(document, owner, UserFactory(username="pal"))
    thread_id = start_thread(document, owner).thread["id"]
    post(owner, thread_id, body="@pal")
    group = notification_group(friend.pk)

    result, heard = listen([group], lambda ear: notifications_mark_read(user=friend))
    _, heard_again = listen([group], lambda ear: notifications_mark_read(user=friend))

    assert [(f["type"], f["data"]) for f in heard] == [("comments.notifications.read", result)]
    assert heard_again == []


# --- attachments -------------------------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def test_a_png_is_attached_stored_and_announced(media, thread, owner):
    comment_id = thread.comments.get().pk

    result = attachment_add(
        user=owner, comment_id=comment_id, upload=SimpleUploadedFile("../../shot.png", PNG)
    )

    (attachment,) = result.data["attachments"]
    assert (attachment["name"], attachment["size"], attachment["content_type"]) == (
        "shot.png",
        len(PNG),
        "image/png",
    )
    assert attachment["url"] == f"/api/comments/attachments/{attachment['id']}/"
    stored = Attachment.objects.get()
    assert stored.file.path.startswith(str(media))
    assert stored.file.read() == PNG
    assert result.seq == 3
    assert types(thread.pk)[-1] == "comments.attachment.added"


def test_the_type_comes_from_the_bytes_not_the_name(media, thread, owner):
    comment_id = thread.comments.get().pk

    code = error_code(
        lambda: attachment_add(
            user=owner, comment_id=comment_id, upload=SimpleUploadedFile("cat.png", EXE)
        )
    )
    csv = attachment_add(
        user=owner,
        comment_id=comment_id,
        upload=SimpleUploadedFile("t.csv", b"a,b\n1,2\n", content_type="image/png"),
    )

    assert code is ErrorCode.INVALID
    assert [a["content_type"] for a in csv.data["attachments"]] == ["text/csv"]


def test_attachment_size_count_and_author_limits(media, thread, owner, editor, settings):
    settings.COMMENTS_MAX_ATTACHMENT_BYTES = 100
    settings.COMMENTS_MAX_ATTACHMENTS = 2
    comment_id = thread.comments.get().pk

    def add(user, content, name="f.txt"):
        return attachment_add(
            user=user, comment_id=comment_id, upload=SimpleUploadedFile(name, content)
        )

    assert error_code(lambda: add(owner, b"x" * 101)) is ErrorCode.TOO_LARGE
    assert error_code(lambda: add(owner, b"")) is ErrorCode.INVALID
    assert error_code(lambda: add(editor, b"hello")) is ErrorCode.FORBIDDEN
    add(owner, b"x" * 100)
    add(owner, PNG, "p.png")
    assert error_code(lambda: add(owner, b"third")) is ErrorCode.INVALID
    assert Attachment.objects.count() == 2
    assert seqs(thread.pk) == [1, 2, 3, 4]


# --- thread_open and thread_payloads -----------------------------------------------------------


def test_opening_without_since_is_a_snapshot(document, owner, editor):
    thread_id = start_thread(document, owner, anchor={"start": 6, "end": 11, "version": 1}).thread[
        "id"
    ]
    post(editor, thread_id, body="two")
    edit_op(document.pk, owner, ["¡"])

    opening = thread_open(thread_id=thread_id, since=None)

    assert (opening.seq, opening.more, opening.missed) == (3, False, [])
    assert [c["body"] for c in opening.comments] == ["First!", "two"]
    assert opening.thread["anchor"] == {"start": 7, "end": 12, "version": 2}


def test_opening_since_a_seq_replays_what_was_missed(thread, owner):
    post(owner, thread.pk, body="three")
    post(owner, thread.pk, body="four")

    opening = thread_open(thread_id=thread.pk, since=2)
    current = thread_open(thread_id=thread.pk, since=4)

    assert (opening.seq, opening.thread) == (4, None)
    assert [(e.seq, e.data["comment"]["body"]) for e in opening.missed] == [
        (3, "three"),
        (4, "four"),
    ]
    assert (current.seq, current.thread, current.missed) == (4, None, [])


def test_opening_since_a_future_or_too_old_seq_is_a_snapshot(thread, owner, monkeypatch):
    for n in range(4):
        post(owner, thread.pk, body=f"n{n}")
    monkeypatch.setattr(selectors, "MAX_REPLAY", 3)

    for since in (7, 0, 2, -1):
        opening = thread_open(thread_id=thread.pk, since=since)
        assert opening.thread is not None, since
        assert (opening.seq, opening.missed, len(opening.comments)) == (6, [], 5)
    assert thread_open(thread_id=thread.pk, since=3).thread is None
    assert error_code(lambda: thread_open(thread_id=10**12, since=None)) is ErrorCode.NOT_FOUND


def test_a_long_threads_snapshot_holds_its_latest_comments(thread, owner, monkeypatch):
    for n in range(4):
        post(owner, thread.pk, body=f"n{n}")
    monkeypatch.setattr(selectors, "MAX_SNAPSHOT_COMMENTS", 3)

    opening = thread_open(thread_id=thread.pk, since=None)

    assert opening.more
    assert [c["body"] for c in opening.comments] == ["n1", "n2", "n3"]


def test_thread_payloads_move_anchors_on_each_document_through_its_own_ops(owner):
    first = document_create(owner=owner, title="One", content="abcdef")
    second = document_create(owner=owner, title="Two", content="uvwxyz")
    a = start_thread(first, owner, key="a", anchor={"start": 2, "end": 4, "version": 1})
    b = start_thread(second, owner, key="b", anchor={"start": 1, "end": 3, "version": 1})
    plain = start_thread(first, owner, key="c")
    a2 = start_thread(first, owner, key="d", anchor={"start": 0, "end": 6, "version": 1})
    edit_op(first.pk, owner, ["12345"])  # only the first document changes
    edit_op(second.pk, owner, [-1])  # ...and the second loses a letter
    threads = list(
        Thread.objects.filter(pk__in=[t.thread["id"] for t in (a, b, plain, a2)]).order_by("pk")
    )

    payloads = {p["id"]: p["anchor"] for p in thread_payloads(threads)}

    assert payloads == {
        a.thread["id"]: {"start": 7, "end": 9, "version": 2},
        b.thread["id"]: {"start": 0, "end": 2, "version": 2},
        plain.thread["id"]: None,
        # Text typed exactly at an anchor's start stays outside it.
        a2.thread["id"]: {"start": 5, "end": 11, "version": 2},
    }


# --- races -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_anchors_are_read_while_ops_are_being_committed():
    owner = UserFactory()
    document = document_create(owner=owner, title="Typing", content="hello world")
    thread_id = start_thread(document, owner, anchor={"start": 6, "end": 11, "version": 1}).thread[
        "id"
    ]
    typing = threading.Event()

    def work(n: int) -> list[str]:
        if n == 0:
            try:
                for k in range(120):
                    operation_submit(
                        document_id=document.pk,
                        base_version=1 + k,
                        op=["."],
                        client_id="typist",
                        seq=k + 1,
                        user=owner,
                    )
            finally:
                typing.set()
            return []
        failures = []
        while not typing.is_set():
            try:
                thread_payloads([Thread.objects.get(pk=thread_id)])
            except AppError as error:
                failures.append(f"{error.code}: {error}")
            connection.close()  # back to the pool (4 connections), which the typist shares
        return failures

    failures = [f for found in concurrently(2, work) for f in found]

    assert failures == []
    (payload,) = thread_payloads([Thread.objects.get(pk=thread_id)])
    assert payload["anchor"] == {"start": 126, "end": 131, "version": 121}


@pytest.mark.django_db(transaction=True)
def test_moderation_and_the_authors_writes_on_one_comment_do_not_deadlock():
    owner = UserFactory()
    document = document_create(owner=owner, title="Heated", content="hello")
    staff = UserFactory(is_staff=True)
    thread_id = start_thread(document, owner).thread["id"]
    comment_id = post(owner, thread_id, body="v0").data["id"]

    def work(n: int) -> list[str]:
        errors = []
        for k in range(25):
            try:
                if n == 0:
                    comment_moderate(moderator=staff, comment_id=comment_id, hidden=k % 2 == 0)
                else:
                    comment_edit(user=owner, comment_id=comment_id, body=f"v{n}.{k}")
            except AppError as error:
                assert error.code is ErrorCode.CONFLICT  # editing while hidden
            except Exception as error:  # a deadlock is what this test looks for
                errors.append(repr(error))
            connection.close()  # back to the pool (4 connections)
        return errors

    errors = [e for found in concurrently(2, work) for e in found]

    assert errors == []
    assert seqs(thread_id) == list(range(1, Thread.objects.get(pk=thread_id).last_seq + 1))


@pytest.mark.django_db(transaction=True)
def test_deleting_a_document_deletes_its_threads_and_their_files_after_commit(
    owner, settings, tmp_path
):
    from collab.services import document_delete
    from comments.services import thread_delete

    settings.MEDIA_ROOT = tmp_path
    kept = document_create(owner=owner, title="Kept", content="x")
    doomed = document_create(owner=owner, title="Doomed", content="x")
    first = start_thread(doomed, owner, key="a")
    start_thread(doomed, owner, key="b")
    other = start_thread(kept, owner, key="c")
    png = SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, content_type="image/png")
    attachment_add(user=owner, comment_id=first.comment["id"], upload=png)
    stored = Attachment.objects.get().file.path

    with transaction.atomic():
        document_delete(user=owner, document_id=doomed.pk)
        assert Path(stored).exists()  # not before the rows are surely gone

    assert not Path(stored).exists()
    assert list(Thread.objects.values_list("pk", flat=True)) == [other.thread["id"]]
    assert thread_delete(thread_id=other.thread["id"]) is True
    assert thread_delete(thread_id=other.thread["id"]) is False
    assert not Comment.objects.exists() and not ThreadEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_file_whose_row_fails_to_commit_leaves_storage(document, owner, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    comment_id = start_thread(document, owner).comment["id"]
    Thread.objects.all().update(last_seq=10**6)  # its event seq is taken: the insert fails
    ThreadEvent.objects.create(thread_id=Thread.objects.get().pk, seq=10**6 + 1, type="x", data={})
    png = SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, content_type="image/png")

    with pytest.raises(IntegrityError):
        attachment_add(user=owner, comment_id=comment_id, upload=png)

    assert not Attachment.objects.exists()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_the_unread_count_stops_at_its_cap_and_the_list_has_the_exact_number(document, owner):
    from comments.selectors import UNREAD_COUNT_CAP

    thread = start_thread(document, owner).thread
    first = Comment.objects.get()
    fan = UserFactory()
    member_set(user=owner, document_id=document.pk, member_id=fan.pk, role="viewer")
    Notification.objects.bulk_create(
        Notification(
            recipient=owner, kind="reply", actor=fan, thread_id=thread["id"], comment=first
        )
        for _ in range(UNREAD_COUNT_CAP + 5)
    )

    assert unread_count(user_id=owner.pk) == UNREAD_COUNT_CAP
    assert notifications_mark_read(user=owner, ids=None)["unread"] == 0
