"""Forms in the admin (forms_live/admin.py): everything visible; members managed inline, with
an owner kept; forms, fields, changes, conflicts and submissions never written here except a
submission marked completed through ``submission_set_status``.

Forms are made by the services; pages are read and posted with Django's test client.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from forms_live.models import FieldConflict, Form, FormChange, FormField, FormMember, Submission
from forms_live.services import (
    field_add,
    field_change,
    form_change,
    form_create,
    member_set,
    submission_start,
    submission_submit,
    submission_update,
)
from tests.factories import UserFactory

ADMIN = "/admin/forms_live/"
REFUSED = (403, 404)
MODELS = ("form", "formfield", "formchange", "fieldconflict", "submission")


def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True, username="root")


@pytest.fixture
def superuser_client(superuser) -> Client:
    return staff_client(superuser)


def make_form(owner, editor, *, respondents: int = 1, title: str = "Sign-up survey") -> Form:
    """Manual policy, fields ``email`` and ``name``, published, one conflict on name's label,
    and ``respondents`` sent submissions."""
    form = form_create(owner=owner, title=title, conflict_policy="manual")
    member_set(user=owner, form_id=form.pk, member_id=editor.pk, role="editor")
    for n, key in enumerate(("email", "name")):
        field_add(
            user=owner,
            form_id=form.pk,
            base_revision=n,
            client_msg_id=f"add-{key}",
            key=key,
            type="email" if key == "email" else "text",
            label=key.title(),
        )
    form_change(
        user=owner,
        form_id=form.pk,
        base_revision=2,
        client_msg_id="pub",
        prop="status",
        value="published",
    )
    change = {"form_id": form.pk, "base_revision": 3, "key": "name", "prop": "label"}
    field_change(user=owner, client_msg_id="o", value="Full name", **change)
    field_change(user=editor, client_msg_id="e", value="Your name", **change)
    for _ in range(respondents):
        respondent = UserFactory()
        submission = submission_start(user=respondent, form_id=form.pk, user_agent="Firefox/1")
        submission_update(
            user=respondent,
            form_id=form.pk,
            token=submission.token,
            values={"email": "a@example.com", "name": "A"},
        )
        submission_submit(user=respondent, form_id=form.pk, token=submission.token)
    return Form.objects.get(pk=form.pk)


@pytest.fixture
def form(db) -> Form:
    return make_form(UserFactory(username="olive"), UserFactory(username="eddie"))


def record_of(form: Form, model: str):  # type: ignore[no-untyped-def]
    return {
        "form": form,
        "formfield": FormField.objects.get(form=form, key="name"),
        "formchange": FormChange.objects.get(form=form, revision=5),
        "fieldconflict": FieldConflict.objects.get(form=form),
        "submission": Submission.objects.filter(form=form).first(),
    }[model]


# --- every page loads ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_each_list_loads_with_its_records(superuser_client, form, model):
    shown = {
        "form": "Sign-up survey",
        "formfield": "Full name",
        "formchange": "forms.conflict.opened",
        "fieldconflict": "label",
        "submission": "submitted",
    }

    response = superuser_client.get(f"{ADMIN}{model}/")

    assert response.status_code == 200
    assert shown[model] in response.content.decode()


@pytest.mark.parametrize("model", MODELS)
def test_each_change_page_loads(superuser_client, form, model):
    response = superuser_client.get(f"{ADMIN}{model}/{record_of(form, model).pk}/change/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "<textarea" not in page and 'name="title"' not in page
    if model != "form":
        assert 'name="_save"' not in page


def test_the_index_lists_every_model(superuser_client, db):
    page = superuser_client.get(ADMIN).content.decode()

    for model in MODELS:
        assert f"{ADMIN}{model}/" in page


@pytest.mark.parametrize("model", MODELS)
def test_nothing_can_be_added(superuser_client, form, model):
    before = Form.objects.count(), FormField.objects.count(), Submission.objects.count()

    page = superuser_client.get(f"{ADMIN}{model}/").content.decode()
    response = superuser_client.post(f"{ADMIN}{model}/add/", {"title": "Forged", "key": "x"})

    assert response.status_code in REFUSED
    assert f"{ADMIN}{model}/add/" not in page
    assert (Form.objects.count(), FormField.objects.count(), Submission.objects.count()) == before


@pytest.mark.parametrize("model", MODELS)
def test_nothing_can_be_deleted(superuser_client, form, model):
    record = record_of(form, model)

    response = superuser_client.post(f"{ADMIN}{model}/{record.pk}/delete/", {"post": "yes"})

    assert response.status_code in REFUSED
    assert type(record).objects.filter(pk=record.pk).exists()


# --- forms and their members ---------------------------------------------------------------------


def members_post(form: Form, rows: list[dict], **extra: str) -> dict:
    """The change form's POST: the form's own fields are read-only, so only the inlines."""
    members = list(FormMember.objects.filter(form=form).order_by("id"))
    data = {
        "members-TOTAL_FORMS": str(len(rows)),
        "members-INITIAL_FORMS": str(len(members)),
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
        "fields-TOTAL_FORMS": "0",
        "fields-INITIAL_FORMS": "0",
        "fields-MIN_NUM_FORMS": "0",
        "fields-MAX_NUM_FORMS": "1000",
        "title": "Forged title",
        "status": "closed",
        **extra,
    }
    for n, row in enumerate(rows):
        for name, value in row.items():
            data[f"members-{n}-{name}"] = str(value)
        data[f"members-{n}-form"] = str(form.pk)
    return data


def existing(form: Form, **changes: dict) -> list[dict]:
    rows = []
    for member in FormMember.objects.filter(form=form).order_by("id"):
        row = {"id": member.pk, "user": member.user_id, "role": member.role}
        rows.append({**row, **changes.get(str(member.user_id), {})})
    return rows


def test_the_form_page_shows_its_members_and_fields_and_its_own_values_read_only(
    superuser_client, form
):
    page = superuser_client.get(f"{ADMIN}form/{form.pk}/change/").content.decode()

    assert 'name="members-0-role"' in page  # members are managed here
    assert "Full name" in page and "email" in page  # the fields, read-only
    assert 'name="fields-0-label"' not in page and 'name="title"' not in page
    assert "Sign-up survey" in page


def test_an_operator_adds_a_member_and_the_forms_own_values_stay(superuser_client, form):
    newcomer = UserFactory()
    rows = [*existing(form), {"user": newcomer.pk, "role": "viewer"}]

    response = superuser_client.post(f"{ADMIN}form/{form.pk}/change/", members_post(form, rows))

    assert response.status_code == 302, response.content.decode()[-2000:]
    assert FormMember.objects.get(form=form, user=newcomer).role == "viewer"
    after = Form.objects.get(pk=form.pk)
    assert (after.title, after.status, after.revision) == ("Sign-up survey", "published", 5)


def test_an_operator_hands_a_form_over_and_the_named_owner_follows(superuser_client, form):
    olive, eddie = form.owner, FormMember.objects.get(form=form, role="editor").user
    rows = existing(form, **{str(olive.pk): {"role": "viewer"}, str(eddie.pk): {"role": "owner"}})

    response = superuser_client.post(f"{ADMIN}form/{form.pk}/change/", members_post(form, rows))

    assert response.status_code == 302
    assert Form.objects.get(pk=form.pk).owner == eddie
    assert FormMember.objects.get(form=form, user=olive).role == "viewer"


@pytest.mark.parametrize("how", ["demote", "delete"])
def test_the_last_owner_cannot_be_removed(superuser_client, form, how):
    olive = form.owner
    change = {"role": "editor"} if how == "demote" else {"DELETE": "on"}
    rows = existing(form, **{str(olive.pk): change})

    response = superuser_client.post(f"{ADMIN}form/{form.pk}/change/", members_post(form, rows))

    assert response.status_code == 200
    assert "A form must keep at least one owner." in response.content.decode()
    assert FormMember.objects.get(form=form, user=olive).role == "owner"


def test_a_member_cannot_be_added_twice(superuser_client, form):
    rows = [*existing(form), {"user": form.owner_id, "role": "viewer"}]

    response = superuser_client.post(f"{ADMIN}form/{form.pk}/change/", members_post(form, rows))

    assert response.status_code == 200
    assert FormMember.objects.filter(form=form).count() == 2


# --- submissions ---------------------------------------------------------------------------------


def act(client: Client, submissions: list[Submission]):  # type: ignore[no-untyped-def]
    return client.post(
        f"{ADMIN}submission/",
        {"action": "mark_completed", "_selected_action": [s.pk for s in submissions]},
        follow=True,
    )


def test_submissions_are_filtered_by_form_and_status(superuser_client, form):
    other = make_form(form.owner, UserFactory(), title="Other")
    draft = submission_start(user=UserFactory(), form_id=form.pk)

    def listed(**query: str) -> set[int]:
        page = superuser_client.get(f"{ADMIN}submission/", query).content.decode()
        return {
            s.pk for s in Submission.objects.all() if f"{ADMIN}submission/{s.pk}/change/" in page
        }

    mine = set(Submission.objects.filter(form=form).values_list("pk", flat=True))
    assert listed(form__id__exact=str(form.pk)) == mine
    assert listed(form__id__exact=str(other.pk)) == {other.submissions.get().pk}
    assert listed(status__exact="in_progress") == {draft.pk}


def test_a_builder_on_the_staff_marks_submissions_completed(form):
    olive = form.owner
    olive.is_staff = True
    olive.save()
    olive.user_permissions.add(
        *Permission.objects.filter(codename__in=("view_submission", "change_submission"))
    )
    other = make_form(UserFactory(), UserFactory(), title="Not hers")
    sent = Submission.objects.get(form=form)
    draft = Submission.objects.get(pk=submission_start(user=UserFactory(), form_id=form.pk).pk)
    foreign = Submission.objects.get(form=other)

    response = act(staff_client(olive), [sent, draft, foreign])

    page = response.content.decode()
    assert "1 marked completed." in page
    assert "1 skipped: only an owner or editor of their form may move them on." in page
    assert "1 skipped: not submitted yet." in page
    statuses = dict(Submission.objects.values_list("pk", "status"))
    assert statuses == {sent.pk: "completed", draft.pk: "in_progress", foreign.pk: "submitted"}
    sent.refresh_from_db()
    assert (sent.completed_at is not None, sent.revision) == (True, 4)


def test_a_superuser_who_builds_no_form_completes_nothing(superuser_client, form):
    response = act(superuser_client, list(Submission.objects.all()))

    assert "0 marked completed." in response.content.decode()
    assert set(Submission.objects.values_list("status", flat=True)) == {"submitted"}


def test_staff_without_the_change_permission_have_no_action(form):
    looker = UserFactory(is_staff=True)
    looker.user_permissions.add(*Permission.objects.filter(codename="view_submission"))
    member_set(user=form.owner, form_id=form.pk, member_id=looker.pk, role="owner")

    response = act(staff_client(looker), list(Submission.objects.all()))

    assert "marked completed" not in response.content.decode()
    assert set(Submission.objects.values_list("status", flat=True)) == {"submitted"}


def test_a_submissions_answers_cannot_be_changed(superuser_client, form):
    sent = Submission.objects.get(form=form)

    response = superuser_client.post(
        f"{ADMIN}submission/{sent.pk}/change/", {"status": "completed", "progress": "5"}
    )

    assert response.status_code in REFUSED
    sent.refresh_from_db()
    assert (sent.status, sent.progress) == ("submitted", 100)


# --- queries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_lists_read_as_many_queries_for_many_rows_as_for_few(
    superuser_client, superuser, model, django_assert_max_num_queries
):
    make_form(UserFactory(), UserFactory(), respondents=1)
    url = f"{ADMIN}{model}/"
    with CaptureQueriesContext(connection) as few:
        superuser_client.get(url)
    for n in range(4):
        make_form(UserFactory(), UserFactory(), respondents=3, title=f"Form {n}")

    with django_assert_max_num_queries(len(few)):
        response = superuser_client.get(url)

    assert response.status_code == 200
    assert len(few) <= 8  # session, user, counts, the page, a filter's choices
