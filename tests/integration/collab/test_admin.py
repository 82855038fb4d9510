"""Documents in the admin (collab/admin.py): text and version read-only, the op log untouchable.

Pages are read and forms posted with Django's test client, as a superuser, against documents
made by the services.
"""

from __future__ import annotations

import pytest
from django.test import Client

from collab import ot
from collab.models import Document, DocumentMember, DocumentVersion, Operation, Role
from collab.services import operation_submit, version_create
from tests.factories import DocumentFactory, UserFactory

ADMIN = "/admin/collab/"
REFUSED = (403, 404)


@pytest.fixture
def superuser_client(db) -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def document(db) -> Document:
    """Version 2, with an editor, an op by each, and a named version."""
    document = DocumentFactory(title="Quarterly plan", content="Hello")
    editor = UserFactory()
    DocumentMember.objects.create(document=document, user=editor, role=Role.EDITOR)
    operation_submit(
        document_id=document.pk, base_version=1, op=[5, "!"], client_id="c1", seq=1, user=editor
    )
    version_create(user=editor, document_id=document.pk, name="Before review")
    document.refresh_from_db()
    return document


def change_form(document: Document, **changes: str) -> dict[str, str]:
    """The document change form as the page posts it, members inline included."""
    members = list(document.members.order_by("id"))
    data = {
        "title": document.title,
        "owner": str(document.owner_id),
        "members-TOTAL_FORMS": str(len(members)),
        "members-INITIAL_FORMS": str(len(members)),
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
    }
    for i, member in enumerate(members):
        data |= {
            f"members-{i}-id": str(member.pk),
            f"members-{i}-document": str(document.pk),
            f"members-{i}-user": str(member.user_id),
            f"members-{i}-role": member.role,
        }
    return data | changes


# --- every page loads ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["document", "documentmember", "operation", "documentversion"])
def test_each_list_loads_for_a_superuser(superuser_client, document, model):
    response = superuser_client.get(f"{ADMIN}{model}/")

    assert response.status_code == 200
    assert "Quarterly plan" in response.content.decode()


@pytest.mark.parametrize("model", ["document", "documentmember", "operation", "documentversion"])
def test_each_change_page_loads_for_a_superuser(superuser_client, document, model):
    obj = {
        "document": document,
        "documentmember": document.members.first(),
        "operation": document.operations.first(),
        "documentversion": document.versions.first(),
    }[model]

    response = superuser_client.get(f"{ADMIN}{model}/{obj.pk}/change/")

    assert response.status_code == 200


def test_the_collab_index_lists_the_four_models(superuser_client, db):
    page = superuser_client.get(ADMIN).content.decode()

    for model in ("document", "documentmember", "operation", "documentversion"):
        assert f"{ADMIN}{model}/" in page


def test_the_document_list_shows_title_owner_version_and_searches_titles(
    superuser_client, document, django_assert_max_num_queries
):
    DocumentFactory(title="Unrelated")
    for _ in range(10):
        DocumentFactory(content="x" * 1000)

    with django_assert_max_num_queries(8):  # session, user, counts, the page: not one per row
        page = superuser_client.get(f"{ADMIN}document/").content.decode()
    found = superuser_client.get(f"{ADMIN}document/", {"q": "quarterly"}).content.decode()

    assert document.owner.username in page
    assert "Quarterly plan" in found
    assert "Unrelated" not in found


# --- documents: content and version only change through ops --------------------------------------


def test_the_change_form_shows_the_text_but_offers_no_field_for_text_or_version(
    superuser_client, document
):
    page = superuser_client.get(f"{ADMIN}document/{document.pk}/change/").content.decode()

    assert "Hello!" in page
    assert 'name="title"' in page
    assert 'name="content"' not in page
    assert 'name="version"' not in page
    assert 'name="members-0-role"' in page  # the inline


