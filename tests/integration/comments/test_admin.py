"""Comments in the admin (comments/admin.py): everything visible, nothing added or rewritten,
and moderation (hide, restore) only through ``comment_moderate``, by staff allowed to change
comments.

Threads and comments are made by the services; pages are read and actions posted with Django's
test client. The broadcast of a hide is heard on the real channel layer.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from collab.models import DocumentMember, Role
from comments.models import (
    Attachment,
    Comment,
    CommentRevision,
    Notification,
    Reaction,
    Thread,
    ThreadEvent,
)
from comments.services import (
    attachment_add,
    comment_create,
    comment_delete,
    comment_edit,
    comment_moderate,
    reaction_set,
    thread_create,
    thread_group,
    thread_resolve,
)
from tests.factories import DocumentFactory, UserFactory

ADMIN = "/admin/comments/"
REFUSED = (403, 404)
MODELS = (
    "thread",
    "comment",
    "commentrevision",
    "attachment",
    "reaction",
    "notification",
    "threadevent",
)


def staff_client(*, superuser: bool = False, perms: tuple[str, ...] = ()) -> Client:
    staff = UserFactory(is_staff=True, is_superuser=superuser)
    staff.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="comments", codename__in=perms)
    )
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def superuser_client(db) -> Client:
    return staff_client(superuser=True)


@pytest.fixture
def moderator_client(db) -> Client:
    """Staff who may change comments, and so hide and restore them; nothing more."""
    return staff_client(
        perms=(
            "view_thread",
            "view_comment",
            "change_comment",
            "view_commentrevision",
            "view_attachment",
        )
    )


@pytest.fixture
def viewer_client(db) -> Client:
    """Staff who may only look at comments."""
    return staff_client(perms=("view_thread", "view_comment", "delete_thread"))


def make_thread() -> Thread:
    """On a document: the owner's opening comment, an editor's reply (edited once, with a
    file), the owner's reaction to it, and the notifications of both: seq 6."""
    document = DocumentFactory(title="Quarterly plan")
    owner, editor = document.owner, UserFactory(username="eddie")
    DocumentMember.objects.create(document=document, user=editor, role=Role.EDITOR)
    made = thread_create(
        user=owner,
        target_kind="document",
        target_id=document.pk,
        body="Opening words of the thread",
        client_msg_id="t-1",
    )
    reply = comment_create(
        user=editor, thread_id=made.thread["id"], body="A first draft", client_msg_id="c-1"
    )
    comment_edit(user=editor, comment_id=reply.data["id"], body="Rude words in a reply")
    upload = SimpleUploadedFile("notes.txt", b"plain notes\n")
    attachment_add(user=editor, comment_id=reply.data["id"], upload=upload)
    reaction_set(user=owner, comment_id=reply.data["id"], kind="like", present=True)
    return Thread.objects.get(pk=made.thread["id"])


@pytest.fixture
def thread(db, settings, tmp_path) -> Thread:
    settings.MEDIA_ROOT = tmp_path
    return make_thread()


def reply_of(thread: Thread) -> Comment:
    return thread.comments.get(client_msg_id="c-1")


def act(client: Client, action: str, comments: list[Comment]):  # type: ignore[no-untyped-def]
    return client.post(
        f"{ADMIN}comment/",
        {"action": action, "_selected_action": [c.pk for c in comments]},
        follow=True,
    )


# --- every page loads ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_each_list_loads_with_its_records(superuser_client, thread, model):
    shown = {
        "thread": "eddie" if model == "comment" else thread.created_by.username,
        "comment": "Rude words in a reply",
        "commentrevision": "A first draft",
        "attachment": "notes.txt",
        "reaction": "like",
        "notification": "reply",
        "threadevent": "comments.comment.edited",
    }

    response = superuser_client.get(f"{ADMIN}{model}/")

    assert response.status_code == 200
    assert shown[model] in response.content.decode()


@pytest.mark.parametrize("model", MODELS)
def test_each_change_page_loads_read_only(superuser_client, thread, model):
    reply = reply_of(thread)
    obj = {
        "thread": thread,
        "comment": reply,
        "commentrevision": CommentRevision.objects.get(comment=reply),
        "attachment": Attachment.objects.get(comment=reply),
        "reaction": Reaction.objects.get(comment=reply),
        "notification": Notification.objects.get(comment=reply, kind="reply"),
        "threadevent": ThreadEvent.objects.get(thread=thread, seq=3),
    }[model]

    response = superuser_client.get(f"{ADMIN}{model}/{obj.pk}/change/")

    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="_save"' not in page
    assert "<textarea" not in page and 'type="text"' not in page


