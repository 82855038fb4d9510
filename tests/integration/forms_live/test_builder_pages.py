"""The forms list and the live builder pages (forms_live/pages/builder.py) through Django's test
client on PostgreSQL: who gets what (members 200, strangers 404, anonymous to the login page),
creating a form through the service, and the elements the page script needs.

A published form ("Sign-up", manual policy) has an owner, an editor and a viewer; a draft of
the owner's ("Draft") has no other member; a stranger owns a form of their own ("Secret").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from forms_live.models import Form, FormMember
from forms_live.selectors import changes_between, edit_snapshot
from forms_live.services import (
    conflict_resolve,
    field_add,
    field_change,
    field_move,
    field_remove,
    form_change,
    form_create,
    member_set,
)
from tests.factories import UserFactory
from tests.unit.forms_live.test_builder_js import BUILDER
from tests.unit.node import run_node

LIST = "/forms/"


@dataclass
class Cast:
    form: Form
    draft: Form
    secret: Form
    owner: Any
    editor: Any
    viewer: Any
    stranger: Any

    def client(self, role: str) -> Client:
        client = Client()
        client.force_login(getattr(self, role))
        return client

    def edit_url(self, form: Form | None = None) -> str:
        return f"/forms/{(form or self.form).pk}/edit/"


@pytest.fixture
def cast(db) -> Cast:
    owner, editor, viewer, stranger = UserFactory.create_batch(4)
    form = form_create(owner=owner, title="Sign-up", conflict_policy="manual")
    member_set(user=owner, form_id=form.pk, member_id=editor.pk, role="editor")
    member_set(user=owner, form_id=form.pk, member_id=viewer.pk, role="viewer")
    field_add(
        user=owner,
        form_id=form.pk,
        base_revision=0,
        client_msg_id="add-email",
        key="email",
        type="email",
        label="E-mail",
    )
    form_change(
        user=owner,
        form_id=form.pk,
        base_revision=1,
        client_msg_id="publish",
        prop="status",
        value="published",
    )
    draft = form_create(owner=owner, title="Draft")
    secret = form_create(owner=stranger, title="Secret")
    return Cast(Form.objects.get(pk=form.pk), draft, secret, owner, editor, viewer, stranger)


def form_row(html: str, form: Form) -> str:
    """The list item of one form on the list page."""
    match = re.search(rf'<li data-form="{form.pk}">(.*?)</li>', html, re.S)
    assert match, f"form {form.pk} is not listed"
    return match.group(1)


# --- /forms/ -----------------------------------------------------------------------------------


def test_the_urls_are_the_named_ones(cast):
    assert reverse("forms-page") == LIST
    assert reverse("form-builder-page", args=[cast.form.pk]) == cast.edit_url()


def test_the_list_sends_anonymous_visitors_to_sign_in(db):
    response = Client().get(LIST)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={LIST}"


def test_the_list_shows_the_forms_one_is_a_member_of_with_their_links(cast):
    response = cast.client("owner").get(LIST)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Secret" not in html
    published, draft = form_row(html, cast.form), form_row(html, cast.draft)
    assert f'href="/forms/{cast.form.pk}/edit/"' in published
    assert f'href="/forms/{cast.form.pk}/fill/"' in published
    assert f'href="/forms/{cast.form.pk}/dashboard/"' in published
    assert "you are owner" in published and "Published" in published
    # A draft is nobody's to fill yet.
    assert f'href="/forms/{cast.draft.pk}/edit/"' in draft
    assert "/fill/" not in draft
    assert '<label for="id_title">New form</label>' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_a_viewer_gets_no_dashboard_link(cast):
    html = cast.client("viewer").get(LIST).content.decode()

    row = form_row(html, cast.form)
    assert "you are viewer" in row
    assert f'href="/forms/{cast.form.pk}/edit/"' in row
    assert f'href="/forms/{cast.form.pk}/fill/"' in row
    assert "/dashboard/" not in row
    assert f'data-form="{cast.draft.pk}"' not in html


def test_an_editor_gets_the_dashboard_link(cast):
    row = form_row(cast.client("editor").get(LIST).content.decode(), cast.form)

    assert f'href="/forms/{cast.form.pk}/dashboard/"' in row


def test_a_user_without_forms_is_told_so(db):
    client = Client()
    client.force_login(UserFactory())

    assert "No forms yet." in client.get(LIST).content.decode()


def test_creating_a_form_makes_a_draft_one_owns_and_opens_its_builder(cast):
    response = cast.client("editor").post(LIST, {"title": "  Feedback  ", "conflict_policy": "lww"})

    form = Form.objects.get(title="Feedback")
    assert response.status_code == 302
    assert response["Location"] == f"/forms/{form.pk}/edit/"
    assert (form.owner, form.status, form.conflict_policy) == (cast.editor, "draft", "lww")
    assert FormMember.objects.get(form=form).user == cast.editor
    assert cast.client("editor").get(response["Location"]).status_code == 200


def test_creating_a_form_without_a_policy_uses_merge(cast):
    cast.client("owner").post(LIST, {"title": "Plain"})

    assert Form.objects.get(title="Plain").conflict_policy == "merge"


def test_a_blank_title_shows_the_services_error_and_creates_nothing(cast):
    before = Form.objects.count()

    response = cast.client("owner").post(LIST, {"title": "   "})

    assert response.status_code == 200
    html = response.content.decode()
    assert '<p class="error" id="create-error" role="alert">' in html
    assert "&#x27;title&#x27; must be text of 1 to 200 characters." in html
    assert 'aria-invalid="true"' in html
    assert Form.objects.count() == before
    assert f'data-form="{cast.form.pk}"' in html  # the list is still there


def test_a_title_too_long_or_an_unknown_policy_is_refused(cast):
    client = cast.client("owner")

    too_long = client.post(LIST, {"title": "x" * 201}).content.decode()
    policy = client.post(LIST, {"title": "Fine", "conflict_policy": "coin"}).content.decode()

    assert "must be text of 1 to 200 characters" in too_long
    assert "x" * 201 in too_long  # what was typed stays in the box
    assert "&#x27;conflict_policy&#x27; must be one of: lww, merge, manual." in policy
    assert not Form.objects.filter(title="Fine").exists()


def test_the_list_answers_only_get_and_post(cast):
    assert cast.client("owner").delete(LIST).status_code == 405


# --- /forms/<id>/edit/ -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
def test_members_get_the_builder(cast, role):
    response = cast.client(role).get(cast.edit_url())

    assert response.status_code == 200
    assert response.templates[0].name == "forms_live/builder.html"
    assert response.context["role"] == role
    html = response.content.decode()
    assert '<h1 id="form-title">Sign-up</h1>' in html
    assert f'new RealtimeClient("/ws/forms/{cast.form.pk}/edit/")' in html
    assert 'import { mountFormBuilder } from "/static/forms_live/builder.js"' in html
    assert 'href="/static/forms_live/builder.css"' in html
    for element in (
        '<ol class="plain" id="fields" aria-label="Fields">',
        '<ul class="plain" id="conflicts" aria-label="Conflicts to resolve"',
        '<ul class="plain" id="members" aria-label="People on this form"',
        'id="builder-messages" class="messages" role="status" aria-live="polite"',
        '<label for="form-title-input">Title</label>',
        '<label for="form-status-select">Status',
        '<label for="form-policy-select">Conflict policy',
        f'href="/forms/{cast.form.pk}/fill/"',
    ):
        assert element in html, element


def test_builders_get_the_form_to_add_a_field_and_the_dashboard_link(cast):
    html = cast.client("editor").get(cast.edit_url()).content.decode()

    assert '<form id="add-field"' in html
    for label in ("Key", "Type", "Label", "Options (one a line)"):
        assert f">{label}</label>" in html, label
    assert '<option value="single_choice">Single Choice</option>' in html
    assert f'href="/forms/{cast.form.pk}/dashboard/"' in html
    assert "Read only" not in html
    assert "Status (the owner's)" in html  # an editor may not publish


def test_the_owner_changes_status_and_policy(cast):
    html = cast.client("owner").get(cast.edit_url()).content.decode()

    assert '<label for="form-status-select">Status</label>' in html
    assert '<option value="published" selected>Published</option>' in html
    assert '<option value="manual" selected>Manual</option>' in html


def test_a_viewer_sees_the_builder_read_only(cast):
    html = cast.client("viewer").get(cast.edit_url()).content.decode()

    assert "Read only: you are a viewer of this form." in html
    assert 'id="add-field"' not in html
    assert "/dashboard/" not in html


def test_a_draft_has_no_fill_link_to_show_yet(cast):
    html = cast.client("owner").get(cast.edit_url(cast.draft)).content.decode()

    assert f'<a id="fill-link" href="/forms/{cast.draft.pk}/fill/" hidden>' in html


def test_a_stranger_gets_404_as_for_a_form_that_does_not_exist(cast):
    stranger = cast.client("stranger")

    assert stranger.get(cast.edit_url()).status_code == 404
    assert stranger.get(cast.edit_url(cast.draft)).status_code == 404
    assert stranger.get(cast.edit_url(cast.secret)).status_code == 200
    assert cast.client("owner").get(cast.edit_url(cast.secret)).status_code == 404
    assert cast.client("owner").get("/forms/99999999/edit/").status_code == 404
    assert cast.client("owner").get("/forms/99999999999999999999/edit/").status_code == 404


def test_the_builder_sends_anonymous_visitors_to_sign_in(cast):
    response = Client().get(cast.edit_url())

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={cast.edit_url()}"


def test_the_builder_is_read_with_get_only(cast):
    assert cast.client("owner").post(cast.edit_url()).status_code == 405


def test_the_page_script_and_stylesheet_are_served(cast):
    client = cast.client("owner")

    script = client.get("/static/forms_live/builder.js")
    style = client.get("/static/forms_live/builder.css")

    assert script.status_code == 200
    assert "export function mountFormBuilder" in b"".join(script.streaming_content).decode()
    assert style.status_code == 200


# --- the page's state against the server's ------------------------------------------------------


def test_the_pages_state_built_from_the_changes_is_the_snapshot(cast):
    """The builder page applies the events of every kind the services broadcast (as stored,
    which is how they are broadcast and replayed) to an older snapshot, and ends where a fresh
    snapshot is: fields, order, values, open conflicts, the form's own properties."""
    owner, editor, form_id = cast.owner, cast.editor, cast.form.pk
    start = edit_snapshot(form_id=form_id)
    base = start["revision"]
    step = iter(range(100))

    def at(**fields):
        return {"form_id": form_id, "client_msg_id": f"m-{next(step)}", **fields}

    def revision():
        return Form.objects.get(pk=form_id).revision

    for key, kind in (("name", "text"), ("color", "single_choice"), ("age", "number")):
        options = ["Red", "Blue"] if kind == "single_choice" else None
        field_add(
            user=owner,
            **at(base_revision=revision(), key=key, type=kind, label=key, options=options),
        )
    field_move(user=editor, **at(base_revision=revision(), key="age", position=0))
    label = {"key": "name", "prop": "label"}
    stale = revision()
    field_change(user=owner, **at(base_revision=stale, value="Full name", **label))
    field_change(user=editor, **at(base_revision=stale, value="Your name", **label))  # opened
    field_change(
        user=editor, **at(base_revision=revision(), key="email", prop="label", value="Mail")
    )
    field_change(user=editor, **at(base_revision=stale, value="Mail!", key="email", prop="label"))
    field_change(user=owner, **at(base_revision=revision(), key="age", prop="required", value=True))
    field_change(user=owner, **at(base_revision=revision(), key="color", prop="type", value="text"))
    opened = edit_snapshot(form_id=form_id)["conflicts"]
    assert len(opened) == 2
    conflict_resolve(user=owner, **at(conflict_id=opened[0]["id"], resolution="proposed"))
    field_remove(user=editor, **at(base_revision=revision(), key="color"))
    form_change(user=owner, **at(base_revision=revision(), prop="title", value="Sign up now"))
    form_change(user=owner, **at(base_revision=revision(), prop="conflict_policy", value="lww"))
    frames = [
        {"type": c.type, "stream": f"forms.form.{form_id}", "seq": c.revision, "data": c.data}
        for c in changes_between(form_id=form_id, after=base)
    ]
    assert len({frame["type"] for frame in frames}) == 7  # every kind of change

    def state_of(snapshot):
        return run_node(
            f"import * as b from {json.dumps(BUILDER)};",
            """
            const state = b.newState();
            b.applyFrame(state, { type: "forms.form.snapshot", data: data.snapshot });
            for (const frame of data.frames) b.applyFrame(state, frame);
            const { updated_at, ...form } = state.form;
            process.stdout.write(JSON.stringify({
              form, fields: state.fields, revision: state.revision,
              conflicts: [...state.conflicts.values()].map((c) => [c.id, c.field, c.prop]),
            }));
            """,
            {"snapshot": {**snapshot, "members": []}, "frames": frames},
        )

    end = edit_snapshot(form_id=form_id)
    assert state_of(start) == state_of(end)
    assert state_of(end)["revision"] == revision() == frames[-1]["seq"]
