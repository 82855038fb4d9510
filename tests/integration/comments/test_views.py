"""REST for comments (comments/views.py): threads, comments, reactions, attachments and
notifications, through DRF, the services and PostgreSQL for real.

Threads sit on a document whose members have each role (owner, editor, viewer); a stranger is
no member. Files go to a temporary MEDIA_ROOT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from collab.models import DocumentMember, Role
from collab.services import operation_submit
from comments import serializers as out
from comments.models import MAX_BODY, Attachment, Comment, Notification, Reaction, Thread
from comments.selectors import (
    attachment_payload,
    comment_of,
    comment_payload,
    notification_payload,
    notifications_for,
    thread_payload,
)
from comments.services import (
    attachment_add,
    comment_create,
    comment_delete,
    comment_edit,
    reaction_set,
    thread_create,
)
from tests.factories import DocumentFactory, UserFactory
from tests.integration.rest import error_of
from tests.integration.ws import next_of

API = "/api/comments/"
HUGE = "99999999999999999999"
BIGINT_MAX = 2**63 - 1
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 200
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def png(name: str = "shot.png", content: bytes = PNG) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="image/png")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@dataclass
class Cast:
    """A document ("Hello", version 1) with a member of each role and a stranger, and one
    thread the owner started on "Hello" with a file on its first comment."""

    document: Any
    owner: Any
    editor: Any
    viewer: Any
    stranger: Any
    thread_id: int
    comment_id: int
    attachment_id: int

    def client(self, role: str) -> APIClient:
        return client_for(getattr(self, role))

    def start(self, role: str = "owner", body: str = "Look", key: str = "t", **extra: Any) -> dict:
        """A thread on the document, its first comment by ``role``."""
        result = thread_create(
            user=getattr(self, role),
            target_kind="document",
            target_id=self.document.pk,
            body=body,
            client_msg_id=key,
            **extra,
        )
        return {"thread": result.thread, "comment": result.comment}

    def say(self, role: str, body: str = "Yes", key: str = "c", **extra: Any) -> dict:
        thread_id = extra.pop("thread_id", self.thread_id)
        return comment_create(
            user=getattr(self, role), thread_id=thread_id, body=body, client_msg_id=key, **extra
        ).data


@pytest.fixture
def cast(db) -> Cast:
    owner, editor, viewer, stranger = UserFactory.create_batch(4)
    document = DocumentFactory(owner=owner, title="Plan", content="Hello")
    DocumentMember.objects.create(document=document, user=editor, role=Role.EDITOR)
    DocumentMember.objects.create(document=document, user=viewer, role=Role.VIEWER)
    started = thread_create(
        user=owner,
        target_kind="document",
        target_id=document.pk,
        body="Is this right?",
        client_msg_id="t-0",
        anchor={"start": 0, "end": 5, "version": 1},
    )
    comment_id = started.comment["id"]
    attachment_add(user=owner, comment_id=comment_id, upload=png())
    attachment_id = Attachment.objects.get(comment_id=comment_id).pk
    return Cast(
        document, owner, editor, viewer, stranger, started.thread["id"], comment_id, attachment_id
    )


# --- who may ask ---------------------------------------------------------------------------------

EVERY_ROUTE = [
    ("get", "threads/?target_kind=document&target_id={document}"),
    ("post", "threads/"),
    ("get", "threads/{thread}/"),
    ("post", "threads/{thread}/resolve/"),
    ("post", "threads/{thread}/reopen/"),
    ("get", "threads/{thread}/events/"),
    ("get", "comments/?thread={thread}"),
    ("get", "comments/?target_kind=document&target_id={document}"),
    ("post", "comments/"),
    ("get", "comments/{comment}/"),
    ("patch", "comments/{comment}/"),
    ("delete", "comments/{comment}/"),
    ("get", "comments/{comment}/revisions/"),
    ("get", "comments/{comment}/reactions/"),
    ("post", "comments/{comment}/reactions/"),
    ("delete", "comments/{comment}/reactions/like/"),
    ("post", "comments/{comment}/attachments/"),
    ("get", "attachments/{attachment}/"),
]
PATH_ID_ROUTES = [(method, route) for method, route in EVERY_ROUTE if "/{" in route]


def call(client: APIClient, cast: Cast, method: str, route: str, missing: bool = False, **ids):
    """The route with a well-formed body, on the cast's objects, on ones that do not exist
    (``missing``) or on the ``ids`` given."""
    ids = {
        "document": cast.document.pk,
        "thread": cast.thread_id,
        "comment": cast.comment_id,
        "attachment": cast.attachment_id,
        **ids,
    }
    if missing:
        ids = {name: value + 1000 for name, value in ids.items()}
    url = API + route.format(**ids)
    if method == "get":
        return client.get(url)
    if route.endswith("attachments/"):
        return client.post(url, {"file": png()}, format="multipart")
    body = {
        "target_kind": "document",
        "target_id": ids["document"],
        "thread_id": ids["thread"],
        "body": "Me too",
        "client_msg_id": "k-1",
        "kind": "like",
    }
    return getattr(client, method)(url, body, format="json")


def state(cast: Cast) -> tuple:
    return (
        list(Thread.objects.values_list("pk", "last_seq", "resolved_at")),
        list(Comment.objects.values_list("pk", "body", "deleted_at")),
        Reaction.objects.count(),
        Attachment.objects.count(),
    )


@pytest.mark.parametrize(("method", "route"), [*EVERY_ROUTE, ("get", "notifications/")])
def test_without_credentials_every_route_is_401(cast, method, route):
    error_of(call(APIClient(), cast, method, route), 401, "unauthenticated")


@pytest.mark.parametrize(("method", "route"), EVERY_ROUTE)
def test_a_stranger_gets_404_on_every_route_as_for_an_object_that_does_not_exist(
    cast, method, route
):
    stranger = cast.client("stranger")
    before = state(cast)

    hidden = error_of(call(stranger, cast, method, route), 404, "not_found")
    absent = error_of(call(stranger, cast, method, route, missing=True), 404, "not_found")

    assert hidden == absent
    assert state(cast) == before


@pytest.mark.parametrize(("method", "route"), PATH_ID_ROUTES)
@pytest.mark.parametrize("huge", [HUGE, str(BIGINT_MAX + 1), str(BIGINT_MAX)])
def test_path_ids_past_any_object_are_404_never_500(cast, method, route, huge):
    response = call(
        cast.client("owner"), cast, method, route, thread=huge, comment=huge, attachment=huge
    )

    error_of(response, 404, "not_found")


def test_a_viewer_comments_and_reacts_but_may_not_resolve_anothers_thread(cast):
    viewer = cast.client("viewer")

    posted = viewer.post(
        f"{API}comments/",
        {"thread_id": cast.thread_id, "body": "Seen", "client_msg_id": "v-1"},
        format="json",
    )
    reacted = viewer.post(
        f"{API}comments/{cast.comment_id}/reactions/", {"kind": "like"}, format="json"
    )
    resolved = viewer.post(f"{API}threads/{cast.thread_id}/resolve/")

    assert posted.status_code == 201
    assert reacted.status_code == 201
    error_of(resolved, 403, "forbidden")
    assert Thread.objects.get(pk=cast.thread_id).resolved_at is None


@pytest.mark.parametrize("role", ["owner", "editor"])
def test_editors_and_owners_resolve_and_reopen_any_thread(cast, role):
    client = cast.client(role)

    resolved = client.post(f"{API}threads/{cast.thread_id}/resolve/")
    again = client.post(f"{API}threads/{cast.thread_id}/resolve/")
    reopened = client.post(f"{API}threads/{cast.thread_id}/reopen/")

    assert resolved.status_code == 200
    body = resolved.json()
    assert body["seq"] == 4  # created, first comment, file, resolved
    assert body["thread"]["resolved"] is True
    assert body["thread"]["resolved_by"] == {
        "id": getattr(cast, role).pk,
        "username": getattr(cast, role).username,
    }
    assert again.json()["seq"] is None
    assert reopened.json()["seq"] == 5
    assert reopened.json()["thread"]["resolved"] is False


def test_a_viewer_resolves_the_thread_they_started(cast):
    mine = cast.start("viewer", key="v-t")

    response = cast.client("viewer").post(f"{API}threads/{mine['thread']['id']}/resolve/")

    assert response.status_code == 200
    assert response.json()["thread"]["resolved"] is True


def test_only_the_author_edits_a_comment(cast):
    reply = cast.say("editor", "Almost", key="e-1")
    url = f"{API}comments/{reply['id']}/"

    for role in ("owner", "viewer"):
        error_of(
            cast.client(role).patch(url, {"body": "Hijacked"}, format="json"), 403, "forbidden"
        )
    edited = cast.client("editor").patch(url, {"body": "Almost right"}, format="json")

    assert edited.status_code == 200
    assert edited.json()["comment"]["body"] == "Almost right"
    assert edited.json()["comment"]["edited_at"] is not None
    assert isinstance(edited.json()["seq"], int)


def test_the_owner_deletes_anyones_comment_an_editor_only_their_own(cast):
    reply = cast.say("viewer", "Secret plan", key="v-1")
    url = f"{API}comments/{reply['id']}/"

    error_of(cast.client("editor").delete(url), 403, "forbidden")
    deleted = cast.client("owner").delete(url)

    assert deleted.status_code == 200
    comment = deleted.json()["comment"]
    assert (comment["id"], comment["deleted"], comment["body"]) == (reply["id"], True, "")
    assert isinstance(deleted.json()["seq"], int)
    assert cast.client("owner").delete(url).json()["seq"] is None  # deleting again changes nothing
    own = cast.say("editor", "Mine", key="e-1")
    assert cast.client("editor").delete(f"{API}comments/{own['id']}/").status_code == 200


# --- threads -------------------------------------------------------------------------------------


def new_thread(cast: Cast, key: str = "t-1", **extra: Any) -> dict:
    return {
        "target_kind": "document",
        "target_id": cast.document.pk,
        "body": "Typo here",
        "client_msg_id": key,
        **extra,
    }


def test_starting_a_thread_answers_it_with_its_first_comment(cast):
    body = new_thread(cast, anchor={"start": 1, "end": 3, "version": 1}, code="x = 1")

    response = cast.client("viewer").post(f"{API}threads/", body, format="json")

    assert response.status_code == 201
    data = response.json()
    assert data["seq"] == 2 and data["duplicate"] is False
    assert data["thread"]["anchor"] == {"start": 1, "end": 3, "version": 1}
    assert data["thread"]["target"] == {"kind": "document", "id": cast.document.pk, "key": ""}
    assert data["thread"]["created_by"]["id"] == cast.viewer.pk
    assert data["comment"]["thread_id"] == data["thread"]["id"]
    assert (data["comment"]["body"], data["comment"]["code"]) == ("Typo here", "x = 1")


def test_starting_a_thread_again_with_the_same_key_answers_200_with_the_original(cast):
    client = cast.client("editor")
    first = client.post(f"{API}threads/", new_thread(cast), format="json")

    again = client.post(f"{API}threads/", new_thread(cast), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["thread"]["id"] == first.json()["thread"]["id"]
    assert again.json()["comment"]["id"] == first.json()["comment"]["id"]
    assert again.json()["seq"] == first.json()["seq"]
    assert Thread.objects.filter(created_by=cast.editor).count() == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"body": ""}, 400, "invalid"),
        ({"body": "   \n"}, 400, "invalid"),
        ({"body": "x" * (MAX_BODY + 1)}, 413, "too_large"),
        ({"body": 7}, 400, "invalid"),
        ({"body": "nul \x00"}, 400, "invalid"),
        ({"target_kind": "planet"}, 400, "invalid"),
        ({"target_id": "seven"}, 400, "invalid"),
        ({"target_id": HUGE}, 400, "invalid"),
        ({"target_id": -1}, 400, "invalid"),
        ({"target_id": True}, 400, "invalid"),
        ({"target_key": "k" * 65}, 400, "invalid"),
        ({"client_msg_id": ""}, 400, "invalid"),
        ({"client_msg_id": "k" * 65}, 400, "invalid"),
        ({"client_msg_id": None}, 400, "invalid"),
        ({"anchor": {"start": 3, "end": 1, "version": 1}}, 400, "invalid"),
        ({"anchor": {"start": "a", "end": 1, "version": 1}}, 400, "invalid"),
        ({"anchor": [0, 1, 1]}, 400, "invalid"),
        ({"anchor": {"start": 0, "end": 1}}, 400, "invalid"),
        ({"code": "c" * 20_001}, 413, "too_large"),
        ({"code": "x", "code_language": "py thon"}, 400, "invalid"),
        ({"code_language": "python"}, 400, "invalid"),
    ],
)
def test_a_bad_thread_is_refused_with_its_code_never_500(cast, change, status, code):
    response = cast.client("owner").post(
        f"{API}threads/", new_thread(cast, **change), format="json"
    )

    error_of(response, status, code)
    assert Thread.objects.count() == 1


def test_listing_threads_needs_a_target(cast):
    client = cast.client("owner")

    for query in ("", "?target_kind=document", f"?target_id={cast.document.pk}"):
        error_of(client.get(f"{API}threads/{query}"), 400, "invalid")
    for query in ("target_id=x", f"target_id={HUGE}", "target_kind=planet&target_id=1"):
        error_of(client.get(f"{API}threads/?target_kind=document&{query}"), 400, "invalid")


def threads_of(client: APIClient, cast: Cast, extra: str = "") -> dict:
    response = client.get(f"{API}threads/?target_kind=document&target_id={cast.document.pk}{extra}")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
def test_every_member_lists_the_targets_threads_newest_first_with_comment_counts(cast, role):
    second = cast.start("editor", key="e-t")
    cast.say("viewer", "One", key="v-1")
    doomed = cast.say("editor", "Two", key="e-1")
    comment_delete(user=cast.editor, comment_id=doomed["id"])
    other = DocumentFactory(owner=cast.owner)
    thread_create(
        user=cast.owner,
        target_kind="document",
        target_id=other.pk,
        body="Elsewhere",
        client_msg_id="o",
    )

    page = threads_of(cast.client(role), cast)

    assert page["count"] == 2
    assert [(t["id"], t["comment_count"]) for t in page["results"]] == [
        (second["thread"]["id"], 1),
        (cast.thread_id, 2),  # the first comment and "One"; the deleted one is not counted
    ]
    assert set(page["results"][0]) == set(out.ThreadListOutputSerializer().fields)


def test_threads_are_paginated(cast):
    for n in range(3):
        cast.start(key=f"t-{n + 1}")

    first = threads_of(cast.client("owner"), cast, "&limit=2")
    rest = threads_of(cast.client("owner"), cast, "&limit=2&offset=2")

    assert (first["count"], len(first["results"]), first["next"] is not None) == (4, 2, True)
    assert (len(rest["results"]), rest["next"]) == (2, None)
    assert {t["id"] for t in first["results"] + rest["results"]} == set(
        Thread.objects.values_list("pk", flat=True)
    )


def test_threads_filter_by_resolved(cast):
    open_ = cast.start(key="t-open")
    cast.client("owner").post(f"{API}threads/{cast.thread_id}/resolve/")
    client = cast.client("viewer")

    resolved = threads_of(client, cast, "&resolved=true")["results"]
    unresolved = threads_of(client, cast, "&resolved=false")["results"]

    assert [t["id"] for t in resolved] == [cast.thread_id]
    assert [t["id"] for t in unresolved] == [open_["thread"]["id"]]
    error_of(
        client.get(f"{API}threads/?target_kind=document&target_id=1&resolved=maybe"),
        400,
        "invalid",
    )


def test_threads_filter_by_target_key(cast):
    keyed = cast.start(key="t-key", target_key="intro")

    only = threads_of(cast.client("owner"), cast, "&target_key=intro")["results"]
    unkeyed = threads_of(cast.client("owner"), cast, "&target_key=")["results"]

    assert [t["id"] for t in only] == [keyed["thread"]["id"]]
    assert [t["id"] for t in unkeyed] == [cast.thread_id]


def test_listing_threads_takes_the_same_few_queries_for_one_or_many(
    cast, django_assert_max_num_queries
):
    for n in range(5):
        cast.start(key=f"t-{n + 1}", anchor={"start": 0, "end": 1, "version": 1})
    client = cast.client("viewer")

    # role, count, page with counts, the document's later ops to move anchors
    with django_assert_max_num_queries(4):
        threads_of(client, cast)


def test_anchors_are_read_moved_to_the_documents_current_version(cast):
    Thread.objects.filter(pk=cast.thread_id).update(anchor_start=2)  # "llo"
    operation_submit(
        document_id=cast.document.pk,
        base_version=1,
        op=["Oh, "],
        client_id="c",
        seq=1,
        user=cast.owner,
    )
    client = cast.client("viewer")

    listed = threads_of(client, cast)["results"][0]
    detail = client.get(f"{API}threads/{cast.thread_id}/").json()

    assert listed["anchor"] == detail["anchor"] == {"start": 6, "end": 9, "version": 2}
    assert set(detail) == set(out.ThreadOutputSerializer().fields)


# --- events: resume over REST --------------------------------------------------------------------


def test_events_after_since_come_in_order_as_the_socket_got_them(cast):
    reply = cast.say("editor", "Two", key="e-1")
    client = cast.client("viewer")

    everything = client.get(f"{API}threads/{cast.thread_id}/events/").json()
    later = client.get(f"{API}threads/{cast.thread_id}/events/?since=3").json()

    assert [e["seq"] for e in everything["results"]] == [1, 2, 3, 4]
    assert [e["type"] for e in everything["results"]] == [
        "comments.thread.created",
        "comments.comment.created",
        "comments.attachment.added",
        "comments.comment.created",
    ]
    assert (everything["from"], everything["to"], everything["seq"], everything["more"]) == (
        0,
        4,
        4,
        False,
    )
    assert later["results"] == [
        {"seq": 4, "type": "comments.comment.created", "data": {"comment": reply}}
    ]
    assert set(later) == set(out.ThreadEventRangeOutputSerializer().fields)


def test_a_long_gap_comes_in_capped_pages(cast, monkeypatch):
    monkeypatch.setattr("comments.views.threads.MAX_EVENTS_PAGE", 2)
    cast.say("editor", "Two", key="e-1")

    first = cast.client("owner").get(f"{API}threads/{cast.thread_id}/events/?since=0").json()
    second = cast.client("owner").get(f"{API}threads/{cast.thread_id}/events/?since=2").json()

    assert ([e["seq"] for e in first["results"]], first["to"], first["more"]) == ([1, 2], 2, True)
    assert ([e["seq"] for e in second["results"]], second["more"]) == ([3, 4], False)


@pytest.mark.parametrize("since", ["4", "-1", "x", HUGE, "1.0"])
def test_since_past_the_threads_last_event_or_not_a_number_is_400_invalid(cast, since):
    response = cast.client("owner").get(f"{API}threads/{cast.thread_id}/events/?since={since}")

    error_of(response, 400, "invalid")


def test_events_of_a_deleted_comment_replay_without_its_text(cast):
    reply = cast.say("editor", "Secret", key="e-1")
    comment_delete(user=cast.editor, comment_id=reply["id"])

    events = cast.client("viewer").get(f"{API}threads/{cast.thread_id}/events/?since=3").json()

    assert "Secret" not in str(events)
    assert [e["type"] for e in events["results"]] == [
        "comments.comment.created",
        "comments.comment.deleted",
    ]


# --- comments ------------------------------------------------------------------------------------


def new_comment(cast: Cast, key: str = "c-1", **extra: Any) -> dict:
    return {"thread_id": cast.thread_id, "body": "Agreed", "client_msg_id": key, **extra}


def test_posting_a_comment_answers_it_with_its_event_seq(cast):
    response = cast.client("editor").post(
        f"{API}comments/", new_comment(cast, code="print(1)", code_language="Python"), format="json"
    )

    assert response.status_code == 201
    data = response.json()
    assert (data["seq"], data["duplicate"]) == (4, False)
    comment = data["comment"]
    assert (comment["body"], comment["code"], comment["code_language"]) == (
        "Agreed",
        "print(1)",
        "python",
    )
    assert comment["author"] == {"id": cast.editor.pk, "username": cast.editor.username}
    assert comment == comment_payload(comment_of(comment["id"]))


def test_posting_a_comment_again_with_the_same_key_answers_200_with_the_original(cast):
    client = cast.client("viewer")
    first = client.post(f"{API}comments/", new_comment(cast), format="json")

    again = client.post(f"{API}comments/", new_comment(cast, body="Other"), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["comment"] == first.json()["comment"]
    assert again.json()["seq"] == first.json()["seq"]
    assert Comment.objects.filter(author=cast.viewer).count() == 1


def test_a_reply_names_its_parent(cast):
    response = cast.client("editor").post(
        f"{API}comments/", new_comment(cast, parent_id=cast.comment_id), format="json"
    )

    assert response.json()["comment"]["parent_id"] == cast.comment_id


def test_a_reply_to_a_comment_of_another_thread_is_400_invalid(cast):
    other = cast.start(key="t-other")

    response = cast.client("editor").post(
        f"{API}comments/", new_comment(cast, parent_id=other["comment"]["id"]), format="json"
    )

    error_of(response, 400, "invalid")


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"body": ""}, 400, "invalid"),
        ({"body": " "}, 400, "invalid"),
        ({"body": "x" * (MAX_BODY + 1)}, 413, "too_large"),
        ({"body": ["x"]}, 400, "invalid"),
        ({"body": None}, 400, "invalid"),
        ({"client_msg_id": ""}, 400, "invalid"),
        ({"client_msg_id": "k" * 65}, 400, "invalid"),
        ({"client_msg_id": 5}, 400, "invalid"),
        ({"thread_id": "x"}, 400, "invalid"),
        ({"thread_id": HUGE}, 400, "invalid"),
        ({"thread_id": str(BIGINT_MAX + 1)}, 400, "invalid"),
        ({"thread_id": None}, 400, "invalid"),
        ({"parent_id": HUGE}, 400, "invalid"),
        ({"parent_id": 0}, 400, "invalid"),
        ({"parent_id": "one"}, 400, "invalid"),
        ({"code": 5}, 400, "invalid"),
        ({"code": "c" * 20_001}, 413, "too_large"),
        ({"code": "x", "code_language": "../../etc"}, 400, "invalid"),
    ],
)
def test_a_bad_comment_is_refused_with_its_code_never_500(cast, change, status, code):
    response = cast.client("editor").post(
        f"{API}comments/", new_comment(cast, **change), format="json"
    )

    error_of(response, status, code)
    assert not Comment.objects.filter(author=cast.editor).exists()


def test_a_body_of_the_maximum_length_is_accepted_as_sent(cast):
    body = " padded " + "x" * (MAX_BODY - 9) + "\n"

    response = cast.client("editor").post(
        f"{API}comments/", new_comment(cast, body=body), format="json"
    )

    assert response.status_code == 201
    assert response.json()["comment"]["body"] == body


def test_comments_list_by_thread_in_order(cast):
    reply = cast.say("viewer", "Two", key="v-1")
    other = cast.start(key="t-other")

    page = cast.client("editor").get(f"{API}comments/?thread={cast.thread_id}").json()
    elsewhere = cast.client("editor").get(f"{API}comments/?thread={other['thread']['id']}").json()

    assert [c["id"] for c in page["results"]] == [cast.comment_id, reply["id"]]
    assert page["results"][1] == reply
    assert [c["id"] for c in elsewhere["results"]] == [other["comment"]["id"]]


def test_comments_list_by_target_holds_only_that_targets_threads(cast):
    other = DocumentFactory(owner=cast.owner)
    thread_create(
        user=cast.owner, target_kind="document", target_id=other.pk, body="Away", client_msg_id="o"
    )
    second = cast.start(key="t-2", target_key="intro")

    url = f"{API}comments/?target_kind=document&target_id={cast.document.pk}"
    everything = cast.client("viewer").get(url).json()
    keyed = cast.client("viewer").get(url + "&target_key=intro").json()

    assert [c["id"] for c in everything["results"]] == [cast.comment_id, second["comment"]["id"]]
    assert [c["id"] for c in keyed["results"]] == [second["comment"]["id"]]


@pytest.mark.parametrize(
    "query",
    ["", "?thread=1&target_kind=document&target_id=1", "?target_kind=document", "?target_id=1"],
)
def test_comments_list_needs_either_a_thread_or_a_target(cast, query):
    error_of(cast.client("owner").get(f"{API}comments/{query}"), 400, "invalid")


def test_comments_are_paginated_in_a_fixed_number_of_queries(cast, django_assert_max_num_queries):
    for n in range(6):
        cast.say("editor", f"@{cast.viewer.username} number {n}", key=f"e-{n}")
        reaction_set(user=cast.viewer, comment_id=cast.comment_id, kind="like", present=True)
    client = cast.client("viewer")

    # thread, role, count, page, then authors' mentions, attachments and reactions prefetched
    with django_assert_max_num_queries(7):
        page = client.get(f"{API}comments/?thread={cast.thread_id}&limit=4").json()

    assert (page["count"], len(page["results"])) == (7, 4)
    assert page["results"][1]["mentions"] == [
        {"id": cast.viewer.pk, "username": cast.viewer.username}
    ]


def test_a_comment_reads_as_its_payload_and_a_deleted_one_without_text(cast):
    reply = cast.say("editor", "Gone soon", key="e-1")
    url = f"{API}comments/{reply['id']}/"

    before = cast.client("viewer").get(url).json()
    comment_delete(user=cast.editor, comment_id=reply["id"])
    after = cast.client("viewer").get(url).json()

    assert before == reply
    assert (after["deleted"], after["body"], after["id"]) == (True, "", reply["id"])


def test_an_edit_keeps_the_snippet_unless_told_and_the_history_lists_earlier_texts(cast):
    reply = cast.say("editor", "First", key="e-1", code="a = 1", code_language="python")
    url = f"{API}comments/{reply['id']}/"
    client = cast.client("editor")

    kept = client.patch(url, {"body": "Second"}, format="json").json()["comment"]
    dropped = client.patch(url, {"body": "Third", "code": ""}, format="json").json()["comment"]
    history = cast.client("viewer").get(f"{url}revisions/").json()

    assert (kept["code"], kept["code_language"]) == ("a = 1", "python")
    assert (dropped["code"], dropped["code_language"]) == ("", "")
    assert [(r["body"], r["code"]) for r in history["results"]] == [
        ("First", "a = 1"),
        ("Second", "a = 1"),
    ]
    assert set(history["results"][0]) == set(out.RevisionOutputSerializer().fields)


def test_an_unchanged_edit_stores_nothing(cast):
    response = cast.client("owner").patch(
        f"{API}comments/{cast.comment_id}/", {"body": "Is this right?"}, format="json"
    )

    assert response.json()["seq"] is None
    assert (
        cast.client("owner").get(f"{API}comments/{cast.comment_id}/revisions/").json()["count"] == 0
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid"),
        ({"body": ""}, 400, "invalid"),
        ({"body": "x" * (MAX_BODY + 1)}, 413, "too_large"),
        ({"body": 1}, 400, "invalid"),
        ({"body": "ok", "code": []}, 400, "invalid"),
        ({"body": "ok", "code_language": "bad lang"}, 400, "invalid"),
    ],
)
def test_a_bad_edit_is_refused_with_its_code(cast, body, status, code):
    response = cast.client("owner").patch(f"{API}comments/{cast.comment_id}/", body, format="json")

    error_of(response, status, code)
    assert Comment.objects.get(pk=cast.comment_id).body == "Is this right?"


def test_a_deleted_comment_has_no_history_and_cannot_be_edited(cast):
    comment_edit(user=cast.owner, comment_id=cast.comment_id, body="Edited once")
    comment_delete(user=cast.owner, comment_id=cast.comment_id)
    url = f"{API}comments/{cast.comment_id}/"

    history = cast.client("owner").get(f"{url}revisions/").json()
    edit = cast.client("owner").patch(url, {"body": "Back"}, format="json")

    assert (history["count"], history["results"]) == (0, [])
    error_of(edit, 409, "conflict")


def test_put_is_not_offered(cast):
    response = cast.client("owner").put(
        f"{API}comments/{cast.comment_id}/", {"body": "x"}, format="json"
    )

    error_of(response, 405, "method_not_allowed")


# --- reactions -----------------------------------------------------------------------------------


def reactions_url(cast: Cast, suffix: str = "") -> str:
    return f"{API}comments/{cast.comment_id}/reactions/{suffix}"


def test_reacting_answers_201_then_200_and_removing_answers_204(cast):
    client = cast.client("viewer")

    added = client.post(reactions_url(cast), {"kind": "love"}, format="json")
    again = client.post(reactions_url(cast), {"kind": "love"}, format="json")
    removed = client.delete(reactions_url(cast, "love/"))
    removed_again = client.delete(reactions_url(cast, "love/"))

    assert (added.status_code, again.status_code) == (201, 200)
    data = added.json()
    assert isinstance(data["seq"], int) and again.json()["seq"] is None
    assert data["reactions"] == [{"kind": "love", "count": 1, "users": [cast.viewer.pk]}]
    assert data["user"] == {"id": cast.viewer.pk, "username": cast.viewer.username}
    assert set(data) == set(out.ReactionChangeOutputSerializer().fields)
    assert (removed.status_code, removed_again.status_code) == (204, 204)
    assert not Reaction.objects.exists()


def test_reactions_list_who_reacted_how(cast):
    reaction_set(user=cast.viewer, comment_id=cast.comment_id, kind="like", present=True)
    reaction_set(user=cast.editor, comment_id=cast.comment_id, kind="wow", present=True)

    page = cast.client("viewer").get(reactions_url(cast)).json()

    assert [(r["kind"], r["user"]["id"]) for r in page["results"]] == [
        ("like", cast.viewer.pk),
        ("wow", cast.editor.pk),
    ]
    assert set(page["results"][0]) == set(out.ReactionOutputSerializer().fields)


@pytest.mark.parametrize("kind", ["thumbs", "", 1, None, "LIKE"])
def test_an_unknown_reaction_kind_is_400_invalid(cast, kind):
    response = cast.client("viewer").post(reactions_url(cast), {"kind": kind}, format="json")

    error_of(response, 400, "invalid")
    error_of(cast.client("viewer").delete(reactions_url(cast, "thumbs/")), 400, "invalid")
    assert not Reaction.objects.exists()


def test_a_deleted_comment_takes_no_reactions_and_lists_none(cast):
    reaction_set(user=cast.viewer, comment_id=cast.comment_id, kind="like", present=True)
    comment_delete(user=cast.owner, comment_id=cast.comment_id)

    listed = cast.client("viewer").get(reactions_url(cast)).json()
    added = cast.client("viewer").post(reactions_url(cast), {"kind": "wow"}, format="json")

    assert (listed["count"], listed["results"]) == (0, [])
    error_of(added, 409, "conflict")


# --- attachments ---------------------------------------------------------------------------------


def upload(client: APIClient, comment_id: int, file: Any):
    return client.post(
        f"{API}comments/{comment_id}/attachments/", {"file": file}, format="multipart"
    )


def test_the_author_attaches_a_png_and_members_download_it(cast):
    reply = cast.say("editor", "See the screenshot", key="e-1")

    response = upload(cast.client("editor"), reply["id"], png("screen shot.png"))

    assert response.status_code == 201
    comment = response.json()["comment"]
    assert isinstance(response.json()["seq"], int)
    (attachment,) = comment["attachments"]
    assert (attachment["name"], attachment["size"], attachment["content_type"]) == (
        "screen shot.png",
        len(PNG),
        "image/png",
    )
    assert attachment["url"] == f"/api/comments/attachments/{attachment['id']}/"
    assert set(attachment) == set(out.AttachmentOutputSerializer().fields)

    download = cast.client("viewer").get(attachment["url"])

    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PNG
    assert download["Content-Type"] == "image/png"
    assert download["Content-Disposition"] == 'attachment; filename="screen shot.png"'
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Length"] == str(len(PNG))


def test_a_download_asking_for_another_type_still_gets_the_file(cast):
    download = cast.client("owner").get(
        f"{API}attachments/{cast.attachment_id}/", HTTP_ACCEPT="image/png"
    )

    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PNG


def test_the_type_is_read_from_the_bytes_not_the_name(cast):
    response = upload(cast.client("owner"), cast.comment_id, png("notes.txt", b"plain words\n"))

    assert response.status_code == 201
    assert response.json()["comment"]["attachments"][-1]["content_type"] == "text/plain"


def test_an_executable_is_refused_with_invalid_even_named_png(cast):
    for name in ("setup.exe", "innocent.png"):
        response = upload(cast.client("owner"), cast.comment_id, png(name, EXE))

        error_of(response, 400, "invalid")
    assert Attachment.objects.count() == 1


def test_a_file_over_the_limit_is_refused_with_too_large(cast, settings):
    settings.COMMENTS_MAX_ATTACHMENT_BYTES = 100

    response = upload(cast.client("owner"), cast.comment_id, png())

    error_of(response, 413, "too_large")
    assert Attachment.objects.count() == 1


def test_a_body_far_over_the_limit_is_refused_before_it_is_parsed(cast, settings, monkeypatch):
    settings.COMMENTS_MAX_ATTACHMENT_BYTES = 100
    monkeypatch.setattr("comments.views.base.MULTIPART_OVERHEAD", 1000)

    def never(*args, **kwargs):
        raise AssertionError("the upload was parsed")

    monkeypatch.setattr("rest_framework.parsers.MultiPartParser.parse", never)

    response = upload(cast.client("owner"), cast.comment_id, png(content=PNG * 10))

    error_of(response, 413, "too_large")


def test_a_file_over_a_megabyte_within_the_limit_is_taken(cast):
    big = PNG + b"\x00" * 1_500_000

    response = upload(cast.client("owner"), cast.comment_id, png(content=big))

    assert response.status_code == 201
    assert Attachment.objects.order_by("-pk").first().size == len(big)


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_the_author_attaches_files(cast, role):
    error_of(upload(cast.client(role), cast.comment_id, png()), 403, "forbidden")


def test_an_upload_without_a_file_is_400_invalid(cast):
    client = cast.client("owner")
    url = f"{API}comments/{cast.comment_id}/attachments/"

    error_of(client.post(url, {"other": "x"}, format="multipart"), 400, "invalid")
    error_of(client.post(url, {"file": "not a file"}, format="multipart"), 400, "invalid")
    error_of(client.post(url, {"file": png(content=b"")}, format="multipart"), 400, "invalid")
    error_of(client.post(url, {"file": 1}, format="json"), 400, "invalid")


def test_a_file_of_a_deleted_or_hidden_comment_is_404(cast):
    url = f"{API}attachments/{cast.attachment_id}/"
    assert cast.client("viewer").get(url).status_code == 200
    Comment.objects.filter(pk=cast.comment_id).update(hidden_at="2026-01-01T00:00Z")
    error_of(cast.client("viewer").get(url), 404, "not_found")
    Comment.objects.filter(pk=cast.comment_id).update(hidden_at=None)

    comment_delete(user=cast.owner, comment_id=cast.comment_id)

    error_of(cast.client("owner").get(url), 404, "not_found")


def test_a_file_missing_from_storage_is_404_not_500(cast):
    Attachment.objects.get(pk=cast.attachment_id).file.delete(save=False)

    error_of(cast.client("owner").get(f"{API}attachments/{cast.attachment_id}/"), 404, "not_found")


# --- notifications -------------------------------------------------------------------------------


def test_notifications_are_the_callers_own_with_the_unread_count(cast):
    cast.say("editor", f"@{cast.viewer.username} look", key="e-1")  # mentions the viewer
    cast.say("viewer", "ok", key="v-1")  # a reply to the owner's thread

    mine = cast.client("viewer").get(f"{API}notifications/").json()
    owners = cast.client("owner").get(f"{API}notifications/").json()
    strangers = cast.client("stranger").get(f"{API}notifications/").json()

    assert [(n["kind"], n["actor"]["id"]) for n in mine["results"]] == [("mention", cast.editor.pk)]
    assert mine["unread"] == 1
    assert [n["kind"] for n in owners["results"]] == ["reply", "reply"]
    assert (strangers["count"], strangers["unread"], strangers["results"]) == (0, 0, [])
    expected = [notification_payload(n) for n in notifications_for(user_id=cast.viewer.pk)]
    assert mine["results"] == expected


def test_a_notification_from_a_target_one_has_lost_lists_without_its_text(cast):
    cast.say("editor", f"@{cast.viewer.username} the secret plan", key="e-1")
    DocumentMember.objects.filter(document=cast.document, user=cast.viewer).delete()

    listed = cast.client("viewer").get(f"{API}notifications/").json()

    assert [(n["kind"], n["excerpt"]) for n in listed["results"]] == [("mention", "")]


def test_notifications_filter_unread_and_mark_read(cast):
    for n in range(3):
        cast.say("editor", f"reply {n}", key=f"e-{n}")  # each notifies the owner
    ids = list(
        Notification.objects.filter(recipient=cast.owner)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    theirs = cast.say("owner", f"@{cast.viewer.username}", key="o-1")
    viewer_ids = list(
        Notification.objects.filter(recipient=cast.viewer).values_list("pk", flat=True)
    )
    assert theirs and viewer_ids
    client = cast.client("owner")

    marked = client.post(f"{API}notifications/read/", {"ids": [ids[0], *viewer_ids]}, format="json")
    unread = client.get(f"{API}notifications/?unread=true").json()
    read = client.get(f"{API}notifications/?unread=false").json()
    everything = client.post(f"{API}notifications/read-all/").json()

    assert marked.json() == {"ids": [ids[0]], "unread": 2}  # the viewer's id is ignored
    assert [n["id"] for n in unread["results"]] == [ids[2], ids[1]]
    assert unread["unread"] == 2
    assert [n["id"] for n in read["results"]] == [ids[0]]
    assert everything == {"ids": [ids[1], ids[2]], "unread": 0}
    assert Notification.objects.filter(recipient=cast.viewer, read_at__isnull=True).count() == 1


def test_notifications_are_paginated(cast):
    for n in range(3):
        cast.say("editor", f"reply {n}", key=f"e-{n}")

    page = cast.client("owner").get(f"{API}notifications/?limit=2").json()

    assert (page["count"], len(page["results"]), page["unread"]) == (3, 2, 3)
    assert page["next"] is not None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": "1"},
        {"ids": [0]},
        {"ids": ["x"]},
        {"ids": [HUGE]},
        {"ids": list(range(1, 1002))},
    ],
)
def test_marking_bad_ids_is_400_invalid(cast, body):
    error_of(
        cast.client("owner").post(f"{API}notifications/read/", body, format="json"), 400, "invalid"
    )


def test_a_bad_unread_filter_is_400_invalid(cast):
    error_of(cast.client("owner").get(f"{API}notifications/?unread=perhaps"), 400, "invalid")


# --- rate limits ---------------------------------------------------------------------------------


def test_writes_share_one_rate_and_reads_stay_open(cast, settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "comments_write": "3/min"},
    }
    client = cast.client("owner")

    assert client.post(f"{API}comments/", new_comment(cast, "a"), format="json").status_code == 201
    assert client.post(reactions_url(cast), {"kind": "like"}, format="json").status_code == 201
    assert client.post(f"{API}threads/{cast.thread_id}/resolve/").status_code == 200
    limited = client.post(f"{API}comments/", new_comment(cast, "b"), format="json")

    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1
    assert client.get(f"{API}comments/?thread={cast.thread_id}").status_code == 200
    assert (
        cast.client("editor").post(reactions_url(cast), {"kind": "wow"}, format="json").status_code
        == 201
    )


# --- what REST writes reaches the sockets --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_comment_posted_over_rest_reaches_the_threads_sockets(open_ws):
    owner, watcher = await sync_to_async(UserFactory.create_batch)(2)
    document = await sync_to_async(DocumentFactory)(owner=owner, content="one")
    await sync_to_async(DocumentMember.objects.create)(
        document=document, user=watcher, role=Role.VIEWER
    )
    started = await sync_to_async(thread_create)(
        user=owner, target_kind="document", target_id=document.pk, body="Hi", client_msg_id="t"
    )
    thread_id = started.thread["id"]
    comm, _ = await open_ws(watcher, f"/ws/comments/threads/{thread_id}/")
    await next_of(comm, "comments.thread.snapshot")

    response = await sync_to_async(client_for(owner).post)(
        f"{API}comments/",
        {"thread_id": thread_id, "body": "Over REST", "client_msg_id": "r-1"},
        format="json",
    )

    event = await next_of(comm, "comments.comment.created")
    assert event["seq"] == response.json()["seq"] == 3
    assert event["data"] == {"comment": response.json()["comment"]}


# --- the browsable API and the schema ------------------------------------------------------------


@pytest.mark.parametrize(
    "route",
    [
        "threads/?target_kind=document&target_id={document}",
        "threads/{thread}/",
        "threads/{thread}/events/",
        "comments/?thread={thread}",
        "comments/{comment}/",
        "comments/{comment}/revisions/",
        "comments/{comment}/reactions/",
        "notifications/",
    ],
)
def test_the_browsable_api_renders_every_readable_route(cast, route):
    url = API + route.format(
        document=cast.document.pk, thread=cast.thread_id, comment=cast.comment_id
    )

    response = cast.client("owner").get(url, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_the_output_serializers_describe_exactly_the_payloads(cast):
    """The views answer with the selectors' dicts; the schema is drawn from these serializers."""
    reaction_set(user=cast.viewer, comment_id=cast.comment_id, kind="like", present=True)
    comment = comment_of(cast.comment_id)
    thread = Thread.objects.get(pk=cast.thread_id)
    cast.say("editor", f"@{cast.owner.username}", key="e-1")
    notification = notifications_for(user_id=cast.owner.pk).first()
    payload = comment_payload(comment)

    def fields(serializer) -> set[str]:
        return set(serializer().fields)

    assert fields(out.CommentOutputSerializer) == set(payload)
    assert fields(out.ThreadOutputSerializer) == set(thread_payload(thread))
    assert fields(out.ThreadListOutputSerializer) == set(thread_payload(thread)) | {"comment_count"}
    assert fields(out.AttachmentOutputSerializer) == set(
        attachment_payload(comment.attachments.get())
    )
    assert fields(out.ReactionSummaryOutputSerializer) == set(payload["reactions"][0])
    assert fields(out.TargetOutputSerializer) == set(thread_payload(thread)["target"])
    assert fields(out.AnchorOutputSerializer) == set(thread_payload(thread)["anchor"])
    assert fields(out.NotificationOutputSerializer) == set(notification_payload(notification))
    removed = reaction_set(user=cast.viewer, comment_id=cast.comment_id, kind="like", present=False)
    assert fields(out.ReactionChangeOutputSerializer) == set(removed.data) | {"seq"}