def test_the_comments_index_lists_every_model(superuser_client, db):
    page = superuser_client.get(ADMIN).content.decode()

    for model in MODELS:
        assert f"{ADMIN}{model}/" in page


# --- threads -------------------------------------------------------------------------------------


def test_the_thread_list_shows_target_state_and_comment_count(superuser_client, thread):
    page = superuser_client.get(f"{ADMIN}thread/").content.decode()

    row = page.split(f'href="{ADMIN}thread/{thread.pk}/change/"')[1].split("</tr>")[0]
    cells = [cell for cell in ("Document", str(thread.target_id), "6", "2") if f">{cell}<" in row]
    assert cells == ["Document", str(thread.target_id), "6", "2"]  # last_seq 6, 2 comments
    assert thread.created_by.username in row


def test_threads_are_searched_by_target_id_and_creator(superuser_client, thread):
    elsewhere = DocumentFactory(title="Other")
    other = thread_create(
        user=elsewhere.owner,
        target_kind="document",
        target_id=elsewhere.pk,
        body="Elsewhere",
        client_msg_id="t-2",
    ).thread

    def listed(term: str) -> set[int]:
        page = superuser_client.get(f"{ADMIN}thread/", {"q": term}).content.decode()
        return {pk for pk in (thread.pk, other["id"]) if f"{ADMIN}thread/{pk}/change/" in page}

    assert listed(str(thread.target_id)) == {thread.pk}
    assert listed(thread.created_by.username) == {thread.pk}
    assert listed(other["created_by"]["username"]) == {other["id"]}
    assert listed("not-a-number") == set()


def test_threads_are_filtered_by_resolved(superuser_client, thread):
    thread_resolve(user=thread.created_by, thread_id=thread.pk, resolved=True)

    resolved = superuser_client.get(f"{ADMIN}thread/", {"resolved": "yes"}).content.decode()
    open_ = superuser_client.get(f"{ADMIN}thread/", {"resolved": "no"}).content.decode()

    assert f"{ADMIN}thread/{thread.pk}/change/" in resolved
    assert f"{ADMIN}thread/{thread.pk}/change/" not in open_


def test_a_threads_page_shows_its_comments_read_only(superuser_client, thread):
    comment_delete(user=thread.created_by, comment_id=thread.comments.order_by("id").first().pk)

    page = superuser_client.get(f"{ADMIN}thread/{thread.pk}/change/").content.decode()

    assert "Rude words in a reply" in page
    assert "eddie" in page
    assert f"{ADMIN}comment/{reply_of(thread).pk}/change/" in page  # where to moderate it
    assert "<textarea" not in page and 'name="comments-0-body"' not in page
    assert page.count('alt="True"') == 1  # the first comment is deleted, nothing is hidden


def test_a_thread_cannot_be_changed(superuser_client, thread):
    response = superuser_client.post(
        f"{ADMIN}thread/{thread.pk}/change/", {"target_id": "1", "last_seq": "99"}
    )

    assert response.status_code in REFUSED
    thread.refresh_from_db()
    assert (thread.last_seq, thread.target_id) != (99, 1)
    assert thread.last_seq == 6


def test_a_superuser_deletes_a_thread_with_everything_in_it(superuser_client, thread):
    url = f"{ADMIN}thread/{thread.pk}/delete/"
    assert superuser_client.get(url).status_code == 200

    response = superuser_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not Thread.objects.filter(pk=thread.pk).exists()
    for model in (Comment, ThreadEvent, Notification, Reaction, Attachment, CommentRevision):
        assert not model.objects.exists(), model


def test_other_staff_cannot_delete_a_thread_even_with_the_permission(viewer_client, thread):
    url = f"{ADMIN}thread/{thread.pk}/delete/"

    assert viewer_client.get(url).status_code in REFUSED
    assert viewer_client.post(url, {"post": "yes"}).status_code in REFUSED
    assert Thread.objects.filter(pk=thread.pk).exists()


