"""Forms, members, builder changes under each conflict policy, submissions and the funnel
(forms_live/services and forms_live/selectors.py) on PostgreSQL, with broadcasts heard through
the real Redis channel layer.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from config.errors import AppError, ErrorCode
from forms_live.models import (
    ConflictStatus,
    FieldConflict,
    Form,
    FormChange,
    FormField,
    FormMember,
    Role,
    Submission,
)
from forms_live.selectors import changes_between, field_payload, form_stats
from forms_live.services import (
    conflict_resolve,
    dashboard_group,
    field_add,
    field_change,
    field_move,
    field_remove,
    form_change,
    form_create,
    form_delete,
    form_group,
    form_viewed,
    member_remove,
    member_set,
    respondent_group,
    submission_set_status,
    submission_start,
    submission_stream,
    submission_submit,
    submission_update,
)
from monitoring.models import SystemEvent
from tests.factories import UserFactory

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
ANDROID_FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0"


# --- helpers -----------------------------------------------------------------------------------


def error_of(call) -> AppError:
    with pytest.raises(AppError) as caught:
        call()
    return caught.value


def error_code(call) -> ErrorCode:
    return error_of(call).code


_keys = iter(range(1, 10**9))


def msg() -> str:
    return f"m{next(_keys)}"


def now_at(form) -> int:
    return Form.objects.get(pk=form.pk).revision


def add(form, user, key, *, base=None, client_msg_id=None, **props):
    props = {"type": "text", "label": key.title(), **props}
    return field_add(
        user=user,
        form_id=form.pk,
        base_revision=now_at(form) if base is None else base,
        client_msg_id=client_msg_id or msg(),
        key=key,
        **props,
    )


def change(form, user, key, prop, value, *, base=None, client_msg_id=None):
    return field_change(
        user=user,
        form_id=form.pk,
        base_revision=now_at(form) if base is None else base,
        client_msg_id=client_msg_id or msg(),
        key=key,
        prop=prop,
        value=value,
    )


def set_form(form, user, prop, value, *, base=None):
    return form_change(
        user=user,
        form_id=form.pk,
        base_revision=now_at(form) if base is None else base,
        client_msg_id=msg(),
        prop=prop,
        value=value,
    )


def resolve(form, user, conflict_id, resolution, value=None):
    return conflict_resolve(
        user=user,
        form_id=form.pk,
        conflict_id=conflict_id,
        resolution=resolution,
        client_msg_id=msg(),
        value=value,
    )


def share(form, owner, user, role=Role.EDITOR):
    member_set(user=owner, form_id=form.pk, member_id=user.pk, role=role)
    return user


def the_field(form, key) -> FormField:
    return FormField.objects.get(form=form, key=key)


def order(form) -> list[tuple[str, int]]:
    return list(
        FormField.objects.filter(form=form).order_by("position").values_list("key", "position")
    )


def revisions(form) -> list[int]:
    return list(FormChange.objects.filter(form=form).values_list("revision", flat=True))


def published(owner, **options) -> Form:
    form = form_create(owner=owner, title="Sign-up", **options)
    add(form, owner, "name", required=True)
    add(form, owner, "email", type="email", required=True)
    add(form, owner, "age", type="number", rules={"min": 18})
    set_form(form, owner, "status", "published")
    return Form.objects.get(pk=form.pk)


def start(form, user, **options) -> Submission:
    return submission_start(user=user, form_id=form.pk, **options)


def fill(form, user, submission, values):
    return submission_update(user=user, form_id=form.pk, token=submission.token, values=values)


def send(form, user, submission):
    return submission_submit(user=user, form_id=form.pk, token=submission.token)


def move_on(form, user, submission, status):
    return submission_set_status(
        user=user, form_id=form.pk, submission_id=submission.pk, status=status
    )


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


def listen(groups: list[str], action, *, timeout: float = 0.5) -> tuple[Any, dict[str, list]]:
    """Run ``action(ear)`` (sync, with its own transactions) while one channel per group
    listens; returns what it returned (or raised) and the frames each group heard."""

    async def run():
        layer = get_channel_layer()
        ears = {}
        for group in groups:
            ears[group] = Ear(layer, await layer.new_channel())
            await layer.group_add(group, ears[group].channel)
        pumps = [asyncio.create_task(ear.pump()) for ear in ears.values()]
        try:
            try:
                outcome = await sync_to_async(action)(next(iter(ears.values())))
            except Exception as error:  # handed back to the test
                outcome = error
            await asyncio.sleep(timeout)
        finally:
            for pump in pumps:
                pump.cancel()
            for group, ear in ears.items():
                await layer.group_discard(group, ear.channel)
        return outcome, {group: ear.heard for group, ear in ears.items()}

    return async_to_sync(run)()


def concurrently(count: int, work) -> list[Any]:
    """``work(n)`` on ``count`` threads released at once, each on its own connection; an
    AppError is returned, not raised."""
    barrier = threading.Barrier(count)

    def run(n: int):
        barrier.wait()
        try:
            return work(n)
        except AppError as error:
            return error
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
def form(owner):
    return form_create(owner=owner, title="Sign-up")


@pytest.fixture
def editor(form, owner):
    return share(form, owner, UserFactory(username="Eddie"), Role.EDITOR)


@pytest.fixture
def viewer(form, owner):
    return share(form, owner, UserFactory(username="Vera"), Role.VIEWER)


@pytest.fixture
def stranger(db):
    return UserFactory(username="Stan")


@pytest.fixture
def respondent(db):
    return UserFactory(username="Rita")


def policy_form(owner, editor, policy) -> Form:
    form = form_create(owner=owner, title=f"{policy} form", conflict_policy=policy)
    share(form, owner, editor)
    add(form, owner, "name", label="Full name", help="As on your passport")
    add(form, owner, "colour", type="multiple_choice", options=["red", "green", "blue"])
    return form


# --- forms and members -------------------------------------------------------------------------


def test_a_new_form_is_a_draft_at_revision_0_owned_by_its_creator(owner):
    form = form_create(owner=owner, title="  Sign-up  ", conflict_policy="manual", anonymous=True)

    assert (form.title, form.status, form.conflict_policy, form.anonymous) == (
        "Sign-up",
        "draft",
        "manual",
        True,
    )
    assert (form.revision, form.owner) == (0, owner)
    assert list(FormMember.objects.filter(form=form).values_list("user", "role")) == [
        (owner.pk, "owner")
    ]


@pytest.mark.parametrize(
    "options",
    [{"title": ""}, {"title": "   "}, {"title": "x" * 201}, {"title": 7},
     {"title": "ok", "conflict_policy": "mine"}, {"title": "ok", "anonymous": "yes"}],
)  # fmt: skip
def test_a_form_with_bad_properties_is_invalid_and_not_made(owner, options):
    assert error_code(lambda: form_create(owner=owner, **options)) is ErrorCode.INVALID
    assert not Form.objects.exists()


def test_the_owner_adds_members_and_changes_their_roles(form, owner, editor):
    member = member_set(user=owner, form_id=form.pk, member_id=editor.pk, role=Role.VIEWER)

    assert (member.user, member.role) == (editor, "viewer")
    assert FormMember.objects.get(form=form, user=editor).role == "viewer"
    assert FormMember.objects.filter(form=form).count() == 2


def test_member_changes_and_deletions_are_audit_lines_and_repeats_are_not(form, owner, editor):
    member_set(user=owner, form_id=form.pk, member_id=editor.pk, role="viewer")
    member_set(user=owner, form_id=form.pk, member_id=editor.pk, role="viewer")  # no change
    member_remove(user=owner, form_id=form.pk, member_id=editor.pk)
    form_id = form.pk
    form_delete(user=owner, form_id=form_id)

    events = SystemEvent.objects.filter(kind="user_activity").order_by("id")
    lines = [(e.actor, e.details) for e in events]
    assert lines[1:] == [  # the first: the fixture made the editor
        (owner, {"action": "form_member_set", "form_id": form_id, "user_id": editor.pk,
                 "role": "viewer"}),
        (owner, {"action": "form_member_removed", "form_id": form_id, "user_id": editor.pk}),
        (owner, {"action": "form_deleted", "form_id": form_id, "title": "Sign-up"}),
    ]  # fmt: skip


def test_only_the_owner_manages_members(form, owner, editor, viewer, stranger):
    def set_by(user):
        return lambda: member_set(user=user, form_id=form.pk, member_id=stranger.pk, role="viewer")

    assert error_code(set_by(editor)) is ErrorCode.FORBIDDEN
    assert error_code(set_by(viewer)) is ErrorCode.FORBIDDEN
    assert error_code(set_by(stranger)) is ErrorCode.NOT_FOUND
    remove = lambda: member_remove(user=editor, form_id=form.pk, member_id=viewer.pk)  # noqa: E731
    assert error_code(remove) is ErrorCode.FORBIDDEN
    assert not FormMember.objects.filter(form=form, user=stranger).exists()


def test_a_bad_role_or_user_is_invalid(form, owner, stranger):
    def set_to(member_id, role):
        return lambda: member_set(user=owner, form_id=form.pk, member_id=member_id, role=role)

    assert error_code(set_to(stranger.pk, "admin")) is ErrorCode.INVALID
    assert error_code(set_to(10**9, "viewer")) is ErrorCode.INVALID
    stranger.is_active = False
    stranger.save()
    assert error_code(set_to(stranger.pk, "viewer")) is ErrorCode.INVALID


def test_a_form_always_keeps_an_owner(form, owner, editor):
    step_down = lambda: member_set(  # noqa: E731
        user=owner, form_id=form.pk, member_id=owner.pk, role="editor"
    )
    leave = lambda: member_remove(user=owner, form_id=form.pk, member_id=owner.pk)  # noqa: E731

    assert error_code(step_down) is ErrorCode.CONFLICT
    assert error_code(leave) is ErrorCode.CONFLICT
    assert FormMember.objects.get(form=form, user=owner).role == "owner"


def test_when_the_named_owner_steps_down_another_owner_is_named(form, owner, editor):
    member_set(user=owner, form_id=form.pk, member_id=editor.pk, role="owner")

    member_set(user=owner, form_id=form.pk, member_id=owner.pk, role="editor")

    form.refresh_from_db()
    assert form.owner == editor
    member_remove(user=editor, form_id=form.pk, member_id=owner.pk)
    assert list(FormMember.objects.filter(form=form).values_list("user", "role")) == [
        (editor.pk, "owner")
    ]


def test_a_removed_member_no_longer_finds_the_form(form, owner, editor):
    member_remove(user=owner, form_id=form.pk, member_id=editor.pk)

    assert error_code(lambda: add(form, editor, "name")) is ErrorCode.NOT_FOUND
    again = lambda: member_remove(user=owner, form_id=form.pk, member_id=editor.pk)  # noqa: E731
    assert error_code(again) is ErrorCode.NOT_FOUND


def test_only_the_owner_deletes_a_form_and_its_rows_go_with_it(form, owner, editor, stranger):
    add(form, owner, "name")

    assert error_code(lambda: form_delete(user=editor, form_id=form.pk)) is ErrorCode.FORBIDDEN
    assert error_code(lambda: form_delete(user=stranger, form_id=form.pk)) is ErrorCode.NOT_FOUND
    form_delete(user=owner, form_id=form.pk)

    assert not Form.objects.exists()
    assert not FormField.objects.exists()
    assert not FormChange.objects.exists()
    assert not FormMember.objects.exists()


# --- field_add ---------------------------------------------------------------------------------


def test_adding_a_field_is_revision_1_with_its_change_stored(form, owner):
    result = add(form, owner, "email", type="email", label="E-mail", required=True)

    assert (result.revision, result.outcome, result.duplicate) == (1, "applied", False)
    assert result.data["field"] == {
        "key": "email",
        "type": "email",
        "label": "E-mail",
        "help": "",
        "required": True,
        "rules": {},
        "options": [],
        "position": 0,
    }
    assert result.data["order"] == ["email"]
    assert result.data["by"] == {"id": owner.pk, "username": "Olive"}
    (stored,) = FormChange.objects.filter(form=form)
    assert (stored.revision, stored.type, stored.field_key, stored.base_revision) == (
        1,
        "forms.field.added",
        "email",
        0,
    )
    assert (stored.author, stored.data) == (owner, result.data)
    assert now_at(form) == 1


@pytest.mark.parametrize("key", ["", "1st", "Name", "first-name", "a b", "x" * 65, None, 5])
def test_a_field_key_must_be_lower_case_letters_digits_and_underscores(form, owner, key):
    call = lambda: field_add(  # noqa: E731
        user=owner, form_id=form.pk, base_revision=0, client_msg_id=msg(), key=key,
        type="text", label="L",
    )  # fmt: skip
    assert error_code(call) is ErrorCode.INVALID
    assert not FormField.objects.exists()
    assert now_at(form) == 0


@pytest.mark.parametrize("key", ["a", "first_name2", "x" * 64])
def test_good_field_keys_are_taken(form, owner, key):
    assert add(form, owner, key).data["field"]["key"] == key


def test_a_duplicate_key_is_a_conflict_and_changes_nothing(form, owner):
    add(form, owner, "name")

    assert error_code(lambda: add(form, owner, "name", label="Again")) is ErrorCode.CONFLICT
    assert now_at(form) == 1
    assert revisions(form) == [1]


@pytest.mark.parametrize(
    ("props", "problem"),
    [
        ({"type": "single_choice"}, "needs between 1 and"),
        ({"type": "number", "rules": {"min": 5, "max": 1}}, "'min' must not be greater"),
        ({"type": "text", "rules": {"colour": "red"}}, "Unknown rule 'colour'"),
        ({"type": "text", "rules": {"pattern": "("}}, "not a valid regular expression"),
        ({"type": "text", "options": ["a"]}, "takes no options"),
        ({"type": "multiple_choice", "options": ["a", "a"]}, "distinct"),
    ],
)
def test_a_bad_definition_is_invalid_with_its_problems(form, owner, props, problem):
    error = error_of(lambda: add(form, owner, "pick", **props))

    assert error.code is ErrorCode.INVALID
    assert any(problem in text for text in error.details["problems"]), error.details
    assert not FormField.objects.exists()
    assert now_at(form) == 0


@pytest.mark.parametrize(
    "props",
    [{"type": "datetime"}, {"type": "text", "label": ""}, {"type": "text", "label": "   "},
     {"type": "text", "required": "yes"}, {"type": "text", "rules": []},
     {"type": "text", "help": "x" * 2001}, {"type": "single_choice", "options": "a,b"},
     {"type": "text", "position": -1}, {"type": "text", "position": True},
     {"type": "text", "label": " " * 200 + "L"}],  # its column holds 200 (fuzz: harness_envelope)
)  # fmt: skip
def test_bad_field_properties_are_invalid(form, owner, props):
    props = {"label": "L", **props}
    assert error_code(lambda: add(form, owner, "when", **props)) is ErrorCode.INVALID
    assert not FormField.objects.exists()


def test_a_field_goes_where_it_is_put_and_positions_stay_0_to_n(form, owner):
    for key in ("a", "b", "c"):
        add(form, owner, key)

    result = add(form, owner, "d", position=1)
    add(form, owner, "e", position=0)
    add(form, owner, "f", position=99)  # past the end: the end

    assert result.data["order"] == ["a", "d", "b", "c"]
    assert result.data["field"]["position"] == 1
    assert order(form) == [("e", 0), ("a", 1), ("d", 2), ("b", 3), ("c", 4), ("f", 5)]


def test_every_change_is_one_revision_and_the_log_has_no_gaps(form, owner, editor):
    add(form, owner, "a")
    add(form, editor, "b")
    change(form, editor, "a", "label", "First")
    field_move(
        user=owner, form_id=form.pk, base_revision=3, client_msg_id=msg(), key="b", position=0
    )
    field_remove(user=editor, form_id=form.pk, base_revision=4, client_msg_id=msg(), key="a")
    set_form(form, editor, "title", "Renamed")

    assert revisions(form) == [1, 2, 3, 4, 5, 6]
    assert now_at(form) == 6
    assert [c.type for c in changes_between(form_id=form.pk, after=0)] == [
        "forms.field.added",
        "forms.field.added",
        "forms.field.changed",
        "forms.field.moved",
        "forms.field.removed",
        "forms.form.changed",
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_builders_get_revisions_without_gaps_or_duplicates():
    owner = UserFactory()
    form = form_create(owner=owner, title="Race")
    builders = [owner] + [share(form, owner, UserFactory()) for _ in range(3)]

    def build(n):
        results = []
        for i in range(5):
            # Each at the revision it last saw, as a client would: some are behind.
            results.append(add(form, builders[n], f"f{n}_{i}", base=0))
        return [(r.revision, r.data["field"]["key"]) for r in results]

    written = [pair for pairs in concurrently(4, build) for pair in pairs]

    assert sorted(revision for revision, _ in written) == list(range(1, 21))
    assert revisions(form) == list(range(1, 21))
    assert now_at(form) == 20
    positions = [position for _, position in order(form)]
    assert positions == list(range(20))
    for revision, key in written:
        assert FormChange.objects.get(form=form, revision=revision).field_key == key


@pytest.mark.django_db(transaction=True)
def test_two_builders_adding_one_key_at_once_make_one_field_and_one_conflict():
    owner = UserFactory()
    form = form_create(owner=owner, title="Same key")
    editor = share(form, owner, UserFactory())

    results = concurrently(2, lambda n: add(form, [owner, editor][n], "email", base=0))

    applied = [r for r in results if not isinstance(r, AppError)]
    refused = [r for r in results if isinstance(r, AppError)]
    assert [r.revision for r in applied] == [1]
    assert [e.code for e in refused] == [ErrorCode.CONFLICT]
    assert revisions(form) == [1]


def test_a_change_resubmitted_with_its_key_is_the_original(form, owner):
    first = add(form, owner, "name", client_msg_id="k1")

    again = add(form, owner, "other", client_msg_id="k1")

    assert again.duplicate and not first.duplicate
    assert (again.revision, again.data, again.outcome) == (1, first.data, "applied")
    assert list(FormField.objects.values_list("key", flat=True)) == ["name"]
    assert revisions(form) == [1]


def test_the_same_key_from_another_builder_is_another_change(form, owner, editor):
    add(form, owner, "a", client_msg_id="k1")

    result = add(form, editor, "b", client_msg_id="k1")

    assert (result.revision, result.duplicate) == (2, False)


@pytest.mark.django_db(transaction=True)
def test_a_change_submitted_twice_at_once_is_made_once():
    owner = UserFactory()
    form = form_create(owner=owner, title="Twice")

    results = concurrently(3, lambda n: add(form, owner, "name", base=0, client_msg_id="same"))

    assert sorted(r.duplicate for r in results) == [False, True, True]
    assert {r.revision for r in results} == {1}
    assert FormField.objects.filter(form=form).count() == 1
    assert revisions(form) == [1]


def test_a_base_revision_newer_than_the_form_is_a_conflict(form, owner):
    add(form, owner, "name")

    error = error_of(lambda: add(form, owner, "email", base=2))

    assert error.code is ErrorCode.CONFLICT
    assert "revision 1" in error.message
    assert now_at(form) == 1


@pytest.mark.parametrize("base", [-1, "1", 1.0, None, True])
def test_a_base_revision_that_is_not_a_revision_is_invalid(form, owner, base):
    call = lambda: field_add(  # noqa: E731
        user=owner, form_id=form.pk, base_revision=base, client_msg_id=msg(), key="k",
        type="text", label="L",
    )  # fmt: skip
    assert error_code(call) is ErrorCode.INVALID


@pytest.mark.parametrize("key", ["", "x" * 65, 7, None])
def test_a_bad_client_msg_id_is_invalid(form, owner, key):
    call = lambda: field_add(  # noqa: E731
        user=owner, form_id=form.pk, base_revision=0, client_msg_id=key, key="k",
        type="text", label="L",
    )  # fmt: skip
    assert error_code(call) is ErrorCode.INVALID


def test_viewers_cannot_build_and_strangers_do_not_find_the_form(form, owner, viewer, stranger):
    add(form, owner, "name")

    assert error_code(lambda: add(form, viewer, "email")) is ErrorCode.FORBIDDEN
    assert error_code(lambda: add(form, stranger, "email")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: change(form, viewer, "name", "label", "X")) is ErrorCode.FORBIDDEN
    assert error_code(lambda: change(form, stranger, "name", "label", "X")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: add(Form(pk=10**9), owner, "x", base=0)) is ErrorCode.NOT_FOUND
    assert now_at(form) == 1


# --- field_remove and field_move ---------------------------------------------------------------


def test_removing_a_field_closes_the_gap(form, owner):
    for key in ("a", "b", "c", "d"):
        add(form, owner, key)

    result = field_remove(
        user=owner, form_id=form.pk, base_revision=4, client_msg_id=msg(), key="b"
    )

    assert (result.revision, result.data["key"], result.data["order"]) == (5, "b", ["a", "c", "d"])
    assert order(form) == [("a", 0), ("c", 1), ("d", 2)]
    missing = lambda: field_remove(  # noqa: E731
        user=owner, form_id=form.pk, base_revision=5, client_msg_id=msg(), key="b"
    )
    assert error_code(missing) is ErrorCode.NOT_FOUND


@pytest.mark.parametrize(
    ("key", "position", "expected"),
    [
        ("a", 2, ["b", "c", "a", "d"]),
        ("d", 0, ["d", "a", "b", "c"]),
        ("b", 3, ["a", "c", "d", "b"]),
        ("c", 199, ["a", "b", "d", "c"]),
        ("b", 1, ["a", "b", "c", "d"]),
    ],
)
def test_moving_a_field_reorders_and_positions_stay_0_to_n(form, owner, key, position, expected):
    for k in ("a", "b", "c", "d"):
        add(form, owner, k)

    result = field_move(
        user=owner,
        form_id=form.pk,
        base_revision=4,
        client_msg_id=msg(),
        key=key,
        position=position,
    )

    assert result.data["order"] == expected
    assert order(form) == [(k, i) for i, k in enumerate(expected)]
    assert result.revision == 5


def test_moving_to_a_bad_position_is_invalid(form, owner):
    add(form, owner, "a")
    for position in (-1, 200, "1", None):
        call = lambda p=position: field_move(  # noqa: E731
            user=owner, form_id=form.pk, base_revision=1, client_msg_id=msg(), key="a", position=p
        )
        assert error_code(call) is ErrorCode.INVALID
    assert now_at(form) == 1


# --- field_change ------------------------------------------------------------------------------


def test_a_change_sets_the_property_and_records_when(form, owner):
    add(form, owner, "name")

    result = change(form, owner, "name", "label", "Your name")

    assert (result.revision, result.outcome) == (2, "applied")
    assert result.data == {
        "key": "name",
        "prop": "label",
        "value": "Your name",
        "outcome": "applied",
        "by": {"id": owner.pk, "username": "Olive"},
        "field": field_payload(the_field(form, "name")),
    }
    field = the_field(form, "name")
    assert field.label == "Your name"
    assert field.changed_at["label"] == 2
    assert field.changed_at["help"] == 1


@pytest.mark.parametrize("policy", ["lww", "merge", "manual"])
def test_changes_one_after_another_apply_under_every_policy(owner, policy):
    editor = UserFactory()
    form = policy_form(owner, editor, policy)

    first = change(form, owner, "name", "label", "Name")
    second = change(form, editor, "name", "label", "Your name")
    third = change(form, owner, "colour", "options", ["red", "pink"])
    fourth = change(form, editor, "name", "required", True)

    assert [r.outcome for r in (first, second, third, fourth)] == ["applied"] * 4
    assert [r.revision for r in (first, second, third, fourth)] == [3, 4, 5, 6]
    name, colour = the_field(form, "name"), the_field(form, "colour")
    assert (name.label, name.required, colour.options) == ("Your name", True, ["red", "pink"])
    assert not FieldConflict.objects.exists()


@pytest.mark.parametrize("policy", ["lww", "merge", "manual"])
def test_the_same_value_is_unchanged_with_no_revision(owner, policy):
    editor = UserFactory()
    form = policy_form(owner, editor, policy)
    change(form, owner, "name", "label", "Name", base=2)

    same = change(form, editor, "name", "label", "Name", base=2)

    assert (same.outcome, same.revision) == ("unchanged", None)
    assert same.data["value"] == "Name"
    assert now_at(form) == 3
    assert revisions(form) == [1, 2, 3]


def test_lww_the_later_change_wins(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "lww")

    first = change(form, owner, "name", "label", "Your full name", base=2)
    second = change(form, editor, "name", "label", "Full name (required)", base=2)

    assert (first.outcome, second.outcome) == ("applied", "applied")
    assert the_field(form, "name").label == "Full name (required)"


def test_merge_keeps_label_edits_in_different_places(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "merge")

    first = change(form, owner, "name", "label", "Your full name", base=2)
    second = change(form, editor, "name", "label", "Full name (required)", base=2)

    assert (first.outcome, second.outcome) == ("applied", "merged")
    assert second.data["value"] == "Your full name (required)"
    field = the_field(form, "name")
    assert field.label == "Your full name (required)"
    assert field.changed_at["label"] == second.revision == 4


def test_merge_takes_options_as_set_changes(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "merge")

    change(form, owner, "colour", "options", ["red", "green", "pink"], base=2)  # -blue +pink
    merged = change(form, editor, "colour", "options", ["green", "blue", "black"], base=2)

    assert merged.outcome == "merged"
    assert the_field(form, "colour").options == ["green", "pink", "black"]


def test_merge_of_a_scalar_the_later_wins(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "merge")

    change(form, owner, "name", "rules", {"max_length": 10}, base=2)
    later = change(form, editor, "name", "rules", {"max_length": 20}, base=2)

    assert later.outcome == "applied"
    assert the_field(form, "name").rules == {"max_length": 20}


def test_merge_reads_the_base_from_the_change_log(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "merge")
    change(form, owner, "name", "label", "Full name!")  # r3: the base of both below

    change(form, owner, "name", "label", "Your full name!", base=3)
    merged = change(form, editor, "name", "label", "Full name!!", base=3)

    assert the_field(form, "name").label == merged.data["value"] == "Your full name!!"


def test_a_merged_label_that_is_too_long_is_invalid_not_a_crash(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "merge")

    change(form, owner, "name", "label", "A" * 150 + "Full name", base=2)
    error = error_of(lambda: change(form, editor, "name", "label", "Full name" + "B" * 150, base=2))

    assert error.code is ErrorCode.INVALID
    assert the_field(form, "name").label == "A" * 150 + "Full name"
    assert now_at(form) == 3


def test_merged_options_past_the_limit_are_invalid_with_problems(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "merge")
    base = ["red", "green", "blue"]

    change(form, owner, "colour", "options", base + [f"a{i}" for i in range(60)], base=2)
    error = error_of(
        lambda: change(
            form, editor, "colour", "options", base + [f"b{i}" for i in range(60)], base=2
        )
    )

    assert error.code is ErrorCode.INVALID
    assert error.details["problems"]
    assert len(the_field(form, "colour").options) == 63


def test_manual_opens_a_conflict_and_keeps_the_first_value(owner):
    editor = UserFactory(username="Eddie")
    form = policy_form(owner, editor, "manual")
    change(form, editor, "name", "label", "Your full name", base=2)
    change(form, owner, "name", "help", "Any name will do", base=3)  # another property, later

    result = change(form, owner, "name", "label", "Full name (required)", base=2)

    assert (result.outcome, result.revision) == ("conflict", 5)
    assert the_field(form, "name").label == "Your full name"
    conflict = FieldConflict.objects.get()
    assert (conflict.status, conflict.prop, conflict.base_revision) == ("open", "label", 2)
    assert (conflict.current_value, conflict.current_by) == ("Your full name", editor)
    assert (conflict.proposed_value, conflict.proposed_by) == ("Full name (required)", owner)
    payload = result.data["conflict"]
    assert (payload["id"], payload["field"], payload["status"]) == (conflict.pk, "name", "open")
    assert payload["current_by"] == {"id": editor.pk, "username": "Eddie"}
    assert FormChange.objects.get(revision=5).type == "forms.conflict.opened"


def test_manual_conflicts_on_a_scalar_too(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "manual")
    change(form, editor, "name", "required", True, base=2)

    change(form, owner, "name", "required", False, base=1)

    conflict = FieldConflict.objects.get()
    assert (conflict.current_value, conflict.current_by, conflict.proposed_value) == (
        True,
        editor,
        False,
    )


def test_manual_applies_when_the_others_came_back_to_the_base(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "manual")
    change(form, editor, "name", "label", "Temp", base=2)
    change(form, editor, "name", "label", "Full name", base=3)

    result = change(form, owner, "name", "label", "Name", base=2)

    assert result.outcome == "applied"
    assert not FieldConflict.objects.exists()


def test_a_conflict_resubmitted_is_the_original_and_opens_no_second(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "manual")
    change(form, editor, "name", "label", "A", base=2)

    first = change(form, owner, "name", "label", "B", base=2, client_msg_id="c")
    again = change(form, owner, "name", "label", "B", base=2, client_msg_id="c")

    assert (again.duplicate, again.outcome, again.revision) == (True, "conflict", first.revision)
    assert FieldConflict.objects.count() == 1


def test_a_change_from_before_the_field_was_re_added_is_a_conflict(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "merge")
    change(form, owner, "name", "label", "Old name")  # r3
    field_remove(user=owner, form_id=form.pk, base_revision=3, client_msg_id=msg(), key="name")
    add(form, owner, "name", label="New name")  # r5

    # A builder who last saw r3 edits what was then "Old name": not the field there is now.
    stale = error_of(lambda: change(form, editor, "name", "label", "Old name!", base=3))
    # One who saw r5 edits the new field, merged against its own base "New name".
    change(form, owner, "name", "label", "The new name", base=5)
    merged = change(form, editor, "name", "label", "New name!", base=5)

    assert stale.code is ErrorCode.CONFLICT
    assert merged.data["value"] == "The new name!"


@pytest.mark.parametrize(
    ("prop", "value"),
    [("label", ""), ("label", 3), ("required", "yes"), ("options", "red"), ("colour", "red"),
     ("type", "datetime"), ("rules", {"colour": 1}), ("label", " " * 200 + "L")],
)  # fmt: skip
def test_a_bad_change_is_invalid(form, owner, prop, value):
    add(form, owner, "name")

    assert error_code(lambda: change(form, owner, "name", prop, value)) is ErrorCode.INVALID
    assert now_at(form) == 1
    assert the_field(form, "name").type == "text"


def test_changing_a_missing_field_is_not_found(form, owner):
    assert error_code(lambda: change(form, owner, "nope", "label", "X")) is ErrorCode.NOT_FOUND


# --- conflict_resolve --------------------------------------------------------------------------


@pytest.fixture
def conflicted(owner):
    editor = UserFactory()
    form = policy_form(owner, editor, "manual")
    change(form, editor, "name", "label", "Current", base=2)
    change(form, owner, "name", "label", "Proposed", base=2)
    return form, FieldConflict.objects.get(), editor


@pytest.mark.parametrize(
    ("resolution", "value", "expected"),
    [("current", None, "Current"), ("proposed", None, "Proposed"), ("custom", "Both", "Both")],
)
def test_a_conflict_is_resolved_by_choice(conflicted, owner, resolution, value, expected):
    form, conflict, editor = conflicted

    result = resolve(form, editor, conflict.pk, resolution, value)

    assert (result.outcome, result.revision) == ("resolved", 5)
    assert (result.data["prop"], result.data["value"]) == ("label", expected)
    assert result.data["conflict"]["resolution"] == resolution
    assert the_field(form, "name").label == expected
    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolution, conflict.resolved_value) == (
        ConflictStatus.RESOLVED,
        resolution,
        expected,
    )
    assert conflict.resolved_by == editor and conflict.resolved_at is not None
    assert FormChange.objects.get(revision=5).type == "forms.conflict.resolved"


def test_resolving_twice_is_a_conflict(conflicted, owner):
    form, conflict, _ = conflicted
    resolve(form, owner, conflict.pk, "proposed")

    assert error_code(lambda: resolve(form, owner, conflict.pk, "current")) is ErrorCode.CONFLICT
    assert the_field(form, "name").label == "Proposed"


def test_bad_resolutions_are_refused(conflicted, owner, stranger):
    form, conflict, _ = conflicted
    viewer = share(form, owner, UserFactory(), Role.VIEWER)

    assert error_code(lambda: resolve(form, owner, conflict.pk, "mine")) is ErrorCode.INVALID
    assert error_code(lambda: resolve(form, owner, conflict.pk, "custom", "")) is ErrorCode.INVALID
    assert error_code(lambda: resolve(form, owner, str(conflict.pk), "current")) is (
        ErrorCode.INVALID
    )
    assert error_code(lambda: resolve(form, owner, 10**9, "current")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: resolve(form, viewer, conflict.pk, "current")) is ErrorCode.FORBIDDEN
    assert error_code(lambda: resolve(form, stranger, conflict.pk, "current")) is (
        ErrorCode.NOT_FOUND
    )
    conflict.refresh_from_db()
    assert conflict.status == ConflictStatus.OPEN


def test_another_forms_conflict_is_not_found(conflicted, owner):
    _, conflict, _ = conflicted
    other = form_create(owner=owner, title="Other")

    assert error_code(lambda: resolve(other, owner, conflict.pk, "current")) is (
        ErrorCode.NOT_FOUND
    )


# --- form_change -------------------------------------------------------------------------------


def test_editors_rename_the_form(form, editor):
    result = set_form(form, editor, "title", "  New title ")

    assert (result.outcome, result.revision, result.data["value"]) == ("applied", 1, "New title")
    form.refresh_from_db()
    assert form.title == "New title"
    assert FormChange.objects.get().type == "forms.form.changed"


@pytest.mark.parametrize(
    ("prop", "value"),
    [("status", "published"), ("conflict_policy", "manual"), ("anonymous", True)],
)
def test_only_the_owner_changes_status_policy_and_anonymity(form, owner, editor, prop, value):
    assert error_code(lambda: set_form(form, editor, prop, value)) is ErrorCode.FORBIDDEN

    result = set_form(form, owner, prop, value)

    assert (result.outcome, result.revision) == ("applied", 1)
    form.refresh_from_db()
    assert getattr(form, prop) == value


def test_viewers_and_strangers_cannot_change_the_form(form, viewer, stranger):
    assert error_code(lambda: set_form(form, viewer, "title", "X")) is ErrorCode.FORBIDDEN
    assert error_code(lambda: set_form(form, stranger, "title", "X")) is ErrorCode.NOT_FOUND


def test_a_form_change_to_the_same_value_is_unchanged(form, owner):
    result = set_form(form, owner, "status", "draft")

    assert (result.outcome, result.revision) == ("unchanged", None)
    assert now_at(form) == 0


@pytest.mark.parametrize("anonymous", [False, True])
def test_anonymity_is_fixed_once_the_form_has_answers(owner, respondent, anonymous):
    form = published(owner, anonymous=anonymous)
    start(form, respondent)
    before = now_at(form)

    error = error_of(lambda: set_form(form, owner, "anonymous", not anonymous))
    same = set_form(form, owner, "anonymous", anonymous)

    assert error.code is ErrorCode.CONFLICT
    assert (same.outcome, same.revision) == ("unchanged", None)
    assert Form.objects.get(pk=form.pk).anonymous is anonymous
    assert now_at(form) == before
    Submission.objects.filter(form=form).delete()
    assert set_form(form, owner, "anonymous", not anonymous).outcome == "applied"
    assert Form.objects.get(pk=form.pk).anonymous is (not anonymous)


@pytest.mark.parametrize(
    ("prop", "value"),
    [("title", ""), ("status", "open"), ("conflict_policy", "any"), ("anonymous", 1),
     ("revision", 9), ("owner", 1)],
)  # fmt: skip
def test_bad_form_changes_are_invalid(form, owner, prop, value):
    assert error_code(lambda: set_form(form, owner, prop, value)) is ErrorCode.INVALID
    assert now_at(form) == 0


# --- builder broadcasts ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_each_change_reaches_the_forms_group_after_commit_with_seq_the_revision():
    owner = UserFactory()
    form = form_create(owner=owner, title="Live")
    group = form_group(form.pk)

    def build(ear: Ear):
        with transaction.atomic():
            added = add(form, owner, "name")
            assert ear.silent(), "broadcast before commit"
        changed = change(form, owner, "name", "label", "Your name")
        renamed = set_form(form, owner, "title", "Live!")
        return [added, changed, renamed]

    results, heard = listen([group], build)

    assert group == f"forms.form.{form.pk}"
    frames = heard[group]
    assert [f["type"] for f in frames] == [
        "forms.field.added",
        "forms.field.changed",
        "forms.form.changed",
    ]
    assert [(f["stream"], f["seq"]) for f in frames] == [(group, 1), (group, 2), (group, 3)]
    assert [f["data"] for f in frames] == [r.data for r in results]
    assert frames[0]["_message"]["dedupe"] == [group, 1]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_is_never_broadcast_nor_stored():
    owner = UserFactory()
    form = form_create(owner=owner, title="Undo")

    def build(ear: Ear):
        with transaction.atomic():
            add(form, owner, "name")
            raise Boom

    outcome, heard = listen([form_group(form.pk)], build)

    assert isinstance(outcome, Boom)
    assert heard == {form_group(form.pk): []}
    assert now_at(form) == 0
    assert not FormChange.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_unchanged_and_duplicate_changes_are_not_broadcast_again():
    owner = UserFactory()
    form = form_create(owner=owner, title="Quiet")
    add(form, owner, "name", client_msg_id="k")

    def build(ear: Ear):
        add(form, owner, "name", client_msg_id="k")
        return change(form, owner, "name", "label", "Name")

    result, heard = listen([form_group(form.pk)], build)

    assert result.outcome == "unchanged"
    assert heard == {form_group(form.pk): []}


# --- selectors.changes_between -----------------------------------------------------------------


def test_changes_between_replays_a_range_in_order(form, owner):
    for key in ("a", "b", "c", "d"):
        add(form, owner, key)
    other = form_create(owner=owner, title="Other")
    add(other, owner, "x")

    assert [c.revision for c in changes_between(form_id=form.pk, after=0)] == [1, 2, 3, 4]
    assert [c.revision for c in changes_between(form_id=form.pk, after=1, upto=3)] == [2, 3]
    assert [c.field_key for c in changes_between(form_id=form.pk, after=2)] == ["c", "d"]
    assert changes_between(form_id=form.pk, after=4) == []
    assert [c.field_key for c in changes_between(form_id=other.pk, after=0)] == ["x"]


# --- submission_start --------------------------------------------------------------------------


def test_only_a_published_form_is_filled(owner, respondent):
    form = form_create(owner=owner, title="Draft")

    assert error_code(lambda: start(form, respondent)) is ErrorCode.NOT_FOUND
    assert error_code(lambda: start(form, owner)) is ErrorCode.NOT_FOUND
    set_form(form, owner, "status", "published")
    assert start(form, respondent).status == "in_progress"
    set_form(form, owner, "status", "closed")
    assert error_code(lambda: start(form, respondent)) is ErrorCode.NOT_FOUND
    assert error_code(lambda: start(Form(pk=10**9), respondent)) is ErrorCode.NOT_FOUND


def test_a_respondent_has_one_submission_per_form(owner, respondent):
    form = published(owner)

    first = start(form, respondent, user_agent=IPHONE)
    again = start(form, respondent, user_agent=WINDOWS_CHROME)
    by_token = start(form, respondent, token=first.token)

    assert first.pk == again.pk == by_token.pk
    # Revision 1 is its first state.
    assert (first.respondent, first.revision, first.values) == (respondent, 1, {})
    assert len(first.token) == 32
    assert Submission.objects.count() == 1
    assert again.device_type == "mobile"  # the first device is kept


@pytest.mark.django_db(transaction=True)
def test_a_respondent_starting_twice_at_once_gets_one_submission():
    owner = UserFactory()
    respondent = UserFactory()
    form = published(owner)

    results = concurrently(4, lambda n: start(form, respondent))

    assert Submission.objects.filter(form=form).count() == 1
    assert {r.pk for r in results} == {Submission.objects.get().pk}


def test_another_users_token_is_not_found(owner, respondent, stranger):
    form = published(owner)
    mine = start(form, respondent)

    assert error_code(lambda: start(form, stranger, token=mine.token)) is ErrorCode.NOT_FOUND
    assert error_code(lambda: start(form, respondent, token="nope")) is ErrorCode.NOT_FOUND
    assert error_code(lambda: start(form, respondent, token=5)) is ErrorCode.INVALID
    other = published(owner)
    assert error_code(lambda: start(other, respondent, token=mine.token)) is ErrorCode.NOT_FOUND
    assert error_code(lambda: fill(form, stranger, mine, {"name": "x"})) is ErrorCode.NOT_FOUND
    assert error_code(lambda: send(form, stranger, mine)) is ErrorCode.NOT_FOUND


@pytest.mark.parametrize("anonymous_form", [False, True])
def test_a_user_who_is_not_signed_in_fills_nothing(owner, respondent, anonymous_form):
    form = published(owner, anonymous=anonymous_form)
    mine = start(form, respondent)
    nobody = AnonymousUser()

    assert error_code(lambda: start(form, nobody)) is ErrorCode.NOT_FOUND
    assert error_code(lambda: start(form, nobody, token=mine.token)) is ErrorCode.NOT_FOUND
    assert error_code(lambda: fill(form, nobody, mine, {"name": "x"})) is ErrorCode.NOT_FOUND
    assert error_code(lambda: send(form, nobody, mine)) is ErrorCode.NOT_FOUND
    assert Submission.objects.get().values == {}


def test_an_anonymous_form_stores_no_respondent_and_finds_it_by_token(owner, respondent):
    form = published(owner, anonymous=True)

    first = start(form, respondent)
    again = start(form, respondent, token=first.token)

    assert first.respondent is None
    assert again.pk == first.pk
    assert Submission.objects.get(pk=first.pk).respondent_id is None
    result = fill(form, respondent, first, {"name": "Rita"})
    assert result.data["respondent"] is None
    assert (result.data["values"], result.data["token"]) == ({"name": "Rita"}, first.token)


@pytest.mark.parametrize(
    ("user_agent", "browser", "os", "device_type"),
    [
        (IPHONE, "Mobile Safari", "iOS", "mobile"),
        (WINDOWS_CHROME, "Chrome", "Windows", "desktop"),
        (IPAD, "Mobile Safari", "iOS", "tablet"),
        (ANDROID_FIREFOX, "Firefox Mobile", "Android", "mobile"),
    ],
)
def test_the_device_is_read_from_the_user_agent(owner, respondent, user_agent, browser, os,
                                                device_type):  # fmt: skip
    form = published(owner)

    submission = start(form, respondent, user_agent=user_agent)

    stored = Submission.objects.get(pk=submission.pk)
    assert (stored.browser, stored.os, stored.device_type) == (browser, os, device_type)


def test_no_user_agent_is_an_unknown_device(owner, respondent):
    submission = start(published(owner), respondent, user_agent="")

    assert (submission.browser, submission.os, submission.device_type) == (
        "Other",
        "Other",
        "other",
    )


# --- submission_update -------------------------------------------------------------------------


def test_an_update_stores_values_with_their_errors_and_progress(owner, respondent):
    form = published(owner)
    submission = start(form, respondent)

    first = fill(form, respondent, submission, {"name": "Rita", "email": "not-an-email"})
    second = fill(form, respondent, submission, {"email": "rita@example.com", "age": 12})

    assert (first.revision, first.data["progress"], first.data["errors"]) == (
        2,
        50,
        {"email": ["email"]},
    )
    assert first.data["last_field"] == "email"
    assert second.revision == 3
    assert second.data["values"] == {"name": "Rita", "email": "rita@example.com", "age": 12}
    assert (second.data["errors"], second.data["progress"]) == ({"age": ["min"]}, 100)
    assert second.data["last_field"] == "age"
    stored = Submission.objects.get(pk=submission.pk)
    assert (stored.errors, stored.progress, stored.revision, stored.status) == (
        {"age": ["min"]},
        100,
        3,
        "in_progress",
    )


def test_an_unknown_field_is_invalid_with_details_and_nothing_is_stored(owner, respondent):
    form = published(owner)
    submission = start(form, respondent)

    error = error_of(lambda: fill(form, respondent, submission, {"name": "R", "zz": 1, "aa": 2}))

    assert error.code is ErrorCode.INVALID
    assert error.details == {"unknown": ["aa", "zz"]}
    assert Submission.objects.get(pk=submission.pk).values == {}


@pytest.mark.parametrize("values", [{}, [], "name=R", None, {f"k{i}": 1 for i in range(201)}])
def test_values_must_be_a_small_mapping(owner, respondent, values):
    form = published(owner)
    submission = start(form, respondent)

    assert error_code(lambda: fill(form, respondent, submission, values)) is ErrorCode.INVALID


def test_a_cleared_error_goes(owner, respondent):
    form = published(owner)
    submission = start(form, respondent)
    fill(form, respondent, submission, {"age": 3})

    result = fill(form, respondent, submission, {"age": None})

    assert result.data["errors"] == {}


def test_an_update_is_four_queries_in_a_savepoint(owner, respondent, django_assert_num_queries):
    form = published(owner)
    submission = start(form, respondent)

    # The form, the submission (locked, with its respondent), the fields, the write.
    with django_assert_num_queries(6):
        fill(form, respondent, submission, {"name": "Rita"})


@pytest.mark.django_db(transaction=True)
def test_updates_from_several_tabs_at_once_each_take_the_next_revision():
    owner = UserFactory()
    respondent = UserFactory()
    form = published(owner)
    submission = start(form, respondent)

    def type_(n):
        return [fill(form, respondent, submission, {"name": f"{n}-{i}"}).revision for i in range(5)]

    written = [revision for revisions_ in concurrently(4, type_) for revision in revisions_]

    assert sorted(written) == list(range(2, 22))  # above the first state, revision 1
    assert Submission.objects.get(pk=submission.pk).revision == 21


# --- submission_submit -------------------------------------------------------------------------


def test_invalid_values_are_refused_with_each_fields_errors_which_are_kept(owner, respondent):
    form = published(owner)
    submission = start(form, respondent)
    fill(form, respondent, submission, {"email": "nope", "age": 12})

    error = error_of(lambda: send(form, respondent, submission))

    assert error.code is ErrorCode.INVALID
    assert error.details == {"errors": {"name": ["required"], "email": ["email"], "age": ["min"]}}
    stored = Submission.objects.get(pk=submission.pk)
    assert stored.status == "in_progress" and stored.submitted_at is None
    assert stored.errors == error.details["errors"]
    assert stored.revision == 3


def test_all_valid_values_are_submitted_once(owner, respondent):
    form = published(owner)
    submission = start(form, respondent)
    fill(form, respondent, submission, {"name": "Rita", "email": "rita@example.com"})

    result = send(form, respondent, submission)
    again = send(form, respondent, submission)

    assert (result.data["status"], result.revision, result.duplicate) == ("submitted", 3, False)
    assert result.data["submitted_at"] is not None
    assert (again.duplicate, again.revision, again.data["status"]) == (True, 3, "submitted")
    stored = Submission.objects.get(pk=submission.pk)
    assert (stored.status, stored.progress, stored.errors) == ("submitted", 100, {})
    later = lambda: fill(form, respondent, submission, {"age": 30})  # noqa: E731
    assert error_code(later) is ErrorCode.CONFLICT


@pytest.mark.parametrize("anonymous", [False, True])
def test_a_sent_submission_is_one_audit_line_naming_nobody_on_an_anonymous_form(
    owner, respondent, anonymous
):
    form = published(owner, anonymous=anonymous)
    submission = start(form, respondent)
    fill(form, respondent, submission, {"name": "Rita", "email": "nope"})
    error_of(lambda: send(form, respondent, submission))  # refused: no audit line
    fill(form, respondent, submission, {"email": "rita@example.com"})

    send(form, respondent, submission)
    send(form, respondent, submission)

    [event] = SystemEvent.objects.filter(kind="form_submitted")
    assert event.details == {
        "form_id": form.pk,
        "submission_id": submission.pk,
        "anonymous": anonymous,
    }
    assert event.actor == (None if anonymous else respondent)


def test_a_value_valid_when_typed_is_checked_again_against_the_rules_at_submit(owner, respondent):
    form = published(owner)
    submission = start(form, respondent)
    fill(form, respondent, submission, {"name": "Rita Longname", "email": "rita@example.com"})
    change(form, owner, "name", "rules", {"max_length": 5})
    add(form, owner, "gone")
    fill(form, respondent, submission, {"gone": "left"})
    field_remove(
        user=owner, form_id=form.pk, base_revision=now_at(form), client_msg_id=msg(), key="gone"
    )

    error = error_of(lambda: send(form, respondent, submission))

    assert error.details["errors"] == {"name": ["max_length"]}
    fill(form, respondent, submission, {"name": "Rita"})
    result = send(form, respondent, submission)
    assert result.data["values"] == {"name": "Rita", "email": "rita@example.com"}


@pytest.mark.django_db(transaction=True)
def test_an_invalid_value_never_reaches_a_submitted_submission():
    owner = UserFactory()
    respondent = UserFactory()
    form = published(owner)
    for _ in range(5):
        Submission.objects.all().delete()
        submission = start(form, respondent)
        fill(form, respondent, submission, {"name": "Rita", "email": "rita@example.com"})

        def race(n, submission=submission):
            if n:
                return send(form, respondent, submission)
            return fill(form, respondent, submission, {"email": "broken"})

        concurrently(2, race)

        stored = Submission.objects.get(pk=submission.pk)
        if stored.status == "submitted":
            assert stored.values["email"] == "rita@example.com"
            assert stored.errors == {}
        else:
            assert stored.errors == {"email": ["email"]}


# --- submission_set_status ---------------------------------------------------------------------


@pytest.fixture
def sent(owner, respondent):
    form = published(owner)
    submission = start(form, respondent)
    fill(form, respondent, submission, {"name": "Rita", "email": "rita@example.com"})
    send(form, respondent, submission)
    return form, submission


def test_owners_and_editors_move_a_submission_on(sent, owner):
    form, submission = sent
    editor = share(form, owner, UserFactory())

    processing = move_on(form, editor, submission, "processing")
    completed = move_on(form, owner, submission, "completed")

    assert (processing.data["status"], processing.revision) == ("processing", 4)
    assert (completed.data["status"], completed.revision) == ("completed", 5)
    assert "token" not in processing.data and "token" not in completed.data  # builders' view
    stored = Submission.objects.get(pk=submission.pk)
    assert stored.status == "completed" and stored.completed_at is not None
    assert move_on(form, owner, submission, "completed").duplicate


def test_a_submitted_submission_may_be_completed_directly(sent, owner):
    form, submission = sent

    assert move_on(form, owner, submission, "completed").data["status"] == "completed"


def test_illegal_moves_are_conflicts(sent, owner, respondent):
    form, submission = sent
    move_on(form, owner, submission, "completed")
    other = start(form, UserFactory())

    assert error_code(lambda: move_on(form, owner, submission, "processing")) is (
        ErrorCode.CONFLICT
    )
    assert error_code(lambda: move_on(form, owner, other, "processing")) is ErrorCode.CONFLICT
    assert error_code(lambda: move_on(form, owner, other, "completed")) is ErrorCode.CONFLICT
    for status in ("in_progress", "submitted", "done", None):
        assert error_code(lambda s=status: move_on(form, owner, submission, s)) is (
            ErrorCode.INVALID
        )


def test_respondents_and_viewers_do_not_move_submissions(sent, owner, respondent):
    form, submission = sent
    viewer = share(form, owner, UserFactory(), Role.VIEWER)

    assert error_code(lambda: move_on(form, respondent, submission, "processing")) is (
        ErrorCode.NOT_FOUND
    )
    assert error_code(lambda: move_on(form, viewer, submission, "processing")) is (
        ErrorCode.FORBIDDEN
    )
    other = published(owner)
    assert error_code(lambda: move_on(other, owner, submission, "processing")) is (
        ErrorCode.NOT_FOUND
    )
    assert Submission.objects.get(pk=submission.pk).status == "submitted"


# --- submission broadcasts ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_submission_changes_reach_the_dashboard_and_the_respondent_after_commit():
    owner = UserFactory()
    respondent = UserFactory()
    form = published(owner)
    submission = start(form, respondent)
    groups = [dashboard_group(form.pk), respondent_group(submission.token)]

    def work(ear: Ear):
        with transaction.atomic():
            fill(form, respondent, submission, {"name": "Rita"})
            assert ear.silent(), "broadcast before commit"
        error = error_of(lambda: send(form, respondent, submission))
        fill(form, respondent, submission, {"email": "rita@example.com"})
        send(form, respondent, submission)
        move_on(form, owner, submission, "completed")
        return error

    error, heard = listen(groups, work)

    assert groups == [f"forms.dashboard.{form.pk}", f"forms.fill.{submission.token}"]
    stream = submission_stream(submission.pk)
    assert stream == f"forms.submission.{submission.pk}"
    for group in groups:
        frames = heard[group]
        assert {f["type"] for f in frames} == {"forms.submission.changed"}
        assert [(f["stream"], f["seq"]) for f in frames] == [(stream, n) for n in (2, 3, 4, 5, 6)]
        assert [f["data"]["submission"]["revision"] for f in frames] == [2, 3, 4, 5, 6]
        assert frames[1]["data"]["submission"]["errors"] == error.details["errors"]
        assert [f["data"]["submission"]["status"] for f in frames][-2:] == [
            "submitted",
            "completed",
        ]
        assert frames[0]["_message"]["dedupe"] == [stream, 2]
    # The token (an anonymous respondent's only key) goes to the respondent alone.
    assert all("token" not in f["data"]["submission"] for f in heard[groups[0]])
    assert {f["data"]["submission"]["token"] for f in heard[groups[1]]} == {submission.token}


@pytest.mark.django_db(transaction=True)
def test_a_new_submission_is_announced_to_the_dashboard():
    owner = UserFactory()
    respondent = UserFactory()
    form = published(owner)

    submission, heard = listen([dashboard_group(form.pk)], lambda ear: start(form, respondent))

    (frame,) = heard[dashboard_group(form.pk)]
    assert (frame["stream"], frame["seq"]) == (submission_stream(submission.pk), 1)
    assert frame["data"]["submission"]["id"] == submission.pk
    assert frame["data"]["submission"]["revision"] == 1
    assert "token" not in frame["data"]["submission"]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_update_is_never_broadcast():
    owner = UserFactory()
    respondent = UserFactory()
    form = published(owner)
    submission = start(form, respondent)

    def work(ear: Ear):
        with transaction.atomic():
            fill(form, respondent, submission, {"name": "Rita"})
            raise Boom

    outcome, heard = listen([dashboard_group(form.pk), respondent_group(submission.token)], work)

    assert isinstance(outcome, Boom)
    assert all(frames == [] for frames in heard.values())
    assert Submission.objects.get(pk=submission.pk).revision == 1


# --- form_stats --------------------------------------------------------------------------------


def _timed(submission, *, started, submitted=None, active=None):
    Submission.objects.filter(pk=submission.pk).update(
        started_at=started, submitted_at=submitted, updated_at=active or submitted or started
    )


def test_form_stats_counts_the_funnel_of_the_submissions_made(owner):
    form = published(owner)
    for _ in range(7):
        form_viewed(form_id=form.pk)
    t0 = timezone.now() - timedelta(hours=3)
    durations = [30, 90, 600]
    for seconds in durations:
        user = UserFactory()
        submission = start(form, user)
        fill(form, user, submission, {"name": "R", "email": "r@example.com"})
        send(form, user, submission)
        _timed(submission, started=t0, submitted=t0 + timedelta(seconds=seconds))
    moved = Submission.objects.filter(status="submitted").first()
    move_on(form, owner, moved, "completed")
    idle, busy = UserFactory(), UserFactory()
    abandoned = start(form, idle)
    fill(form, idle, abandoned, {"email": "half"})
    _timed(abandoned, started=t0)
    typing = start(form, busy)
    fill(form, busy, typing, {"name": "Still typing"})
    _timed(typing, started=t0, active=timezone.now() - timedelta(minutes=1))

    summary = form_stats(form_id=form.pk, now=timezone.now().timestamp()).summary()

    assert summary == {
        "views": 7,
        "starts": 5,
        "completions": 3,
        "abandoned": 1,
        "completion_rate": 0.6,
        "median_seconds": 90,
        "drop_off": {"email": 1},
    }


def test_form_stats_of_a_form_nobody_filled(owner):
    form = published(owner)

    summary = form_stats(form_id=form.pk, now=timezone.now().timestamp()).summary()

    assert (summary["views"], summary["starts"], summary["median_seconds"]) == (0, 0, None)
    assert form_stats(form_id=10**9, now=0.0).summary()["views"] == 0


def test_a_field_changes_between_choice_and_text_types_in_one_change(owner):
    from forms_live.services import field_add, field_change, form_create

    form = form_create(owner=owner, title="Retype")
    field_add(
        user=owner,
        form_id=form.pk,
        base_revision=0,
        client_msg_id="a",
        key="plan",
        type="text",
        label="Plan",
        rules={"max_length": 20},
    )
    to_choice = field_change(
        user=owner,
        form_id=form.pk,
        base_revision=1,
        client_msg_id="b",
        key="plan",
        prop="type",
        value="single_choice",
    )
    to_number = field_change(
        user=owner,
        form_id=form.pk,
        base_revision=2,
        client_msg_id="c",
        key="plan",
        prop="type",
        value="number",
    )

    assert to_choice.data["field"]["options"] == ["Option 1"]
    assert to_choice.data["field"]["rules"] == {}
    assert (to_number.data["field"]["type"], to_number.data["field"]["options"]) == ("number", [])
