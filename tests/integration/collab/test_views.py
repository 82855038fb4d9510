"""REST for documents (collab/views.py): documents, members, operations and versions.

Every document is made by ``document_create`` and edited by ``operation_submit``, the way the
WebSocket edits it; the REST calls then go through DRF, the services and PostgreSQL for real.
Roles are the four a caller can have: owner, editor, viewer, and stranger (no membership).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from collab import ot
from collab.models import Document, DocumentMember, DocumentVersion, Operation, Role
from collab.selectors import op_applied_data
from collab.services import member_set, operation_submit
from tests.factories import DocumentFactory, UserFactory
from tests.integration.rest import error_of
from tests.integration.ws import next_of

DOCUMENTS = "/api/collab/documents/"
HUGE = "99999999999999999999"
BIGINT_MAX = 2**63 - 1


def doc_url(document_id: int | str, suffix: str = "") -> str:
    return f"{DOCUMENTS}{document_id}/{suffix}"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def replay(document: Document) -> str:
    """The text every stored op gives, applied in order to an empty document."""
    text = ""
    for operation in Operation.objects.filter(document=document).order_by("version"):
        text = ot.apply(text, operation.op)
    return text


@dataclass
class Cast:
    document: Document
    owner: Any
    editor: Any
    viewer: Any
    stranger: Any

    def client(self, role: str) -> APIClient:
        return client_for(getattr(self, role))

    def edit(self, op: list, *, seq: int, base: int | None = None, by: str = "editor") -> int:
        self.document.refresh_from_db()
        return operation_submit(
            document_id=self.document.pk,
            base_version=self.document.version if base is None else base,
            op=op,
            client_id=f"test-{by}",
            seq=seq,
            user=getattr(self, by),
        ).version


@pytest.fixture
def cast(db) -> Cast:
    """A document at version 1 ("Hello") with one member of each role, and a stranger."""
    owner, editor, viewer, stranger = UserFactory.create_batch(4)
    document = DocumentFactory(owner=owner, title="Plan", content="Hello")
    DocumentMember.objects.create(document=document, user=editor, role=Role.EDITOR)
    DocumentMember.objects.create(document=document, user=viewer, role=Role.VIEWER)
    return Cast(document, owner, editor, viewer, stranger)


MEMBERS = ("owner", "editor", "viewer")


# --- who may ask ---------------------------------------------------------------------------------

EVERY_ROUTE = [
    ("get", ""),
    ("patch", ""),
    ("delete", ""),
    ("get", "members/"),
    ("post", "members/"),
    ("delete", "members/{editor}/"),
    ("get", "operations/"),
    ("get", "versions/"),
    ("post", "versions/"),
    ("get", "versions/1/content/"),
    ("post", "versions/0/restore/"),
]
VALID_BODY = {"title": "Renamed", "name": "Draft", "user_id": None, "role": "viewer"}


def call(client: APIClient, cast: Cast, method: str, suffix: str, document_id: Any = None):
    url = doc_url(cast.document.pk if document_id is None else document_id, suffix)
    url = url.format(editor=cast.editor.pk)
    body = {**VALID_BODY, "user_id": cast.stranger.pk}
    return getattr(client, method)(url, body, format="json") if method != "get" else client.get(url)


@pytest.mark.parametrize(("method", "suffix"), [("get", None), ("post", None), *EVERY_ROUTE])
def test_without_credentials_every_route_is_401(cast, method, suffix):
    if suffix is None:
        response = getattr(APIClient(), method)(DOCUMENTS)
    else:
        response = call(APIClient(), cast, method, suffix)

    error_of(response, 401, "unauthenticated")


@pytest.mark.parametrize(("method", "suffix"), EVERY_ROUTE)
def test_a_stranger_gets_404_on_every_route_as_for_a_document_that_does_not_exist(
    cast, method, suffix
):
    stranger = cast.client("stranger")
    missing = Document.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000

    hidden = error_of(call(stranger, cast, method, suffix), 404, "not_found")
    absent = error_of(call(stranger, cast, method, suffix, document_id=missing), 404, "not_found")

    assert hidden == absent
    cast.document.refresh_from_db()
    assert (cast.document.title, cast.document.version) == ("Plan", 1)
    assert DocumentMember.objects.filter(document=cast.document).count() == 3
    assert not DocumentVersion.objects.filter(document=cast.document).exists()


@pytest.mark.parametrize(("method", "suffix"), EVERY_ROUTE)
@pytest.mark.parametrize("document_id", [HUGE, str(BIGINT_MAX), str(BIGINT_MAX + 1), "0"])
def test_ids_past_any_document_are_404_never_500(cast, method, suffix, document_id):
    error_of(call(cast.client("owner"), cast, method, suffix, document_id), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("patch", "", {"title": "Renamed"}),
        ("delete", "", None),
        ("post", "members/", {"user_id": "{stranger}", "role": "viewer"}),
        ("delete", "members/{editor}/", None),
        ("post", "versions/", {"name": "Draft"}),
        ("post", "versions/0/restore/", None),
    ],
)
def test_a_viewer_trying_to_edit_gets_403(cast, method, suffix, body):
    if body and body.get("user_id"):
        body = {**body, "user_id": cast.stranger.pk}
    url = doc_url(cast.document.pk, suffix.format(editor=cast.editor.pk))

    error_of(getattr(cast.client("viewer"), method)(url, body, format="json"), 403, "forbidden")

    cast.document.refresh_from_db()
    assert (cast.document.title, cast.document.content) == ("Plan", "Hello")
    assert DocumentMember.objects.filter(document=cast.document).count() == 3


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("patch", "", {"title": "Renamed"}),
        ("delete", "", None),
        ("post", "members/", {"user_id": "{stranger}", "role": "viewer"}),
        ("delete", "members/{viewer}/", None),
    ],
)
def test_an_editor_may_not_manage_the_document(cast, method, suffix, body):
    if body and body.get("user_id"):
        body = {**body, "user_id": cast.stranger.pk}
    url = doc_url(cast.document.pk, suffix.format(viewer=cast.viewer.pk))

    error_of(getattr(cast.client("editor"), method)(url, body, format="json"), 403, "forbidden")


def test_put_is_not_offered(cast):
    response = cast.client("owner").put(doc_url(cast.document.pk), {"title": "x"}, format="json")

    error_of(response, 405, "method_not_allowed")


# --- documents/ ----------------------------------------------------------------------------------


def test_the_list_holds_only_the_callers_documents_with_their_role(cast):
    DocumentFactory(owner=cast.stranger, title="Not yours")
    mine = DocumentFactory(owner=cast.viewer, title="Viewer's own")

    body = cast.client("viewer").get(DOCUMENTS).json()

    assert body["count"] == 2
    assert body["next"] is None and body["previous"] is None
    by_id = {entry["id"]: entry for entry in body["results"]}
    assert set(by_id) == {cast.document.pk, mine.pk}
    entry = by_id[cast.document.pk]
    assert set(entry) == {
        "id",
        "title",
        "owner",
        "version",
        "role",
        "created_at",
        "updated_at",
    }
    assert entry["title"] == "Plan"
    assert entry["owner"] == {"id": cast.owner.pk, "username": cast.owner.username}
    assert (entry["version"], entry["role"]) == (1, "viewer")
    assert by_id[mine.pk]["role"] == "owner"


@pytest.mark.parametrize("role", MEMBERS)
def test_each_member_sees_their_own_role_in_the_list(cast, role):
    [entry] = cast.client(role).get(DOCUMENTS).json()["results"]

    assert entry["role"] == role


def test_a_user_with_no_documents_gets_an_empty_page(cast):
    assert cast.client("stranger").get(DOCUMENTS).json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_the_list_is_newest_change_first_and_paginated(cast):
    later = DocumentFactory(owner=cast.owner, title="Later")
    cast.edit([5, "!"], seq=1)  # the shared document changes last

    first = cast.client("owner").get(DOCUMENTS, {"limit": 1}).json()
    second = cast.client("owner").get(DOCUMENTS, {"limit": 1, "offset": 1}).json()

    assert first["count"] == 2
    assert [entry["id"] for entry in first["results"]] == [cast.document.pk]
    assert [entry["id"] for entry in second["results"]] == [later.pk]
    assert first["next"] and second["previous"]


def test_listing_takes_the_same_few_queries_for_one_document_or_many(
    cast, django_assert_max_num_queries
):
    client = cast.client("editor")
    with django_assert_max_num_queries(2):  # the count and the page
        assert len(client.get(DOCUMENTS).json()["results"]) == 1

    for n in range(30):
        document = DocumentFactory(owner=UserFactory(), content=f"text {n}")
        member_set(
            user=document.owner, document_id=document.pk, member_id=cast.editor.pk, role="editor"
        )
        member_set(
            user=document.owner, document_id=document.pk, member_id=cast.viewer.pk, role="viewer"
        )

    with django_assert_max_num_queries(2):
        results = client.get(DOCUMENTS).json()["results"]
    assert len(results) == 31
    assert {entry["role"] for entry in results} == {"editor"}
    assert len({entry["owner"]["id"] for entry in results}) == 31


def test_creating_makes_the_caller_owner_and_the_content_the_first_op(cast):
    response = cast.client("stranger").post(
        DOCUMENTS, {"title": "  Notes ", "content": "Hi 👋"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    document = Document.objects.get(pk=body["id"])
    assert body == {
        "id": document.pk,
        "title": "Notes",
        "owner": {"id": cast.stranger.pk, "username": cast.stranger.username},
        "version": 1,
        "role": "owner",
        "content": "Hi 👋",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert (document.owner, document.content, document.version) == (cast.stranger, "Hi 👋", 1)
    assert DocumentMember.objects.get(document=document).role == Role.OWNER
    assert replay(document) == "Hi 👋"
    assert cast.client("stranger").get(doc_url(document.pk)).status_code == 200


@pytest.mark.parametrize("body", [{"title": "Empty"}, {"title": "Empty", "content": ""}])
def test_a_document_created_without_content_is_empty_at_version_0(cast, body):
    response = cast.client("owner").post(DOCUMENTS, body, format="json")

    assert response.status_code == 201
    assert (response.json()["content"], response.json()["version"]) == ("", 0)


def test_whitespace_in_content_is_kept(cast):
    response = cast.client("owner").post(
        DOCUMENTS, {"title": "Poem", "content": "  indented\n"}, format="json"
    )

    assert response.json()["content"] == "  indented\n"


BAD_TITLES = [
    {},
    {"title": ""},
    {"title": "   "},
    {"title": None},
    {"title": ["a"]},
    {"title": {"a": 1}},
    {"title": 7},
    {"title": True},
    {"title": "x" * 201},
    {"title": "a\x00b"},
]


@pytest.mark.parametrize("body", BAD_TITLES, ids=lambda body: repr(body)[:20])
def test_creating_without_a_good_title_is_400_invalid(cast, body):
    error = error_of(cast.client("owner").post(DOCUMENTS, body, format="json"), 400, "invalid")

    assert set(error["details"]["fields"]) == {"title"}
    assert Document.objects.count() == 1


def test_a_title_of_200_characters_is_accepted(cast):
    response = cast.client("owner").post(DOCUMENTS, {"title": "x" * 200}, format="json")

    assert response.status_code == 201


@pytest.mark.parametrize("content", [None, ["a"], 7, False, "a\x00b"])
def test_content_that_is_not_text_is_400_invalid(cast, content):
    body = {"title": "T", "content": content}

    error = error_of(cast.client("owner").post(DOCUMENTS, body, format="json"), 400, "invalid")

    assert set(error["details"]["fields"]) == {"content"}


def test_content_over_the_document_limit_is_413_too_large(cast, settings):
    settings.COLLAB_MAX_DOCUMENT_CHARS = 10
    body = {"title": "T", "content": "x" * 11}

    error_of(cast.client("owner").post(DOCUMENTS, body, format="json"), 413, "too_large")
    assert Document.objects.count() == 1


# --- documents/<id>/ -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", MEMBERS)
def test_every_member_reads_the_document_with_its_content(cast, role):
    response = cast.client(role).get(doc_url(cast.document.pk))

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["title"], body["content"]) == (cast.document.pk, "Plan", "Hello")
    assert (body["version"], body["role"]) == (1, role)


def test_the_owner_renames_the_document(cast):
    response = cast.client("owner").patch(
        doc_url(cast.document.pk), {"title": " Roadmap "}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["role"]) == ("Roadmap", "owner")
    assert response.json()["content"] == "Hello"
    cast.document.refresh_from_db()
    assert cast.document.title == "Roadmap"


@pytest.mark.parametrize("body", BAD_TITLES, ids=lambda body: repr(body)[:20])
def test_renaming_without_a_good_title_is_400_invalid(cast, body):
    response = cast.client("owner").patch(doc_url(cast.document.pk), body, format="json")

    error_of(response, 400, "invalid")
    cast.document.refresh_from_db()
    assert cast.document.title == "Plan"


def test_renaming_changes_neither_content_nor_version(cast):
    body = {"title": "New", "content": "Hacked", "version": 99}

    cast.client("owner").patch(doc_url(cast.document.pk), body, format="json")

    cast.document.refresh_from_db()
    assert (cast.document.title, cast.document.content, cast.document.version) == (
        "New",
        "Hello",
        1,
    )


def test_the_owner_deletes_the_document_with_its_history(cast):
    cast.edit([5, " world"], seq=1)

    response = cast.client("owner").delete(doc_url(cast.document.pk))

    assert response.status_code == 204
    assert not Document.objects.filter(pk=cast.document.pk).exists()
    assert not Operation.objects.filter(document_id=cast.document.pk).exists()
    error_of(cast.client("owner").get(doc_url(cast.document.pk)), 404, "not_found")


# --- documents/<id>/members/ ---------------------------------------------------------------------


@pytest.mark.parametrize("role", MEMBERS)
def test_every_member_lists_the_members(cast, role):
    response = cast.client(role).get(doc_url(cast.document.pk, "members/"))

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert body["results"] == [
        {"user": {"id": user.pk, "username": user.username}, "role": role_}
        for user, role_ in (
            (cast.owner, "owner"),
            (cast.editor, "editor"),
            (cast.viewer, "viewer"),
        )
    ]


def test_listing_members_takes_a_fixed_number_of_queries(cast, django_assert_max_num_queries):
    for user in UserFactory.create_batch(20):
        DocumentMember.objects.create(document=cast.document, user=user, role=Role.VIEWER)

    with django_assert_max_num_queries(4):  # role, document, count, page
        response = cast.client("viewer").get(doc_url(cast.document.pk, "members/"))

    assert response.json()["count"] == 23


def test_the_owner_adds_a_member_who_then_sees_the_document(cast):
    url = doc_url(cast.document.pk, "members/")

    response = cast.client("owner").post(
        url, {"user_id": cast.stranger.pk, "role": "editor"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json() == {
        "user": {"id": cast.stranger.pk, "username": cast.stranger.username},
        "role": "editor",
    }
    assert cast.client("stranger").get(doc_url(cast.document.pk)).json()["role"] == "editor"
    [entry] = cast.client("stranger").get(DOCUMENTS).json()["results"]
    assert entry["id"] == cast.document.pk


def test_the_owner_changes_a_members_role(cast):
    url = doc_url(cast.document.pk, "members/")

    response = cast.client("owner").post(
        url, {"user_id": cast.viewer.pk, "role": "editor"}, format="json"
    )

    assert response.json()["role"] == "editor"
    assert DocumentMember.objects.get(document=cast.document, user=cast.viewer).role == "editor"
    named = cast.client("viewer").post(
        doc_url(cast.document.pk, "versions/"), {"name": "Now I can"}, format="json"
    )
    assert named.status_code == 201


def test_an_owner_may_make_another_owner_and_then_leave(cast):
    url = doc_url(cast.document.pk, "members/")
    owner = cast.client("owner")

    owner.post(url, {"user_id": cast.editor.pk, "role": "owner"}, format="json")
    response = owner.delete(doc_url(cast.document.pk, f"members/{cast.owner.pk}/"))

    assert response.status_code == 204
    error_of(owner.get(doc_url(cast.document.pk)), 404, "not_found")
    assert cast.client("editor").get(doc_url(cast.document.pk)).json()["role"] == "owner"


def test_the_last_owner_can_be_neither_removed_nor_demoted(cast):
    owner = cast.client("owner")

    removed = owner.delete(doc_url(cast.document.pk, f"members/{cast.owner.pk}/"))
    demoted = owner.post(
        doc_url(cast.document.pk, "members/"),
        {"user_id": cast.owner.pk, "role": "editor"},
        format="json",
    )

    error_of(removed, 409, "conflict")
    error_of(demoted, 409, "conflict")
    assert DocumentMember.objects.get(document=cast.document, user=cast.owner).role == "owner"


def test_the_owner_removes_a_member_who_then_gets_404(cast):
    response = cast.client("owner").delete(doc_url(cast.document.pk, f"members/{cast.editor.pk}/"))

    assert response.status_code == 204
    error_of(cast.client("editor").get(doc_url(cast.document.pk)), 404, "not_found")
    assert cast.client("editor").get(DOCUMENTS).json()["count"] == 0


@pytest.mark.parametrize("user_id", ["stranger", "missing", HUGE, str(BIGINT_MAX)])
def test_removing_someone_who_is_not_a_member_is_404(cast, user_id):
    if user_id == "stranger":
        user_id = cast.stranger.pk
    elif user_id == "missing":
        user_id = cast.stranger.pk + 1000

    response = cast.client("owner").delete(doc_url(cast.document.pk, f"members/{user_id}/"))

    error_of(response, 404, "not_found")
    assert DocumentMember.objects.filter(document=cast.document).count() == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "viewer"}, "user_id"),
        ({"user_id": "missing", "role": "viewer"}, "user_id"),
        ({"user_id": 0, "role": "viewer"}, "user_id"),
        ({"user_id": -1, "role": "viewer"}, "user_id"),
        ({"user_id": 1.5, "role": "viewer"}, "user_id"),
        ({"user_id": True, "role": "viewer"}, "user_id"),
        ({"user_id": "abc", "role": "viewer"}, "user_id"),
        ({"user_id": " 1", "role": "viewer"}, "user_id"),
        ({"user_id": None, "role": "viewer"}, "user_id"),
        ({"user_id": HUGE, "role": "viewer"}, "user_id"),
        ({"user_id": "stranger"}, "role"),
        ({"user_id": "stranger", "role": "admin"}, "role"),
        ({"user_id": "stranger", "role": "OWNER"}, "role"),
        ({"user_id": "stranger", "role": ""}, "role"),
        ({"user_id": "stranger", "role": None}, "role"),
    ],
    ids=lambda value: repr(value)[:32],
)
def test_a_bad_member_body_is_400_invalid_never_500(cast, body, field):
    ids = {"missing": cast.stranger.pk + 1000, "stranger": cast.stranger.pk}
    body = {**body, **({"user_id": ids[body["user_id"]]} if body.get("user_id") in ids else {})}

    response = cast.client("owner").post(doc_url(cast.document.pk, "members/"), body, format="json")

    error = error_of(response, 400, "invalid")
    assert set(error["details"]["fields"]) == {field}
    assert DocumentMember.objects.filter(document=cast.document).count() == 3


# --- documents/<id>/operations/ ------------------------------------------------------------------


def ops_of(cast: Cast, role: str = "viewer", **params: Any) -> dict:
    response = cast.client(role).get(doc_url(cast.document.pk, "operations/"), params)
    assert response.status_code == 200, response.content
    return response.json()


def applied(cast: Cast, versions: range) -> list[dict]:
    operations = Operation.objects.filter(document=cast.document, version__in=list(versions))
    return [op_applied_data(op) for op in operations.select_related("author").order_by("version")]


@pytest.fixture
def edited(cast) -> Cast:
    """Versions 1 to 4: "Hello" -> "Hello world" -> "Hello world!" -> "Hi world!",
    the last made at an older base and transformed on the way in."""
    cast.edit([5, " world"], seq=1)
    cast.edit([11, "!"], seq=2, by="owner")
    cast.edit([1, -4, "i"], seq=3, base=2)
    cast.document.refresh_from_db()
    assert (cast.document.content, cast.document.version) == ("Hi world!", 4)
    return cast


@pytest.mark.parametrize("role", MEMBERS)
def test_every_member_reads_all_ops_in_order_as_the_socket_gets_them(edited, role):
    body = ops_of(edited, role)

    assert body == {
        "from": 0,
        "to": 4,
        "version": 4,
        "more": False,
        "results": applied(edited, range(1, 5)),
    }
    assert [op["version"] for op in body["results"]] == [1, 2, 3, 4]
    last = body["results"][-1]
    assert last["op"] == [1, -4, "i"]
    assert (last["client_id"], last["seq"]) == ("test-editor", 3)
    assert last["author"] == {"id": edited.editor.pk, "username": edited.editor.username}
    text = ""
    for op in body["results"]:
        text = ot.apply(text, op["op"])
    assert text == "Hi world!"


@pytest.mark.parametrize(
    ("params", "versions", "to"),
    [
        ({"from": 1}, range(2, 5), 4),
        ({"from": 1, "to": 3}, range(2, 4), 3),
        ({"to": 2}, range(1, 3), 2),
        ({"from": 2, "to": 2}, range(3, 3), 2),
        ({"from": 4}, range(5, 5), 4),
        ({"from": ""}, range(1, 5), 4),  # "from=" is "from" left out
        ({"from": 3, "to": 400}, range(4, 5), 4),  # ``to`` past the current version: up to it
        ({"to": str(BIGINT_MAX)}, range(1, 5), 4),
    ],
)
def test_ops_after_from_up_to_to(edited, params, versions, to):
    body = ops_of(edited, **params)

    assert body["results"] == applied(edited, versions)
    assert (body["from"], body["to"], body["more"]) == (versions.start - 1, to, False)


def test_a_long_range_comes_in_capped_pages(edited, monkeypatch):
    monkeypatch.setattr("collab.views.MAX_OPERATIONS_PAGE", 3)

    first = ops_of(edited)
    second = ops_of(edited, **{"from": first["to"]})

    assert (first["from"], first["to"], first["more"]) == (0, 3, True)
    assert first["results"] == applied(edited, range(1, 4))
    assert (second["from"], second["to"], second["more"]) == (3, 4, False)
    assert second["results"] == applied(edited, range(4, 5))


def test_the_page_cap_is_a_thousand_ops(cast, django_assert_max_num_queries):
    Operation.objects.bulk_create(
        Operation(document=cast.document, version=v, op=["x"], client_id="bulk", seq=v)
        for v in range(2, 1103)
    )
    Document.objects.filter(pk=cast.document.pk).update(version=1102)

    with django_assert_max_num_queries(3):  # role, document, ops (authors joined)
        body = ops_of(cast)

    assert (body["from"], body["to"], body["more"], body["version"]) == (0, 1000, True, 1102)
    assert [op["version"] for op in body["results"]] == list(range(1, 1001))
    assert ops_of(cast, **{"from": 1000})["results"][-1]["version"] == 1102


@pytest.mark.parametrize(
    "params",
    [
        {"from": "-1"},
        {"from": "abc"},
        {"from": "1.5"},
        {"from": "1.0"},
        {"from": " 1"},
        {"from": "+1"},
        {"from": "\u0661"},
        {"from": HUGE},
        {"to": "-1"},
        {"to": "x"},
        {"to": HUGE},
        {"to": "9" * 5000},
        {"from": "3", "to": "2"},
        {"from": "5"},  # past the current version, 4
        {"from": str(BIGINT_MAX)},
    ],
    ids=lambda params: repr(params)[:32],
)
def test_bad_from_or_to_is_400_invalid(edited, params):
    response = edited.client("viewer").get(doc_url(edited.document.pk, "operations/"), params)

    error = error_of(response, 400, "invalid")
    assert set(error["details"]["fields"]) <= {"from", "to"}


def test_a_stranger_with_bad_params_still_gets_404(edited):
    response = edited.client("stranger").get(
        doc_url(edited.document.pk, "operations/"), {"from": "x"}
    )

    error_of(response, 404, "not_found")


# --- documents/<id>/versions/ --------------------------------------------------------------------


def test_an_editor_names_the_current_text(edited):
    response = edited.client("editor").post(
        doc_url(edited.document.pk, "versions/"), {"name": " Before review "}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    saved = DocumentVersion.objects.get(pk=body["id"])
    assert body == {
        "id": saved.pk,
        "version": 4,
        "name": "Before review",
        "created_by": {"id": edited.editor.pk, "username": edited.editor.username},
        "created_at": body["created_at"],
    }
    assert (saved.content, saved.version) == ("Hi world!", 4)


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "  "}, {"name": None}, {"name": 7}, {"name": "x" * 201}],
    ids=lambda body: repr(body)[:20],
)
def test_a_version_without_a_good_name_is_400_invalid(edited, body):
    response = edited.client("owner").post(
        doc_url(edited.document.pk, "versions/"), body, format="json"
    )

    error = error_of(response, 400, "invalid")
    assert set(error["details"]["fields"]) == {"name"}
    assert not DocumentVersion.objects.exists()


def test_versions_list_named_and_periodic_snapshots_newest_first_without_text(cast, settings):
    settings.COLLAB_SNAPSHOT_EVERY = 2
    cast.edit([5, "!"], seq=1)  # version 2: a periodic snapshot
    named = cast.client("owner").post(
        doc_url(cast.document.pk, "versions/"), {"name": "v2"}, format="json"
    )
    cast.edit([6, "?"], seq=2)

    response = cast.client("viewer").get(doc_url(cast.document.pk, "versions/"))

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(v["version"], v["name"]) for v in body["results"]] == [(2, "v2"), (2, "")]
    assert body["results"][0]["id"] == named.json()["id"]
    assert body["results"][0]["created_by"]["id"] == cast.owner.pk
    assert body["results"][1]["created_by"] is None
    assert all("content" not in v for v in body["results"])


def test_listing_versions_takes_a_fixed_number_of_queries(cast, django_assert_max_num_queries):
    for n in range(20):
        DocumentVersion.objects.create(
            document=cast.document, version=1, name=f"n{n}", created_by=cast.editor
        )

    with django_assert_max_num_queries(4):  # role, document, count, page
        response = cast.client("viewer").get(doc_url(cast.document.pk, "versions/"))

    assert response.json()["count"] == 20


@pytest.mark.parametrize("role", MEMBERS)
def test_every_member_reads_the_text_at_any_version(edited, role, settings):
    expected = ["", "Hello", "Hello world", "Hello world!", "Hi world!"]

    for version, text in enumerate(expected):
        url = doc_url(edited.document.pk, f"versions/{version}/content/")
        response = edited.client(role).get(url)
        assert response.status_code == 200, response.content
        assert response.json() == {"version": version, "content": text}


@pytest.mark.parametrize("version", ["5", "1000", str(BIGINT_MAX), HUGE])
def test_the_text_at_a_version_the_document_never_had_is_404(edited, version):
    url = doc_url(edited.document.pk, f"versions/{version}/content/")

    error_of(edited.client("viewer").get(url), 404, "not_found")


@pytest.mark.parametrize("role", ["owner", "editor"])
def test_restoring_commits_a_new_op_that_brings_back_the_old_text(edited, role):
    response = edited.client(role).post(doc_url(edited.document.pk, "versions/2/restore/"))

    assert response.status_code == 200, response.content
    assert response.json() == {"version": 5}
    edited.document.refresh_from_db()
    assert (edited.document.content, edited.document.version) == ("Hello world", 5)
    assert replay(edited.document) == "Hello world"
    restoring = Operation.objects.get(document=edited.document, version=5)
    assert restoring.author == getattr(edited, role)
    assert ot.apply("Hi world!", restoring.op) == "Hello world"
    # History keeps what the restore undid.
    content = edited.client("viewer").get(doc_url(edited.document.pk, "versions/4/content/"))
    assert content.json()["content"] == "Hi world!"
    assert ops_of(edited)["results"][-1] == op_applied_data(restoring)


def test_restoring_a_named_version_brings_back_its_text(edited):
    editor = edited.client("editor")
    saved = editor.post(doc_url(edited.document.pk, "versions/"), {"name": "x"}, format="json")
    edited.edit([9, " Bye."], seq=4)

    restored = editor.post(
        doc_url(edited.document.pk, f"versions/{saved.json()['version']}/restore/")
    )

    assert restored.json() == {"version": 6}
    edited.document.refresh_from_db()
    assert edited.document.content == "Hi world!"
    assert replay(edited.document) == "Hi world!"


def test_restoring_version_0_empties_the_document(edited):
    response = edited.client("editor").post(doc_url(edited.document.pk, "versions/0/restore/"))

    assert response.json() == {"version": 5}
    edited.document.refresh_from_db()
    assert edited.document.content == ""
    assert replay(edited.document) == ""


def test_restoring_the_current_text_commits_nothing(edited):
    response = edited.client("editor").post(doc_url(edited.document.pk, "versions/4/restore/"))

    assert response.json() == {"version": 4}
    assert Operation.objects.filter(document=edited.document).count() == 4


@pytest.mark.parametrize("version", ["5", str(BIGINT_MAX), HUGE])
def test_restoring_a_version_the_document_never_had_is_404(edited, version):
    url = doc_url(edited.document.pk, f"versions/{version}/restore/")

    error_of(edited.client("editor").post(url), 404, "not_found")
    assert Operation.objects.filter(document=edited.document).count() == 4


# --- REST edits reach the sockets ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_restore_over_rest_is_broadcast_to_the_documents_sockets(open_ws):
    owner, watcher = await sync_to_async(UserFactory.create_batch)(2)
    document = await sync_to_async(DocumentFactory)(owner=owner, content="one")
    await sync_to_async(member_set)(
        user=owner, document_id=document.pk, member_id=watcher.pk, role="viewer"
    )
    await sync_to_async(operation_submit)(
        document_id=document.pk, base_version=1, op=[3, " two"], client_id="c", seq=1, user=owner
    )
    comm, _ = await open_ws(watcher, f"/ws/collab/documents/{document.pk}/")
    snapshot = await next_of(comm, "collab.document.snapshot")
    assert (snapshot["data"]["content"], snapshot["data"]["version"]) == ("one two", 2)

    response = await sync_to_async(client_for(owner).post)(
        doc_url(document.pk, "versions/1/restore/")
    )

    assert response.json() == {"version": 3}
    event = await next_of(comm, "collab.op.applied")
    assert (event["seq"], event["data"]["version"]) == (3, 3)
    assert event["data"]["author"] == {"id": owner.pk, "username": owner.username}
    assert ot.apply("one two", event["data"]["op"]) == "one"


# --- the browsable API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix",
    [None, "", "members/", "operations/", "versions/", "versions/1/content/"],
)
def test_the_browsable_api_renders_every_readable_route_with_its_forms(cast, suffix):
    url = DOCUMENTS if suffix is None else doc_url(cast.document.pk, suffix)

    response = cast.client("owner").get(url, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


# --- schema --------------------------------------------------------------------------------------


def test_the_openapi_schema_describes_every_route(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    base = "/api/collab/documents/"

    methods = {
        path: set(schema["paths"][path]) for path in schema["paths"] if path.startswith(base)
    }

    assert methods == {
        base: {"get", "post"},
        f"{base}{{document_id}}/": {"get", "patch", "delete"},
        f"{base}{{document_id}}/members/": {"get", "post"},
        f"{base}{{document_id}}/members/{{user_id}}/": {"delete"},
        f"{base}{{document_id}}/operations/": {"get"},
        f"{base}{{document_id}}/versions/": {"get", "post"},
        f"{base}{{document_id}}/versions/{{version}}/content/": {"get"},
        f"{base}{{document_id}}/versions/{{version}}/restore/": {"post"},
    }
    operations = schema["paths"][f"{base}{{document_id}}/operations/"]["get"]
    assert {(p["name"], p["in"], p["schema"]["type"]) for p in operations["parameters"]} == {
        ("document_id", "path", "integer"),
        ("from", "query", "integer"),
        ("to", "query", "integer"),
    }
    components = schema["components"]["schemas"]
    assert set(components["DocumentOutput"]["properties"]) == {
        "id",
        "title",
        "owner",
        "version",
        "role",
        "created_at",
        "updated_at",
    }
    assert set(components["DocumentDetailOutput"]["properties"]) == (
        set(components["DocumentOutput"]["properties"]) | {"content"}
    )
    assert set(components["OperationOutput"]["properties"]) == {
        "op",
        "version",
        "client_id",
        "seq",
        "author",
    }
    assert "content" not in components["DocumentVersionOutput"]["properties"]