# --- nothing is added, comments are never rewritten or deleted -----------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_nothing_can_be_added(superuser_client, thread, model):
    before = ThreadEvent.objects.count(), Comment.objects.count(), Thread.objects.count()

    page = superuser_client.get(f"{ADMIN}{model}/").content.decode()
    response = superuser_client.post(
        f"{ADMIN}{model}/add/",
        {"thread": thread.pk, "seq": "6", "type": "x.y.z", "data": "{}", "body": "forged"},
    )

    assert superuser_client.get(f"{ADMIN}{model}/add/").status_code in REFUSED
    assert response.status_code in REFUSED
    assert f"{ADMIN}{model}/add/" not in page
    assert (ThreadEvent.objects.count(), Comment.objects.count(), Thread.objects.count()) == before


def test_a_comments_words_cannot_be_changed(superuser_client, thread):
    reply = reply_of(thread)

    response = superuser_client.post(
        f"{ADMIN}comment/{reply.pk}/change/", {"body": "Nicer words", "hidden_at": ""}
    )

    assert response.status_code in REFUSED
    reply.refresh_from_db()
    assert reply.body == "Rude words in a reply"


def test_comments_cannot_be_deleted_one_by_one(superuser_client, thread):
    reply = reply_of(thread)

    single = superuser_client.post(f"{ADMIN}comment/{reply.pk}/delete/", {"post": "yes"})
    bulk = superuser_client.post(
        f"{ADMIN}comment/",
        {"action": "delete_selected", "_selected_action": [reply.pk], "post": "yes"},
    )

    assert single.status_code in REFUSED
    assert bulk.status_code in (200, 302)
    assert thread.comments.count() == 2


# --- moderation ----------------------------------------------------------------------------------


def test_hiding_hides_appends_an_event_and_scrubs_the_earlier_ones(moderator_client, thread):
    reply = reply_of(thread)

    response = act(moderator_client, "hide_comments", [reply])

    assert "1 comment was hidden." in response.content.decode()
    reply.refresh_from_db()
    assert reply.hidden_at is not None
    assert reply.hidden_by.has_perm("comments.change_comment")
    assert reply.body == "Rude words in a reply"  # kept, for a restore
    thread.refresh_from_db()
    last = ThreadEvent.objects.get(thread=thread, seq=thread.last_seq)
    assert (last.seq, last.type, last.comment_id) == (7, "comments.comment.hidden", reply.pk)
    assert last.data["comment"]["hidden"] is True
    earlier = ThreadEvent.objects.filter(comment=reply).exclude(pk=last.pk)
    assert {event.type for event in earlier} == {
        "comments.comment.created",
        "comments.comment.edited",
        "comments.attachment.added",
        "comments.reaction.added",
    }
    for event in earlier.exclude(type="comments.reaction.added"):
        assert event.data["comment"]["body"] == "", event.type
        assert event.data["comment"]["attachments"] == [], event.type
    assert "Rude words" not in str(list(ThreadEvent.objects.values_list("data", flat=True)))


def test_restoring_restores_with_an_event_carrying_the_words(moderator_client, thread):
    reply = reply_of(thread)
    act(moderator_client, "hide_comments", [reply])

    response = act(moderator_client, "restore_comments", [reply])

    assert "1 comment was restored." in response.content.decode()
    reply.refresh_from_db()
    assert (reply.hidden_at, reply.hidden_by) == (None, None)
    last = ThreadEvent.objects.filter(thread=thread).order_by("seq").last()
    assert (last.seq, last.type) == (8, "comments.comment.restored")
    assert last.data["comment"]["body"] == "Rude words in a reply"


def test_only_comments_that_change_are_counted(moderator_client, thread):
    first, reply = thread.comments.order_by("id")
    comment_moderate(moderator=None, comment_id=reply.pk, hidden=True)

    response = act(moderator_client, "hide_comments", [first, reply])

    assert "1 comment was hidden." in response.content.decode()
    assert thread.comments.filter(hidden_at__isnull=False).count() == 2
    assert ThreadEvent.objects.filter(type="comments.comment.hidden").count() == 2


def test_several_comments_are_hidden_at_once(moderator_client, thread):
    response = act(moderator_client, "hide_comments", list(thread.comments.all()))

    assert "2 comments were hidden." in response.content.decode()
    events = ThreadEvent.objects.filter(thread=thread, seq__gt=6).order_by("seq")
    assert [(e.seq, e.type) for e in events] == [
        (7, "comments.comment.hidden"),
        (8, "comments.comment.hidden"),
    ]


