"""REST for forms (forms_live/views/): forms, members, fields, changes, conflicts, submissions,
the CSV export and analytics, through DRF, the services and PostgreSQL for real.

A published form ("Sign-up", manual policy) has a member of each role (owner, editor, viewer),
two fields, one open conflict on a label, and a respondent's sent submission; a stranger is no
member, and a respondent is no member either.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.test import AsyncClient
from django.utils import timezone
from rest_framework.test import APIClient

from forms_live import serializers as out
from forms_live.analytics import FormStats
from forms_live.models import FieldConflict, Form, FormChange, FormField, FormMember, Submission
from forms_live.selectors import (
    conflict_payload,
    field_payload,
    form_payload,
    submission_payload,
)
from forms_live.services import (
    field_add,
    field_change,
    form_change,
    form_create,
    form_viewed,
    member_set,
    submission_set_status,
    submission_start,
    submission_submit,
    submission_update,
)
from tests.factories import UserFactory
from tests.integration.rest import error_of

API = "/api/"
HUGE = "99999999999999999999"
BIGINT_MAX = 2**63 - 1
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@dataclass
class Cast:
    form: Form
    owner: Any
    editor: Any
    viewer: Any
    stranger: Any
    respondent: Any
    conflict_id: int
    submission_id: int

    def client(self, role: str) -> APIClient:
        return client_for(getattr(self, role))

    @property
    def url(self) -> str:
        return f"{API}forms/{self.form.pk}/"

    def revision(self) -> int:
        return Form.objects.get(pk=self.form.pk).revision


def new_form(owner, policy: str = "merge", *, members: dict | None = None, **extra: Any) -> Form:
    form = form_create(owner=owner, title="Sign-up", conflict_policy=policy, **extra)
    for role, user in (members or {}).items():
        member_set(user=owner, form_id=form.pk, member_id=user.pk, role=role)
    return form


def add(user, form: Form, key: str, type_: str = "text", **extra: Any) -> int:
    base = Form.objects.get(pk=form.pk).revision
    return field_add(
        user=user,
        form_id=form.pk,
        base_revision=base,
        client_msg_id=f"add-{key}",
        key=key,
        type=type_,
        label=extra.pop("label", key.title()),
        **extra,
    ).revision


def publish(owner, form: Form) -> None:
    base = Form.objects.get(pk=form.pk).revision
    form_change(
        user=owner,
        form_id=form.pk,
        base_revision=base,
        client_msg_id="publish",
        prop="status",
        value="published",
    )


def answer(user, form: Form, values: dict, *, submit: bool = True, agent: str = FIREFOX) -> Any:
    submission = submission_start(user=user, form_id=form.pk, user_agent=agent)
    if values:
        submission_update(user=user, form_id=form.pk, token=submission.token, values=values)
    if submit:
        submission_submit(user=user, form_id=form.pk, token=submission.token)
    return Submission.objects.get(pk=submission.pk)


@pytest.fixture
def cast(db) -> Cast:
    owner, editor, viewer, stranger, respondent = UserFactory.create_batch(5)
    form = new_form(owner, "manual", members={"editor": editor, "viewer": viewer})
    add(owner, form, "email", "email", required=True)  # r1
    add(owner, form, "name")  # r2
    publish(owner, form)  # r3
    change = {"form_id": form.pk, "base_revision": 3, "key": "name", "prop": "label"}
    field_change(user=owner, client_msg_id="o-1", value="Full name", **change)  # r4
    opened = field_change(user=editor, client_msg_id="e-1", value="Your name", **change)  # r5
    sent = answer(respondent, form, {"email": "ann@example.com", "name": "Ann"})
    return Cast(
        form,
        owner,
        editor,
        viewer,
        stranger,
        respondent,
        opened.data["conflict"]["id"],
        sent.pk,
    )


# --- who may ask ---------------------------------------------------------------------------------

EVERY_ROUTE = [
    ("get", "forms/{form}/"),
    ("patch", "forms/{form}/"),
    ("delete", "forms/{form}/"),
    ("get", "forms/{form}/members/"),
    ("post", "forms/{form}/members/"),
    ("delete", "forms/{form}/members/{member}/"),
    ("get", "forms/{form}/fields/"),
    ("post", "forms/{form}/fields/"),
    ("patch", "forms/{form}/fields/name/"),
    ("post", "forms/{form}/fields/name/move/"),
    ("delete", "forms/{form}/fields/name/?base_revision=5&client_msg_id=k-1"),
    ("get", "forms/{form}/changes/"),
    ("get", "forms/{form}/conflicts/"),
    ("post", "forms/{form}/conflicts/{conflict}/resolve/"),
    ("get", "forms/{form}/submissions/"),
    ("get", "forms/{form}/submissions/{submission}/"),
    ("post", "forms/{form}/submissions/{submission}/status/"),
    ("get", "forms/{form}/submissions/export/"),
    ("get", "forms/{form}/analytics/"),
]
PATH_ID_ROUTES = [(method, route) for method, route in EVERY_ROUTE if "{" in route]
BUILD_ROUTES = [
    ("post", "forms/{form}/fields/"),
    ("patch", "forms/{form}/fields/name/"),
    ("post", "forms/{form}/fields/name/move/"),
    ("delete", "forms/{form}/fields/name/?base_revision=5&client_msg_id=k-1"),
    ("get", "forms/{form}/conflicts/"),
    ("post", "forms/{form}/conflicts/{conflict}/resolve/"),
    ("get", "forms/{form}/submissions/"),
    ("get", "forms/{form}/submissions/{submission}/"),
    ("post", "forms/{form}/submissions/{submission}/status/"),
    ("get", "forms/{form}/submissions/export/"),
    ("get", "forms/{form}/analytics/"),
]
OWNER_ROUTES = [
    ("delete", "forms/{form}/"),
    ("post", "forms/{form}/members/"),
    ("delete", "forms/{form}/members/{member}/"),
]


def call(client: APIClient, cast: Cast, method: str, route: str, missing: bool = False, **ids):
    """The route with a well-formed body, on the cast's objects, on ones that do not exist
    (``missing``) or on the ``ids`` given."""
    ids = {
        "form": cast.form.pk,
        "member": cast.viewer.pk,
        "conflict": cast.conflict_id,
        "submission": cast.submission_id,
        **ids,
    }
    if missing:
        ids = {name: int(value) + 1000 for name, value in ids.items()}
    url = API + route.format(**ids)
    if method in ("get", "delete"):
        return getattr(client, method)(url)
    body = {
        "title": "Renamed",
        "base_revision": 5,
        "client_msg_id": "k-1",
        "prop": "label" if "fields" in route else "title",
        "value": "Changed",
        "key": "age",
        "type": "number",
        "label": "Age",
        "position": 0,
        "user_id": cast.stranger.pk,
        "role": "editor",
        "resolution": "proposed",
        "status": "completed",
    }
    return getattr(client, method)(url, body, format="json")


def state(cast: Cast) -> tuple:
    return (
        list(Form.objects.values_list("pk", "title", "status", "revision")),
        list(FormMember.objects.values_list("user_id", "role")),
        list(FormField.objects.values_list("key", "label", "position")),
        list(FieldConflict.objects.values_list("pk", "status")),
        list(Submission.objects.values_list("pk", "status", "revision")),
        FormChange.objects.count(),
    )


@pytest.mark.parametrize(("method", "route"), [*EVERY_ROUTE, ("get", "forms/"), ("post", "forms/")])
def test_without_credentials_every_route_is_401(cast, method, route):
    error_of(call(APIClient(), cast, method, route), 401, "unauthenticated")


@pytest.mark.parametrize(("method", "route"), EVERY_ROUTE)
@pytest.mark.parametrize("who", ["stranger", "respondent"])
def test_a_non_member_gets_404_on_every_route_as_for_a_form_that_does_not_exist(
    cast, method, route, who
):
    client = cast.client(who)
    before = state(cast)

    hidden = error_of(call(client, cast, method, route), 404, "not_found")
    absent = error_of(call(client, cast, method, route, missing=True), 404, "not_found")

    assert hidden == absent
    assert state(cast) == before


@pytest.mark.parametrize(("method", "route"), PATH_ID_ROUTES)
@pytest.mark.parametrize("huge", [HUGE, str(BIGINT_MAX + 1), str(BIGINT_MAX)])
def test_path_ids_past_any_object_are_404_never_500(cast, method, route, huge):
    response = call(
        cast.client("owner"), cast, method, route, form=huge, conflict=huge, submission=huge
    )

    error_of(response, 404, "not_found")


@pytest.mark.parametrize(("method", "route"), BUILD_ROUTES)
def test_a_viewer_may_not_build_or_see_submissions(cast, method, route):
    before = state(cast)

    error_of(call(cast.client("viewer"), cast, method, route), 403, "forbidden")

    assert state(cast) == before


@pytest.mark.parametrize(("method", "route"), OWNER_ROUTES)
def test_an_editor_may_not_do_what_only_owners_do(cast, method, route):
    before = state(cast)

    error_of(call(cast.client("editor"), cast, method, route), 403, "forbidden")

    assert state(cast) == before


@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
def test_every_member_reads_the_form_its_fields_members_and_changes(cast, role):
    client = cast.client(role)

    form = client.get(cast.url)
    fields = client.get(f"{cast.url}fields/")
    members = client.get(f"{cast.url}members/")
    changes = client.get(f"{cast.url}changes/")

    assert form.status_code == fields.status_code == members.status_code == 200
    assert form.json()["role"] == role
    assert [f["key"] for f in form.json()["fields"]] == ["email", "name"]
    assert fields.json()["revision"] == 5
    assert fields.json()["results"] == form.json()["fields"]
    assert members.json()["count"] == 3
    assert changes.json()["revision"] == 5


# --- forms ---------------------------------------------------------------------------------------


def test_creating_a_form_makes_the_caller_its_owner(cast):
    client = cast.client("stranger")

    response = client.post(
        f"{API}forms/",
        {"title": "Survey", "conflict_policy": "lww", "anonymous": True},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["title"], body["status"], body["conflict_policy"]) == ("Survey", "draft", "lww")
    assert (body["anonymous"], body["revision"], body["role"], body["fields"]) == (
        True,
        0,
        "owner",
        [],
    )
    assert FormMember.objects.get(form_id=body["id"]).user == cast.stranger
    defaults = client.post(f"{API}forms/", {"title": "Plain"}, format="json").json()
    assert (defaults["conflict_policy"], defaults["anonymous"]) == ("merge", False)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": 7},
        {"title": "nul \x00"},
        {"title": "Ok", "conflict_policy": "vote"},
        {"title": "Ok", "anonymous": "yes"},
        {"title": "Ok", "anonymous": 1},
        ["title"],
    ],
)
def test_a_bad_form_is_refused_as_invalid_never_500(cast, body):
    before = Form.objects.count()

    error_of(cast.client("owner").post(f"{API}forms/", body, format="json"), 400, "invalid")

    assert Form.objects.count() == before


def test_the_list_holds_the_callers_forms_with_their_role_newest_first(cast):
    mine = new_form(cast.viewer)
    new_form(cast.stranger)

    response = cast.client("viewer").get(f"{API}forms/")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(row["id"], row["role"]) for row in rows] == [
        (mine.pk, "owner"),
        (cast.form.pk, "viewer"),
    ]
    assert set(rows[0]) == set(out.FormOutputSerializer().fields)


def test_the_list_reads_as_many_queries_for_many_forms_as_for_one(
    cast, django_assert_max_num_queries
):
    client = cast.client("editor")
    for _ in range(5):
        new_form(cast.editor)

    with django_assert_max_num_queries(3):  # the count, the page (auth is forced)
        response = client.get(f"{API}forms/")

    assert response.json()["count"] == 6


def change_form(client: APIClient, cast: Cast, prop: str, value: Any, key: str = "p-1", **extra):
    body = {"base_revision": cast.revision(), "client_msg_id": key, "prop": prop, "value": value}
    return client.patch(cast.url, {**body, **extra}, format="json")


def test_an_editor_renames_a_form_and_the_answer_is_the_change(cast):
    response = change_form(cast.client("editor"), cast, "title", "  Sign-up 2024 ")

    assert response.status_code == 200
    body = response.json()
    assert (body["revision"], body["outcome"], body["duplicate"]) == (6, "applied", False)
    assert body["data"]["prop"] == "title" and body["data"]["value"] == "Sign-up 2024"
    assert body["data"]["by"]["id"] == cast.editor.pk
    assert Form.objects.get(pk=cast.form.pk).title == "Sign-up 2024"
    change = FormChange.objects.get(form=cast.form, revision=6)
    assert (change.type, change.author) == ("forms.form.changed", cast.editor)


@pytest.mark.parametrize(
    ("prop", "value"), [("status", "closed"), ("conflict_policy", "lww"), ("anonymous", True)]
)
def test_only_the_owner_publishes_closes_and_sets_the_policy(cast, prop, value):
    if prop == "anonymous":
        Submission.objects.filter(form=cast.form).delete()  # fixed once answered (below)
    refused = change_form(cast.client("editor"), cast, prop, value, key="e")
    viewer = change_form(cast.client("viewer"), cast, "title", "Mine", key="v")
    done = change_form(cast.client("owner"), cast, prop, value, key="o")

    error_of(refused, 403, "forbidden")
    error_of(viewer, 403, "forbidden")
    assert done.status_code == 200 and done.json()["outcome"] == "applied"
    assert getattr(Form.objects.get(pk=cast.form.pk), prop) == value


def test_anonymity_is_fixed_once_a_form_has_answers(cast):
    client = cast.client("owner")
    before = state(cast)

    refused = change_form(client, cast, "anonymous", True, key="a-1")
    same = change_form(client, cast, "anonymous", False, key="a-2")

    error_of(refused, 409, "conflict")
    assert same.status_code == 200 and same.json()["outcome"] == "unchanged"
    assert state(cast) == before
    Submission.objects.filter(form=cast.form).delete()
    done = change_form(client, cast, "anonymous", True, key="a-3")
    assert done.status_code == 200 and done.json()["outcome"] == "applied"
    assert Form.objects.get(pk=cast.form.pk).anonymous is True


def test_a_form_change_sent_again_answers_the_original(cast):
    client = cast.client("owner")
    first = change_form(client, cast, "title", "Once", key="same")
    change_form(client, cast, "title", "Twice", key="other")

    again = client.patch(
        cast.url,
        {"base_revision": 5, "client_msg_id": "same", "prop": "title", "value": "Once"},
        format="json",
    )

    assert again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True}
    assert Form.objects.get(pk=cast.form.pk).title == "Twice"


def test_setting_what_a_form_has_changes_nothing(cast):
    response = change_form(cast.client("owner"), cast, "status", "published")

    assert response.json()["outcome"] == "unchanged"
    assert response.json()["revision"] is None
    assert cast.revision() == 5


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"prop": "colour"}, 400, "invalid"),
        ({"prop": "status", "value": "archived"}, 400, "invalid"),
        ({"prop": "title", "value": ""}, 400, "invalid"),
        ({"prop": "anonymous", "value": "no"}, 400, "invalid"),
        ({"base_revision": 6}, 409, "conflict"),
        ({"base_revision": -1}, 400, "invalid"),
        ({"base_revision": HUGE}, 400, "invalid"),
        ({"base_revision": 2**53}, 400, "invalid"),
        ({"client_msg_id": ""}, 400, "invalid"),
        ({"client_msg_id": "k" * 65}, 400, "invalid"),
        ({"value": None}, 400, "invalid"),
        ({"prop": None}, 400, "invalid"),
    ],
)
def test_a_bad_form_change_is_refused_with_its_code_never_500(cast, change, status, code):
    body = {"base_revision": 5, "client_msg_id": "k", "prop": "title", "value": "New", **change}
    before = state(cast)

    error_of(cast.client("owner").patch(cast.url, body, format="json"), status, code)

    assert state(cast) == before


def test_the_owner_deletes_a_form_with_everything_in_it(cast):
    response = cast.client("owner").delete(cast.url)

    assert response.status_code == 204
    assert not Form.objects.exists()
    assert not Submission.objects.exists() and not FormChange.objects.exists()
    error_of(cast.client("owner").get(cast.url), 404, "not_found")


# --- members -------------------------------------------------------------------------------------


def test_the_owner_adds_changes_and_removes_members(cast):
    client = cast.client("owner")

    added = client.post(
        f"{cast.url}members/", {"user_id": cast.stranger.pk, "role": "viewer"}, format="json"
    )
    promoted = client.post(
        f"{cast.url}members/", {"user_id": cast.stranger.pk, "role": "editor"}, format="json"
    )
    seen = cast.client("stranger").get(cast.url)
    removed = client.delete(f"{cast.url}members/{cast.stranger.pk}/")

    assert added.json() == {
        "user": {"id": cast.stranger.pk, "username": cast.stranger.username},
        "role": "viewer",
    }
    assert promoted.json()["role"] == "editor"
    assert seen.json()["role"] == "editor"
    assert removed.status_code == 204
    error_of(cast.client("stranger").get(cast.url), 404, "not_found")


def test_a_form_keeps_an_owner(cast):
    client = cast.client("owner")

    demoted = client.post(
        f"{cast.url}members/", {"user_id": cast.owner.pk, "role": "editor"}, format="json"
    )
    removed = client.delete(f"{cast.url}members/{cast.owner.pk}/")

    error_of(demoted, 409, "conflict")
    error_of(removed, 409, "conflict")
    assert FormMember.objects.get(form=cast.form, user=cast.owner).role == "owner"


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": 10**9, "role": "viewer"},
        {"user_id": 0, "role": "viewer"},
        {"user_id": "1", "role": "viewer"},
        {"user_id": HUGE, "role": "viewer"},
        {"role": "viewer"},
        {"user_id": 1, "role": "admin"},
    ],
)
def test_a_bad_member_is_refused_as_invalid(cast, body):
    error_of(cast.client("owner").post(f"{cast.url}members/", body, format="json"), 400, "invalid")


def test_removing_a_member_who_is_none_is_404(cast):
    response = cast.client("owner").delete(f"{cast.url}members/{cast.stranger.pk}/")

    error_of(response, 404, "not_found")


# --- fields --------------------------------------------------------------------------------------


def new_field(cast: Cast, key: str = "age", **extra: Any) -> dict:
    return {
        "base_revision": cast.revision(),
        "client_msg_id": f"add-{key}-rest",
        "key": key,
        "type": "number",
        "label": "Age",
        **extra,
    }


def test_an_editor_adds_a_field_and_sending_it_again_answers_the_original(cast):
    client = cast.client("editor")
    body = new_field(cast, rules={"min": 18}, required=True, position=0)

    first = client.post(f"{cast.url}fields/", body, format="json")
    again = client.post(f"{cast.url}fields/", body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    data = first.json()
    assert (data["revision"], data["outcome"], data["duplicate"]) == (6, "applied", False)
    assert data["data"]["field"] == {
        "key": "age",
        "type": "number",
        "label": "Age",
        "help": "",
        "required": True,
        "rules": {"min": 18},
        "options": [],
        "position": 0,
    }
    assert data["data"]["order"] == ["age", "email", "name"]
    assert again.json() == {**data, "duplicate": True}
    assert FormField.objects.filter(form=cast.form).count() == 3
    assert cast.revision() == 6


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"key": "Age"}, 400, "invalid"),
        ({"key": "1st"}, 400, "invalid"),
        ({"key": "k" * 65}, 400, "invalid"),
        ({"key": "email"}, 409, "conflict"),
        ({"type": "slider"}, 400, "invalid"),
        ({"label": ""}, 400, "invalid"),
        ({"label": 3}, 400, "invalid"),
        ({"required": "yes"}, 400, "invalid"),
        ({"rules": [1]}, 400, "invalid"),
        ({"rules": {"colour": 1}}, 400, "invalid"),
        ({"rules": {"min": "ten"}}, 400, "invalid"),
        ({"options": "a,b"}, 400, "invalid"),
        ({"type": "single_choice", "options": []}, 400, "invalid"),
        ({"type": "text", "rules": {"pattern": "("}}, 400, "invalid"),
        ({"position": -1}, 400, "invalid"),
        ({"position": 500}, 400, "invalid"),
        ({"base_revision": 99}, 409, "conflict"),
        ({"help": "h" * 2001}, 400, "invalid"),
    ],
)
def test_a_bad_field_is_refused_with_its_code_never_500(cast, change, status, code):
    before = state(cast)

    response = cast.client("owner").post(
        f"{cast.url}fields/", new_field(cast, **change), format="json"
    )

    error_of(response, status, code)
    assert state(cast) == before


def patch_field(client: APIClient, cast: Cast, key: str, base: int, msg: str, **change: Any):
    body = {"base_revision": base, "client_msg_id": msg, **change}
    return client.patch(f"{cast.url}fields/{key}/", body, format="json")


def test_changing_a_field_answers_the_outcome(cast):
    response = patch_field(
        cast.client("editor"), cast, "email", 5, "c-1", prop="help", value="Work address"
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["revision"], body["outcome"], body["duplicate"]) == (6, "applied", False)
    assert body["data"]["key"] == "email"
    assert (body["data"]["prop"], body["data"]["value"]) == ("help", "Work address")
    assert FormField.objects.get(form=cast.form, key="email").help == "Work address"


@pytest.mark.parametrize(
    ("key", "change", "status", "code"),
    [
        ("email", {"prop": "colour", "value": "red"}, 400, "invalid"),
        ("email", {"prop": "required", "value": "yes"}, 400, "invalid"),
        ("email", {"prop": "label", "value": ""}, 400, "invalid"),
        ("email", {"prop": "label"}, 400, "invalid"),
        ("phone", {"prop": "label", "value": "Phone"}, 404, "not_found"),
        ("Email", {"prop": "label", "value": "Phone"}, 404, "not_found"),
        ("e-mail", {"prop": "label", "value": "Phone"}, 404, "not_found"),
    ],
)
def test_a_bad_field_change_is_refused_with_its_code(cast, key, change, status, code):
    before = state(cast)

    error_of(patch_field(cast.client("owner"), cast, key, 5, "k", **change), status, code)

    assert state(cast) == before


def test_moving_and_removing_fields(cast):
    client = cast.client("editor")

    moved = client.post(
        f"{cast.url}fields/name/move/",
        {"base_revision": 5, "client_msg_id": "m-1", "position": 0},
        format="json",
    )
    removed = client.delete(f"{cast.url}fields/email/?base_revision=6&client_msg_id=r-1")
    again = client.delete(f"{cast.url}fields/email/?base_revision=6&client_msg_id=r-1")
    listed = client.get(f"{cast.url}fields/").json()

    assert (moved.json()["revision"], moved.json()["data"]["order"]) == (6, ["name", "email"])
    assert removed.status_code == 200
    assert (removed.json()["revision"], removed.json()["data"]["order"]) == (7, ["name"])
    assert again.json() == {**removed.json(), "duplicate": True}
    assert listed["revision"] == 7
    assert [(f["key"], f["position"]) for f in listed["results"]] == [("name", 0)]


@pytest.mark.parametrize(
    "query",
    ["", "?base_revision=5", "?client_msg_id=k", "?base_revision=x&client_msg_id=k"],
)
def test_removing_a_field_needs_its_revision_and_key_in_the_query(cast, query):
    error_of(cast.client("owner").delete(f"{cast.url}fields/email/{query}"), 400, "invalid")
    assert FormField.objects.filter(form=cast.form, key="email").exists()


# --- the conflict policies through REST ----------------------------------------------------------


def two_builders(policy: str) -> tuple[Form, APIClient, APIClient, int]:
    owner, editor = UserFactory.create_batch(2)
    form = new_form(owner, policy, members={"editor": editor})
    base = add(owner, form, "name", label="Name")
    return form, client_for(owner), client_for(editor), base


def label_change(client: APIClient, form: Form, base: int, msg: str, value: str):
    body = {"base_revision": base, "client_msg_id": msg, "prop": "label", "value": value}
    return client.patch(f"{API}forms/{form.pk}/fields/name/", body, format="json")


@pytest.mark.django_db
def test_last_writer_wins_the_second_change_wins():
    form, first, second, base = two_builders("lww")

    a = label_change(first, form, base, "a", "Full name")
    b = label_change(second, form, base, "b", "Your name")

    assert (a.json()["outcome"], b.json()["outcome"]) == ("applied", "applied")
    assert (a.json()["revision"], b.json()["revision"]) == (base + 1, base + 2)
    assert FormField.objects.get(form=form, key="name").label == "Your name"


@pytest.mark.django_db
def test_merge_keeps_both_edits_of_a_label():
    form, first, second, base = two_builders("merge")

    a = label_change(first, form, base, "a", "Full Name")
    b = label_change(second, form, base, "b", "Name?")

    assert (a.json()["outcome"], b.json()["outcome"]) == ("applied", "merged")
    assert b.json()["data"]["value"] == "Full Name?"
    assert FormField.objects.get(form=form, key="name").label == "Full Name?"


@pytest.mark.django_db
def test_manual_opens_a_conflict_which_a_builder_resolves():
    form, first, second, base = two_builders("manual")
    url = f"{API}forms/{form.pk}/conflicts/"

    a = label_change(first, form, base, "a", "Full name")
    b = label_change(second, form, base, "b", "Your name")
    listed = first.get(url).json()
    opened = first.get(f"{url}?status=open").json()

    assert (a.json()["outcome"], b.json()["outcome"]) == ("applied", "conflict")
    assert b.json()["revision"] == base + 2
    assert FormField.objects.get(form=form, key="name").label == "Full name"
    conflict = b.json()["data"]["conflict"]
    assert listed["count"] == opened["count"] == 1
    assert listed["results"][0] == conflict
    assert (conflict["field"], conflict["prop"], conflict["status"]) == ("name", "label", "open")
    assert (conflict["current_value"], conflict["proposed_value"]) == ("Full name", "Your name")

    resolved = second.post(
        f"{url}{conflict['id']}/resolve/",
        {"resolution": "proposed", "client_msg_id": "r"},
        format="json",
    )
    again = second.post(
        f"{url}{conflict['id']}/resolve/",
        {"resolution": "proposed", "client_msg_id": "r"},
        format="json",
    )
    later = first.post(
        f"{url}{conflict['id']}/resolve/",
        {"resolution": "current", "client_msg_id": "r2"},
        format="json",
    )

    assert resolved.status_code == 200
    body = resolved.json()
    assert (body["outcome"], body["revision"]) == ("resolved", base + 3)
    assert body["data"]["conflict"]["status"] == "resolved"
    assert again.json() == {**body, "duplicate": True}
    error_of(later, 409, "conflict")
    assert FormField.objects.get(form=form, key="name").label == "Your name"
    assert first.get(f"{url}?status=open").json()["count"] == 0
    assert first.get(f"{url}?status=resolved").json()["count"] == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"resolution": "mine", "client_msg_id": "r"}, 400, "invalid"),
        ({"resolution": "custom", "client_msg_id": "r"}, 400, "invalid"),
        ({"resolution": "custom", "value": "", "client_msg_id": "r"}, 400, "invalid"),
        ({"resolution": "current"}, 400, "invalid"),
        ({"resolution": 1, "client_msg_id": "r"}, 400, "invalid"),
    ],
)
def test_a_bad_resolution_is_refused_and_the_conflict_stays_open(cast, body, status, code):
    url = f"{cast.url}conflicts/{cast.conflict_id}/resolve/"

    error_of(cast.client("editor").post(url, body, format="json"), status, code)

    assert FieldConflict.objects.get(pk=cast.conflict_id).status == "open"


def test_a_custom_resolution_sets_the_value_given(cast):
    url = f"{cast.url}conflicts/{cast.conflict_id}/resolve/"

    response = cast.client("editor").post(
        url, {"resolution": "custom", "value": "Name", "client_msg_id": "r"}, format="json"
    )

    assert response.json()["data"]["value"] == "Name"
    assert FormField.objects.get(form=cast.form, key="name").label == "Name"


def test_a_conflict_of_another_form_is_404(cast):
    other = new_form(cast.owner)

    response = cast.client("owner").post(
        f"{API}forms/{other.pk}/conflicts/{cast.conflict_id}/resolve/",
        {"resolution": "current", "client_msg_id": "r"},
        format="json",
    )

    error_of(response, 404, "not_found")


def test_conflicts_are_filtered_by_a_known_status_only(cast):
    error_of(cast.client("owner").get(f"{cast.url}conflicts/?status=closed"), 400, "invalid")


# --- changes -------------------------------------------------------------------------------------


def test_changes_replay_from_a_revision_as_the_socket_got_them(cast):
    response = cast.client("viewer").get(f"{cast.url}changes/?since=2")

    assert response.status_code == 200
    body = response.json()
    assert (body["from"], body["to"], body["revision"], body["more"]) == (2, 5, 5, False)
    assert [c["revision"] for c in body["results"]] == [3, 4, 5]
    assert [c["type"] for c in body["results"]] == [
        "forms.form.changed",
        "forms.field.changed",
        "forms.conflict.opened",
    ]
    assert body["results"][2]["author"] == {"id": cast.editor.pk, "username": cast.editor.username}
    assert body["results"][2]["data"] == FormChange.objects.get(form=cast.form, revision=5).data


def test_changes_come_in_pages_of_at_most_a_thousand(cast, settings, monkeypatch):
    monkeypatch.setattr("forms_live.views.builder.MAX_CHANGES_PAGE", 2)

    first = cast.client("owner").get(f"{cast.url}changes/").json()
    last = cast.client("owner").get(f"{cast.url}changes/?since=4").json()

    assert (first["to"], first["more"], len(first["results"])) == (2, True, 2)
    assert (last["to"], last["more"], len(last["results"])) == (5, False, 1)
    assert out.MAX_CHANGES_PAGE == 1000


def test_the_change_history_reads_its_authors_in_one_query(cast, django_assert_max_num_queries):
    client = cast.client("owner")
    for n in range(10):
        add(cast.owner, cast.form, f"extra_{n}")

    with django_assert_max_num_queries(3):  # the form with the role, the changes, the authors
        response = client.get(f"{cast.url}changes/")

    assert len(response.json()["results"]) == 15


@pytest.mark.parametrize("since", ["6", "-1", "x", HUGE])
def test_changes_since_a_revision_the_form_has_not_reached_are_invalid(cast, since):
    error_of(cast.client("owner").get(f"{cast.url}changes/?since={since}"), 400, "invalid")


# --- submissions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "editor"])
def test_builders_list_and_read_submissions(cast, role):
    other = answer(UserFactory(), cast.form, {"email": "bo@example.com"}, submit=False)
    client = cast.client(role)

    listed = client.get(f"{cast.url}submissions/").json()
    sent = client.get(f"{cast.url}submissions/?status=submitted").json()
    one = client.get(f"{cast.url}submissions/{cast.submission_id}/").json()

    assert [s["id"] for s in listed["results"]] == [other.pk, cast.submission_id]
    assert [s["id"] for s in sent["results"]] == [cast.submission_id]
    assert one == submission_payload(Submission.objects.get(pk=cast.submission_id))
    assert one["respondent"] == {"id": cast.respondent.pk, "username": cast.respondent.username}
    assert one["values"] == {"email": "ann@example.com", "name": "Ann"}
    assert one["device"]["browser"] == "Firefox"
    # The token is the respondent's alone: builders never see it.
    assert all("token" not in row for row in [*listed["results"], *sent["results"], one])


def test_submissions_list_in_a_fixed_number_of_queries(cast, django_assert_max_num_queries):
    for _ in range(8):
        answer(UserFactory(), cast.form, {"email": "x@example.com", "name": "X"})

    with django_assert_max_num_queries(3):  # the form with the role, the count, the page
        response = cast.client("owner").get(f"{cast.url}submissions/")

    assert response.json()["count"] == 9


def test_an_anonymous_forms_submissions_name_nobody(db):
    owner, respondent = UserFactory.create_batch(2)
    form = new_form(owner, anonymous=True)
    add(owner, form, "name")
    publish(owner, form)
    answer(respondent, form, {"name": "Secret"})

    rows = client_for(owner).get(f"{API}forms/{form.pk}/submissions/").json()["results"]

    assert [row["respondent"] for row in rows] == [None]
    assert ["token" in row for row in rows] == [False]  # the respondent's only key stays theirs


def test_a_submission_of_another_form_is_404(cast):
    other = new_form(cast.owner)

    response = cast.client("owner").get(f"{API}forms/{other.pk}/submissions/{cast.submission_id}/")

    error_of(response, 404, "not_found")


def test_builders_move_a_submission_on(cast):
    url = f"{cast.url}submissions/{cast.submission_id}/status/"

    processing = cast.client("editor").post(url, {"status": "processing"}, format="json")
    again = cast.client("editor").post(url, {"status": "processing"}, format="json")
    completed = cast.client("owner").post(url, {"status": "completed"}, format="json")
    back = cast.client("owner").post(url, {"status": "processing"}, format="json")

    assert processing.status_code == 200
    assert processing.json()["submission"]["status"] == "processing"
    assert processing.json()["duplicate"] is False
    assert again.json()["duplicate"] is True
    assert again.json()["revision"] == processing.json()["revision"]
    assert completed.json()["submission"]["completed_at"] is not None
    assert "token" not in processing.json()["submission"]
    assert "token" not in completed.json()["submission"]
    error_of(back, 409, "conflict")


@pytest.mark.parametrize("body", [{"status": "submitted"}, {"status": "done"}, {}, {"status": 1}])
def test_a_bad_status_is_refused_as_invalid(cast, body):
    url = f"{cast.url}submissions/{cast.submission_id}/status/"

    error_of(cast.client("owner").post(url, body, format="json"), 400, "invalid")

    assert Submission.objects.get(pk=cast.submission_id).status == "submitted"


def test_a_submission_in_progress_cannot_be_moved_on(cast):
    draft = answer(UserFactory(), cast.form, {"name": "Half"}, submit=False)
    url = f"{cast.url}submissions/{draft.pk}/status/"

    response = cast.client("owner").post(url, {"status": "completed"}, format="json")

    error_of(response, 409, "conflict")


@pytest.mark.parametrize(("status", "count"), [("in_progress", 0), ("", 1), ("submitted", 1)])
def test_submissions_are_filtered_by_status_an_empty_one_is_none(cast, status, count):
    response = cast.client("owner").get(f"{cast.url}submissions/?status={status}")

    assert response.json()["count"] == count


def test_submissions_are_filtered_by_a_known_status_only(cast):
    error_of(cast.client("owner").get(f"{cast.url}submissions/?status=nope"), 400, "invalid")


# --- the CSV export ------------------------------------------------------------------------------


async def export(user, form_id: int) -> tuple[Any, list[list[str]]]:
    """Through the ASGI handler, as Daphne serves it: the content is an asynchronous stream."""
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.get(f"{API}forms/{form_id}/submissions/export/", HTTP_ACCEPT="text/csv")
    if not response.streaming:
        return response, []
    text = b"".join([chunk async for chunk in response.streaming_content]).decode()
    return response, list(csv.reader(io.StringIO(text)))


def exported_form() -> tuple[Any, Form, list[Submission]]:
    """A published form with a text, a multiple choice, a number and a checkbox field, and
    five respondents, some of whom type what a spreadsheet would run."""
    owner = UserFactory(username="boss")
    form = new_form(owner)
    add(owner, form, "name")
    add(owner, form, "colours", "multiple_choice", options=["red", "green", "blue"])
    add(owner, form, "age", "number")
    add(owner, form, "agree", "checkbox")
    publish(owner, form)
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
    sent = [
        answer(
            UserFactory(username="ann"),
            form,
            {"name": "Ann", "colours": ["red", "blue"], "age": -3, "agree": True},
        ),
        answer(
            UserFactory(username="=evil"),
            form,
            {"name": '=HYPERLINK("http://x","y")', "colours": ["green"]},
            agent=iphone,
        ),
        answer(UserFactory(username="cy"), form, {"name": "+1-2"}, submit=False),
        answer(UserFactory(username="di"), form, {"name": "@SUM(A1)", "age": 4.5}),
        answer(UserFactory(username="ed"), form, {"name": "-cmd|x"}),
    ]
    submission_set_status(user=owner, form_id=form.pk, submission_id=sent[0].pk, status="completed")
    return owner, form, [Submission.objects.get(pk=s.pk) for s in sent]


HEADER = ["id", "respondent", "status", "started_at", "submitted_at", "completed_at"]
HEADER += ["progress", "browser", "os", "device_type"]


@pytest.mark.django_db(transaction=True)
async def test_the_export_is_one_csv_row_per_submission_with_formulas_defused():
    owner, form, sent = await sync_to_async(exported_form)()

    response, rows = await export(owner, form.pk)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="form-{form.pk}-submissions.csv"' in response["Content-Disposition"]
    header, *body = rows
    assert header == [*HEADER, "name", "colours", "age", "agree"]
    assert [int(row[0]) for row in body] == [s.pk for s in sent]  # oldest first
    by_name = {row[1]: dict(zip(header, row, strict=True)) for row in body}
    ann = by_name["ann"]
    assert (ann["status"], ann["progress"]) == ("completed", "100")
    tokens = {s.token for s in sent}
    assert not any(token in cell for row in body for cell in row for token in tokens)
    assert (ann["name"], ann["colours"], ann["age"], ann["agree"]) == (
        "Ann",
        "red; blue",
        "-3",
        "true",
    )
    assert ann["started_at"] == sent[0].started_at.isoformat()
    assert ann["submitted_at"] == sent[0].submitted_at.isoformat()
    assert ann["completed_at"] == sent[0].completed_at.isoformat()
    assert (ann["browser"], ann["os"], ann["device_type"]) == ("Firefox", "Linux", "desktop")
    evil = by_name["'=evil"]
    assert evil["name"] == '\'=HYPERLINK("http://x","y")'
    assert (evil["colours"], evil["device_type"], evil["age"], evil["agree"]) == (
        "green",
        "mobile",
        "",
        "",
    )
    assert (by_name["cy"]["name"], by_name["cy"]["status"]) == ("'+1-2", "in_progress")
    assert (by_name["cy"]["submitted_at"], by_name["cy"]["completed_at"]) == ("", "")
    assert (by_name["di"]["name"], by_name["di"]["age"]) == ("'@SUM(A1)", "4.5")
    assert by_name["ed"]["name"] == "'-cmd|x"
    risky = [cell for row in body for cell in row if cell.startswith(("=", "+", "-", "@"))]
    assert risky == ["-3"]  # a number, which no spreadsheet runs


@pytest.mark.django_db(transaction=True)
async def test_the_export_streams_every_page_and_only_the_current_fields(monkeypatch):
    monkeypatch.setattr("forms_live.views.submissions.EXPORT_CHUNK", 2)

    def made() -> tuple[Any, Form, list[int]]:
        owner = UserFactory()
        form = new_form(owner, anonymous=True)
        add(owner, form, "name")
        add(owner, form, "gone")
        publish(owner, form)
        ids = [answer(UserFactory(), form, {"name": f"N{n}", "gone": "x"}).pk for n in range(5)]
        field_remove_rest = client_for(owner).delete(
            f"{API}forms/{form.pk}/fields/gone/?base_revision=3&client_msg_id=rm"
        )
        assert field_remove_rest.status_code == 200
        return owner, form, ids

    owner, form, ids = await sync_to_async(made)()

    response, rows = await export(owner, form.pk)

    assert response.status_code == 200
    assert rows[0] == [*HEADER, "name"]
    assert [int(row[0]) for row in rows[1:]] == ids
    assert [row[1] for row in rows[1:]] == [""] * 5  # anonymous: nobody is named
    assert [row[-1] for row in rows[1:]] == [f"N{n}" for n in range(5)]


@pytest.mark.django_db(transaction=True)
async def test_the_export_refuses_viewers_and_strangers_as_json():
    def made() -> tuple[Any, Any, Form]:
        owner, viewer, stranger = UserFactory.create_batch(3)
        return viewer, stranger, new_form(owner, members={"viewer": viewer})

    viewer, stranger, form = await sync_to_async(made)()

    refused, _ = await export(viewer, form.pk)
    hidden, _ = await export(stranger, form.pk)

    error_of(refused, 403, "forbidden")
    error_of(hidden, 404, "not_found")


# --- analytics -----------------------------------------------------------------------------------


def test_analytics_count_the_funnel_of_the_forms_submissions(cast):
    now = timezone.now()
    for _ in range(6):
        form_viewed(form_id=cast.form.pk)
    quick = answer(UserFactory(), cast.form, {"email": "q@example.com", "name": "Q"})
    idle = answer(UserFactory(), cast.form, {"name": "Idle"}, submit=False)
    answer(UserFactory(), cast.form, {"name": "Typing"}, submit=False)
    Submission.objects.filter(pk=cast.submission_id).update(
        started_at=now - timedelta(seconds=300), submitted_at=now
    )
    Submission.objects.filter(pk=quick.pk).update(
        started_at=now - timedelta(seconds=61), submitted_at=now
    )
    hours_ago = now - timedelta(hours=2)
    Submission.objects.filter(pk=idle.pk).update(started_at=hours_ago, updated_at=hours_ago)

    response = cast.client("editor").get(f"{cast.url}analytics/")

    assert response.status_code == 200
    assert response.json() == {
        "views": 6,
        "starts": 4,
        "completions": 2,
        "abandoned": 1,
        "completion_rate": 0.5,
        "median_seconds": 61,
        "drop_off": {"name": 1},
    }


def test_analytics_of_a_form_nobody_answered(db):
    owner = UserFactory()
    form = new_form(owner)

    response = client_for(owner).get(f"{API}forms/{form.pk}/analytics/")

    assert response.json() == FormStats().summary()
    assert response.json()["median_seconds"] is None


# --- the schema ----------------------------------------------------------------------------------


def test_the_output_serializers_describe_exactly_the_payloads(cast):
    """The views answer with the selectors' dicts; the schema is drawn from these serializers."""
    form = Form.objects.get(pk=cast.form.pk)
    field = FormField.objects.get(form=form, key="name")
    conflict = FieldConflict.objects.get(pk=cast.conflict_id)
    submission = Submission.objects.get(pk=cast.submission_id)

    def fields(serializer) -> set[str]:
        return set(serializer().fields)

    assert fields(out.FormOutputSerializer) == set(form_payload(form)) | {"role"}
    assert fields(out.FormDetailOutputSerializer) == set(form_payload(form, [])) | {"role"}
    assert fields(out.FieldOutputSerializer) == set(field_payload(field))
    assert fields(out.ConflictOutputSerializer) == set(conflict_payload(conflict))
    assert fields(out.SubmissionOutputSerializer) == set(submission_payload(submission))
    assert fields(out.DeviceOutputSerializer) == set(submission_payload(submission)["device"])
    assert fields(out.AnalyticsOutputSerializer) == set(FormStats().summary())
    assert fields(out.FormChangeRangeOutputSerializer) == {"from", "to", "revision", "more"} | {
        "results"
    }