def test_posting_text_or_version_changes_neither(superuser_client, document):
    form = change_form(document, title="Renamed", content="Overwritten", version="99")

    response = superuser_client.post(f"{ADMIN}document/{document.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()
    document.refresh_from_db()
    assert (document.title, document.content, document.version) == ("Renamed", "Hello!", 2)
    text = ""
    for operation in document.operations.order_by("version"):
        text = ot.apply(text, operation.op)
    assert text == document.content


def test_the_inline_changes_a_members_role(superuser_client, document):
    form = change_form(document, **{"members-1-role": "viewer"})

    response = superuser_client.post(f"{ADMIN}document/{document.pk}/change/", form)

    assert response.status_code == 302
    assert document.members.order_by("id")[1].role == Role.VIEWER


@pytest.mark.parametrize(
    "changes", [{"members-0-role": "editor"}, {"members-0-DELETE": "on"}], ids=["demote", "delete"]
)
def test_the_inline_keeps_at_least_one_owner(superuser_client, document, changes):
    response = superuser_client.post(
        f"{ADMIN}document/{document.pk}/change/", change_form(document, **changes)
    )

    assert response.status_code == 200  # the form again, with the error
    assert "A document must keep at least one owner." in response.content.decode()
    assert document.members.filter(role=Role.OWNER).count() == 1


def test_a_document_added_in_the_admin_is_empty_and_its_owner_is_a_member(superuser_client, db):
    owner = UserFactory()
    assert superuser_client.get(f"{ADMIN}document/add/").status_code == 200
    form = {
        "title": "From the admin",
        "owner": str(owner.pk),
        "content": "ignored",
        "version": "7",
        "members-TOTAL_FORMS": "0",
        "members-INITIAL_FORMS": "0",
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
    }

    response = superuser_client.post(f"{ADMIN}document/add/", form)

    assert response.status_code == 302, response.content.decode()
    document = Document.objects.get(title="From the admin")
    assert (document.content, document.version) == ("", 0)
    assert DocumentMember.objects.get(document=document).user == owner
    assert DocumentMember.objects.get(document=document).role == Role.OWNER


def test_a_superuser_may_delete_a_document_with_its_ops(superuser_client, document):
    url = f"{ADMIN}document/{document.pk}/delete/"
    assert superuser_client.get(url).status_code == 200

    response = superuser_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not Document.objects.filter(pk=document.pk).exists()
    assert not Operation.objects.filter(document_id=document.pk).exists()


# --- the op log is read-only ---------------------------------------------------------------------


def test_ops_cannot_be_added(superuser_client, document):
    assert superuser_client.get(f"{ADMIN}operation/add/").status_code in REFUSED
    response = superuser_client.post(
        f"{ADMIN}operation/add/",
        {"document": document.pk, "version": 3, "op": '["x"]', "client_id": "a", "seq": 9},
    )

    assert response.status_code in REFUSED
    assert document.operations.count() == 2
    listing = superuser_client.get(f"{ADMIN}operation/").content.decode()
    assert f"{ADMIN}operation/add/" not in listing


def test_ops_cannot_be_changed(superuser_client, document):
    operation = document.operations.get(version=2)
    page = superuser_client.get(f"{ADMIN}operation/{operation.pk}/change/").content.decode()

    response = superuser_client.post(
        f"{ADMIN}operation/{operation.pk}/change/",
        {"document": document.pk, "version": 2, "op": '["x"]', "client_id": "c1", "seq": 1},
    )

    assert 'name="op"' not in page and 'type="submit"' not in page.split("<form")[-1]
    assert response.status_code in REFUSED
    operation.refresh_from_db()
    assert operation.op == [5, "!"]


def test_ops_cannot_be_deleted(superuser_client, document):
    operation = document.operations.get(version=2)

    single = superuser_client.post(f"{ADMIN}operation/{operation.pk}/delete/", {"post": "yes"})
    bulk = superuser_client.post(
        f"{ADMIN}operation/",
        {"action": "delete_selected", "_selected_action": [operation.pk], "post": "yes"},
    )

    assert single.status_code in REFUSED
    assert bulk.status_code in (200, 302, *REFUSED)
    assert document.operations.count() == 2


# --- saved versions: only the name changes -------------------------------------------------------


def test_a_saved_versions_name_changes_but_not_its_text_or_version(superuser_client, document):
    saved = document.versions.get()
    url = f"{ADMIN}documentversion/{saved.pk}/change/"
    page = superuser_client.get(url).content.decode()

    response = superuser_client.post(
        url, {"name": "Reviewed", "content": "Overwritten", "version": "0", "document": "1"}
    )

    assert 'name="content"' not in page and "Hello!" in page
    assert response.status_code == 302, response.content.decode()
    saved.refresh_from_db()
    assert (saved.name, saved.content, saved.version, saved.document_id) == (
        "Reviewed",
        "Hello!",
        2,
        document.pk,
    )


def test_versions_cannot_be_added_in_the_admin(superuser_client, document):
    assert superuser_client.get(f"{ADMIN}documentversion/add/").status_code in REFUSED
    assert DocumentVersion.objects.count() == 1
