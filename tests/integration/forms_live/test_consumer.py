"""``/ws/forms/<id>/edit|fill|dashboard/`` through the real ASGI app, Redis layer and
PostgreSQL."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from forms_live.models import Submission
from forms_live.services import field_add, form_change, form_create, member_set
from tests.factories import UserFactory
from tests.integration.ws import (
    close_code,
    communicator,
    drain,
    next_of,
    receive,
    request,
    ticket_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def form(ws_user):
    form = form_create(owner=ws_user, title="Sign-up", conflict_policy="manual")
    field_add(
        user=ws_user,
        form_id=form.pk,
        base_revision=0,
        client_msg_id="f1",
        key="email",
        type="email",
        label="E-mail",
        required=True,
    )
    field_add(
        user=ws_user,
        form_id=form.pk,
        base_revision=1,
        client_msg_id="f2",
        key="age",
        type="number",
        label="Age",
        rules={"min": 18},
    )
    return form


@pytest.fixture
def published(ws_user, form):
    form_change(
        user=ws_user,
        form_id=form.pk,
        base_revision=2,
        client_msg_id="p",
        prop="status",
        value="published",
    )
    return form


@pytest.fixture
def editor(ws_user, form):
    user = UserFactory()
    member_set(user=ws_user, form_id=form.pk, member_id=user.pk, role="editor")
    return user


@pytest.fixture
def stranger(transactional_db):
    return UserFactory()


@pytest.fixture
def viewer(ws_user, form):
    user = UserFactory()
    member_set(user=ws_user, form_id=form.pk, member_id=user.pk, role="viewer")
    return user


@pytest.fixture
async def joined(communicators):
    async def join_(user, path: str, query: str = "", headers=None):
        comm = communicator(
            f"{path}?ticket={ticket_for(user)}{query}", ticket=None, headers=headers
        )
        communicators.append(comm)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        assert (await receive(comm))["type"] == "session.welcome"
        return comm, await receive(comm)

    return join_


async def test_builders_get_the_form_and_each_others_changes_in_revision_order(
    ws_user, editor, form, joined
):
    owner, snapshot = await joined(ws_user, f"/ws/forms/{form.pk}/edit/")
    other, _ = await joined(editor, f"/ws/forms/{form.pk}/edit/")

    change = {
        "base_revision": 2,
        "client_msg_id": "c1",
        "key": "email",
        "prop": "label",
        "value": "Work e-mail",
    }
    ack = await request(other, "forms.field.change", change)
    event = await next_of(owner, "forms.field.changed")

    assert snapshot["type"] == "forms.form.snapshot"
    assert [f["key"] for f in snapshot["data"]["form"]["fields"]] == ["email", "age"]
    assert snapshot["data"]["revision"] == 2
    assert (ack["data"]["revision"], ack["data"]["outcome"]) == (3, "applied")
    assert (event["stream"], event["seq"]) == (f"forms.form.{form.pk}", 3)
    assert event["data"]["value"] == "Work e-mail"


async def test_a_manual_conflict_is_pushed_and_resolved_live(ws_user, editor, form, joined):
    owner, _ = await joined(ws_user, f"/ws/forms/{form.pk}/edit/")
    other, _ = await joined(editor, f"/ws/forms/{form.pk}/edit/")
    first = {
        "base_revision": 2,
        "client_msg_id": "a",
        "key": "email",
        "prop": "label",
        "value": "Mail",
    }
    second = {**first, "client_msg_id": "b", "value": "E-mail address"}

    await request(owner, "forms.field.change", first)
    clash = await request(other, "forms.field.change", second)
    opened = await next_of(owner, "forms.conflict.opened")
    conflict_id = opened["data"]["conflict"]["id"]
    resolved = await request(
        owner,
        "forms.conflict.resolve",
        {"conflict_id": conflict_id, "resolution": "proposed", "client_msg_id": "r"},
    )
    settled = await next_of(other, "forms.conflict.resolved")

    assert clash["data"]["outcome"] == "conflict"
    assert opened["data"]["conflict"]["current_value"] == "Mail"
    assert opened["data"]["conflict"]["proposed_value"] == "E-mail address"
    assert resolved["type"] == "ack"
    assert settled["data"]["value"] == "E-mail address"


async def test_resume_with_since_replays_the_missed_changes(ws_user, form, joined):
    _, first = await joined(ws_user, f"/ws/forms/{form.pk}/edit/", "&since=1")
    rest = [first, *await drain(_)]
    frames = [f for f in rest if f["type"].startswith("forms.")]

    assert [(f["type"], f.get("seq")) for f in frames] == [
        ("forms.field.added", 2),
        ("forms.form.resumed", None),
    ]


async def test_strangers_get_4404_and_viewers_cannot_change_or_watch_the_dashboard(
    form, stranger, viewer, joined
):
    for path in ("edit", "dashboard", "fill"):  # fill: a draft is nobody's to fill
        comm = communicator(f"/ws/forms/{form.pk}/{path}/", ticket=ticket_for(stranger))
        await comm.connect(timeout=5)
        assert await close_code(comm) == 4404
        await comm.disconnect()
    comm = communicator(f"/ws/forms/{form.pk}/dashboard/", ticket=ticket_for(viewer))
    await comm.connect(timeout=5)
    assert await close_code(comm) == 4403
    await comm.disconnect()
    watching, _ = await joined(viewer, f"/ws/forms/{form.pk}/edit/")
    change = {
        "base_revision": 2,
        "client_msg_id": "v",
        "key": "email",
        "prop": "label",
        "value": "x",
    }
    assert (await request(watching, "forms.field.change", change))["error"]["code"] == "forbidden"


async def test_a_respondent_gets_live_feedback_and_the_dashboard_follows(
    ws_user, published, stranger, joined
):
    respondent = stranger
    dashboard, opening = await joined(ws_user, f"/ws/forms/{published.pk}/dashboard/")
    fill, snapshot = await joined(
        respondent, f"/ws/forms/{published.pk}/fill/", headers=[(b"user-agent", PHONE.encode())]
    )

    bad = await request(fill, "forms.submission.update", {"values": {"email": "nope", "age": 12}})
    refused = await request(fill, "forms.submission.submit", {}, id="s1")
    good = await request(
        fill, "forms.submission.update", {"values": {"email": "a@example.com", "age": 30}}, id="u2"
    )
    sent = await request(fill, "forms.submission.submit", {}, id="s2")
    updates = [
        f for f in await drain(dashboard, quiet=0.6) if f["type"] == "forms.dashboard.updated"
    ]

    assert opening["data"]["analytics"]["starts"] == 0
    assert snapshot["data"]["submission"]["device"] == {
        "browser": "Mobile Safari",
        "os": "iOS",
        "type": "mobile",
    }
    assert bad["data"]["submission"]["errors"] == {"email": ["email"], "age": ["min"]}
    assert bad["data"]["submission"]["progress"] == 0
    assert refused["error"]["code"] == "invalid"
    assert refused["error"]["details"]["errors"] == {"email": ["email"], "age": ["min"]}
    assert (good["data"]["submission"]["errors"], good["data"]["submission"]["progress"]) == (
        {},
        100,
    )
    assert sent["data"]["submission"]["status"] == "submitted"
    assert updates, "the dashboard heard nothing"
    assert updates[-1]["data"]["submissions"][-1]["status"] == "submitted"
    assert updates[-1]["data"]["analytics"]["completions"] == 1
    stored = await sync_to_async(Submission.objects.get)()
    assert (stored.status, stored.values) == ("submitted", {"email": "a@example.com", "age": 30})


async def test_a_view_moves_the_dashboard_and_a_reconnect_is_not_another_view(
    ws_user, published, stranger, joined
):
    path = f"/ws/forms/{published.pk}/fill/"
    dashboard, _ = await joined(ws_user, f"/ws/forms/{published.pk}/dashboard/")
    await joined(stranger, path)  # starts the submission: the dashboard hears of it anyway
    await drain(dashboard, quiet=0.6)
    await joined(stranger, path)  # the same submission, a second page: only a view
    after_view = await drain(dashboard, quiet=0.6)
    await joined(stranger, path, "&resumed=1")  # that page reconnecting: no view
    after_reconnect = await drain(dashboard, quiet=0.6)

    updates = [f for f in after_view if f["type"] == "forms.dashboard.updated"]
    assert len(updates) == 1
    assert updates[0]["data"]["analytics"]["views"] == 2
    assert updates[0]["data"]["submissions"] == []  # no submission changed
    assert [f for f in after_reconnect if f["type"] == "forms.dashboard.updated"] == []
    assert await sync_to_async(lambda: type(published).objects.get(pk=published.pk).views)() == 2