def test_the_openapi_schema_describes_every_route(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()

    methods = {
        path[len(API) :]: set(schema["paths"][path])
        for path in schema["paths"]
        if path.startswith(f"{API}forms/")
    }

    assert methods == {
        "forms/": {"get", "post"},
        "forms/{form_id}/": {"get", "patch", "delete"},
        "forms/{form_id}/members/": {"get", "post"},
        "forms/{form_id}/members/{user_id}/": {"delete"},
        "forms/{form_id}/fields/": {"get", "post"},
        "forms/{form_id}/fields/{key}/": {"patch", "delete"},
        "forms/{form_id}/fields/{key}/move/": {"post"},
        "forms/{form_id}/changes/": {"get"},
        "forms/{form_id}/conflicts/": {"get"},
        "forms/{form_id}/conflicts/{conflict_id}/resolve/": {"post"},
        "forms/{form_id}/submissions/": {"get"},
        "forms/{form_id}/submissions/export/": {"get"},
        "forms/{form_id}/submissions/{submission_id}/": {"get"},
        "forms/{form_id}/submissions/{submission_id}/status/": {"post"},
        "forms/{form_id}/analytics/": {"get"},
    }
    remove = schema["paths"][f"{API}forms/{{form_id}}/fields/{{key}}/"]["delete"]
    assert {(p["name"], p["in"], p["schema"]["type"]) for p in remove["parameters"]} == {
        ("form_id", "path", "integer"),
        ("key", "path", "string"),
        ("base_revision", "query", "integer"),
        ("client_msg_id", "query", "string"),
    }
    export = schema["paths"][f"{API}forms/{{form_id}}/submissions/export/"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"text/csv"}


def test_the_schema_validates_without_warnings(db, tmp_path):
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(tmp_path / "s.yml"))


def test_form_writes_count_against_their_own_rate(cast, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "forms_write": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    client = cast.client("owner")

    writes = [change_form(client, cast, "title", f"T{n}", key=f"t-{n}") for n in range(3)]
    read = client.get(cast.url)

    assert [w.status_code for w in writes[:2]] == [200, 200]
    error = writes[2].json()["error"]
    assert (writes[2].status_code, error["code"], error["retry"]) == (429, "rate_limited", True)
    assert read.status_code == 200