def test_the_openapi_schema_describes_every_route(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()

    methods = {
        path[len(API) :]: set(schema["paths"][path])
        for path in schema["paths"]
        if path.startswith(API)
    }

    assert methods == {
        "threads/": {"get", "post"},
        "threads/{thread_id}/": {"get"},
        "threads/{thread_id}/resolve/": {"post"},
        "threads/{thread_id}/reopen/": {"post"},
        "threads/{thread_id}/events/": {"get"},
        "comments/": {"get", "post"},
        "comments/{comment_id}/": {"get", "patch", "delete"},
        "comments/{comment_id}/revisions/": {"get"},
        "comments/{comment_id}/reactions/": {"get", "post"},
        "comments/{comment_id}/reactions/{kind}/": {"delete"},
        "comments/{comment_id}/attachments/": {"post"},
        "attachments/{attachment_id}/": {"get"},
        "notifications/": {"get"},
        "notifications/read/": {"post"},
        "notifications/read-all/": {"post"},
    }
    events = schema["paths"][f"{API}threads/{{thread_id}}/events/"]["get"]
    assert {(p["name"], p["in"], p["schema"]["type"]) for p in events["parameters"]} == {
        ("thread_id", "path", "integer"),
        ("since", "query", "integer"),
    }
    upload = schema["paths"][f"{API}comments/{{comment_id}}/attachments/"]["post"]
    assert set(upload["requestBody"]["content"]) == {"multipart/form-data"}
    components = schema["components"]["schemas"]
    assert "unread" in components["PaginatedNotificationOutputList"]["properties"]
    assert set(components["CommentOutput"]["properties"]) == set(
        out.CommentOutputSerializer().fields
    )