def test_staff_who_may_only_view_neither_see_nor_run_the_actions(viewer_client, thread):
    reply = reply_of(thread)
    page = viewer_client.get(f"{ADMIN}comment/").content.decode()

    response = act(viewer_client, "hide_comments", [reply])

    assert "hide_comments" not in page and "Hide selected comments" not in page
    assert response.status_code == 200
    reply.refresh_from_db()
    assert reply.hidden_at is None
    assert not ThreadEvent.objects.filter(type="comments.comment.hidden").exists()


def test_moderators_see_the_actions_and_a_view_only_comment_page(moderator_client, thread):
    reply = reply_of(thread)
    listing = moderator_client.get(f"{ADMIN}comment/").content.decode()
    page = moderator_client.get(f"{ADMIN}comment/{reply.pk}/change/").content.decode()

    assert "Hide selected comments" in listing and "Restore selected comments" in listing
    assert "delete_selected" not in listing
    assert "Rude words in a reply" in page and "A first draft" in page  # the revision inline
    assert "notes.txt" in page and "/media/" not in page  # the file is served by the API only
    assert 'name="body"' not in page and 'name="_save"' not in page


def test_comments_are_filtered_by_hidden_and_deleted_and_searched(superuser_client, thread):
    first, reply = thread.comments.order_by("id")
    comment_moderate(moderator=None, comment_id=reply.pk, hidden=True)
    comment_delete(user=thread.created_by, comment_id=first.pk)

    def listed(**query: str) -> set[int]:
        page = superuser_client.get(f"{ADMIN}comment/", query).content.decode()
        return {c.pk for c in (first, reply) if f"{ADMIN}comment/{c.pk}/change/" in page}

    assert listed(hidden="yes") == {reply.pk}
    assert listed(hidden="no") == {first.pk}
    assert listed(deleted="yes") == {first.pk}
    assert listed(thread__target_kind="form") == set()
    assert listed(q="rude") == {reply.pk}
    assert listed(q="eddie") == {reply.pk}


def crowd(thread: Thread, people: int) -> None:
    """``people`` more editors, each with a comment (a reply notice to the owner), an edit, a
    file, and a reaction to the owner's comment (a reaction notice): rows in every list."""
    first = thread.comments.order_by("id").first()
    for n in range(people):
        editor = UserFactory()
        DocumentMember.objects.create(document_id=thread.target_id, user=editor, role=Role.EDITOR)
        made = comment_create(
            user=editor, thread_id=thread.pk, body=f"Draft {n}", client_msg_id=f"m-{n}"
        )
        comment_edit(user=editor, comment_id=made.data["id"], body=f"More words {n}")
        upload = SimpleUploadedFile(f"file-{n}.txt", b"notes\n")
        attachment_add(user=editor, comment_id=made.data["id"], upload=upload)
        reaction_set(user=editor, comment_id=first.pk, kind="love", present=True)


@pytest.mark.parametrize("model", MODELS)
def test_lists_read_as_many_queries_for_many_rows_as_for_few(
    superuser_client, thread, model, django_assert_max_num_queries
):
    url = f"{ADMIN}{model}/"
    crowd(thread, 1)
    with CaptureQueriesContext(connection) as few:
        superuser_client.get(url)
    crowd(thread, 15)

    with django_assert_max_num_queries(len(few)):
        response = superuser_client.get(url)

    assert response.status_code == 200
    assert len(few) <= 8  # session, user, two counts, the page, a filter's choices


# --- the broadcast -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_hide_reaches_the_threads_viewers(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    made = await sync_to_async(make_thread)()
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(thread_group(made.pk), channel)
    client = await sync_to_async(staff_client)(perms=("view_comment", "change_comment"))
    reply = await Comment.objects.aget(thread=made, client_msg_id="c-1")

    await sync_to_async(act)(client, "hide_comments", [reply])

    message = await asyncio.wait_for(layer.receive(channel), timeout=5)
    event = json.loads(message["frame"])
    await layer.group_discard(thread_group(made.pk), channel)
    assert event["type"] == "comments.comment.hidden"
    assert event["seq"] == 7
    assert event["data"]["comment"]["id"] == reply.pk
    assert event["data"]["comment"]["body"] == ""
