"""operation_submit and friends (collab/services.py) on PostgreSQL: DESIGN section 6."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from collab import ot
from collab.models import Document, DocumentMember, DocumentVersion, Operation, Role
from collab.services import (
    document_create,
    document_delete,
    member_remove,
    member_set,
    operation_submit,
    version_create,
    version_restore,
)
from config.errors import AppError, ErrorCode
from monitoring.models import SystemEvent
from tests.factories import UserFactory


def submit(document, user, op, *, base=None, client_id="c1", seq=1):
    version = document.version if base is None else base
    return operation_submit(
        document_id=document.pk,
        base_version=version,
        op=op,
        client_id=client_id,
        seq=seq,
        user=user,
    )


def replay(document_id: int) -> str:
    text = ""
    for op in Operation.objects.filter(document_id=document_id).order_by("version"):
        text = ot.apply(text, op.op)
    return text


def error_code(call) -> ErrorCode:
    with pytest.raises(AppError) as caught:
        call()
    return caught.value.code


@pytest.fixture
def owner(db):
    return UserFactory()


@pytest.fixture
def document(owner):
    return document_create(owner=owner, title="Notes", content="hello")


def test_creating_a_document_makes_its_content_the_first_op(owner, document):
    document.refresh_from_db()

    assert (document.content, document.version) == ("hello", 1)
    assert DocumentMember.objects.get(document=document).role == Role.OWNER
    assert replay(document.pk) == "hello"


def test_an_op_is_applied_stored_and_versioned(owner, document):
    result = submit(document, owner, [5, " world"])

    document.refresh_from_db()
    assert (result.version, result.duplicate) == (2, False)
    assert (document.content, document.version) == ("hello world", 2)
    stored = Operation.objects.get(document=document, version=2)
    assert (stored.op, stored.client_id, stored.seq, stored.author) == (
        [5, " world"],
        "c1",
        1,
        owner,
    )


def test_an_op_made_at_an_older_version_is_transformed_through_the_newer_ones(owner, document):
    submit(document, owner, ["A"], base=1, client_id="a")
    result = submit(document, owner, [5, "Z"], base=1, client_id="b")

    document.refresh_from_db()
    assert result.version == 3
    assert document.content == "AhelloZ"
    assert replay(document.pk) == document.content


def test_a_resubmission_answers_the_original_version_and_applies_nothing(owner, document):
    first = submit(document, owner, ["x"], client_id="tab", seq=7)
    submit(document, owner, ["y"], client_id="other", seq=1)

    again = submit(document, owner, ["x"], base=1, client_id="tab", seq=7)

    document.refresh_from_db()
    assert (again.version, again.duplicate) == (first.version, True)
    assert document.content == "yxhello"
    assert Operation.objects.filter(document=document).count() == 3


def test_a_base_version_newer_than_the_document_is_a_conflict(owner, document):
    assert error_code(lambda: submit(document, owner, ["x"], base=9)) is ErrorCode.CONFLICT


@pytest.mark.parametrize(
    ("op", "base", "client_id", "seq"),
    [
        ([0], 1, "c", 1),
        (["x", True], 1, "c", 1),
        ("x", 1, "c", 1),
        ([99], 1, "c", 1),  # retains past the end of "hello"
        (["x"], -1, "c", 1),
        (["x"], "1", "c", 1),
        (["x"], 1, "", 1),
        (["x"], 1, "c" * 65, 1),
        (["x"], 1, "c", 0),
        (["x"], 1, "c", 2**53),
        (["x"], 1, 7, 1),
    ],
)
def test_bad_submissions_are_invalid_and_change_nothing(owner, document, op, base, client_id, seq):
    code = error_code(lambda: submit(document, owner, op, base=base, client_id=client_id, seq=seq))

    document.refresh_from_db()
    assert code is ErrorCode.INVALID
    assert (document.content, document.version) == ("hello", 1)


def test_viewers_may_not_submit_and_strangers_do_not_find_the_document(owner, document):
    viewer, stranger = UserFactory(), UserFactory()
    member_set(user=owner, document_id=document.pk, member_id=viewer.pk, role=Role.VIEWER)

    assert error_code(lambda: submit(document, viewer, ["x"])) is ErrorCode.FORBIDDEN
    assert error_code(lambda: submit(document, stranger, ["x"])) is ErrorCode.NOT_FOUND
    assert Operation.objects.filter(document=document).count() == 1


def test_a_document_that_would_grow_past_the_cap_is_refused(owner, document, settings):
    settings.COLLAB_MAX_DOCUMENT_CHARS = 8

    assert error_code(lambda: submit(document, owner, [5, "abcd"])) is ErrorCode.TOO_LARGE
    assert submit(document, owner, [5, "abc"]).version == 2


def test_a_snapshot_is_saved_every_n_ops(owner, document, settings):
    settings.COLLAB_SNAPSHOT_EVERY = 3
    for seq in range(1, 6):
        submit(document, owner, ["."], base=seq, seq=seq)

    snapshots = DocumentVersion.objects.filter(document=document, name="")
    # Versions 2-6 (the document starts at 1): snapshots at 3 and 6.
    assert [(s.version, s.content) for s in snapshots.order_by("version")] == [
        (3, "..hello"),
        (6, ".....hello"),
    ]


def test_restoring_a_version_is_a_new_op_that_brings_its_text_back(owner, document):
    submit(document, owner, [5, " world"])
    named = version_create(user=owner, document_id=document.pk, name="greeting")
    submit(document, owner, [-5, "HELLO"], seq=2)

    result = version_restore(user=owner, document_id=document.pk, version=named.version)

    document.refresh_from_db()
    assert (result.version, document.content) == (4, "hello world")
    assert replay(document.pk) == "hello world"


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_from_many_threads_are_serialised_and_converge():
    owner = UserFactory()
    document = document_create(owner=owner, title="Race", content="start")
    barrier = threading.Barrier(8)

    def editor(n: int) -> list[int]:
        barrier.wait()
        try:
            return [
                operation_submit(
                    document_id=document.pk,
                    base_version=1,  # all made at the same version: every one is transformed
                    op=[n % 5 + 1, f"<{n}.{k}>"],
                    client_id=f"t{n}",
                    seq=k,
                    user=owner,
                ).version
                for k in range(1, 6)
            ]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = [v for vs in pool.map(editor, range(8)) for v in vs]

    document.refresh_from_db()
    assert sorted(versions) == list(range(2, 42))
    assert document.version == 41
    assert replay(document.pk) == document.content
    for n in range(8):
        for k in range(1, 6):
            assert document.content.count(f"<{n}.{k}>") == 1


def test_adding_a_user_that_does_not_exist_is_invalid(owner, document):
    code = error_code(
        lambda: member_set(user=owner, document_id=document.pk, member_id=10**9, role=Role.EDITOR)
    )

    assert code is ErrorCode.INVALID


def test_when_the_named_owner_steps_down_another_owner_is_named(owner, document):
    heir = UserFactory()
    member_set(user=owner, document_id=document.pk, member_id=heir.pk, role=Role.OWNER)

    member_set(user=owner, document_id=document.pk, member_id=owner.pk, role=Role.VIEWER)

    document.refresh_from_db()
    assert document.owner == heir
    with pytest.raises(AppError):  # and the last owner cannot step down
        member_set(user=heir, document_id=document.pk, member_id=heir.pk, role=Role.EDITOR)


def test_deleting_the_owner_account_keeps_the_document(owner, document):
    owner.delete()

    assert Document.objects.filter(pk=document.pk).exists()


@pytest.mark.django_db(transaction=True)  # a real transaction, not a test savepoint
def test_a_submit_at_the_current_version_costs_four_queries(django_assert_num_queries):
    owner = UserFactory()
    document = document_create(owner=owner, title="Hot", content="hello")
    # BEGIN; lock with role, duplicate check, document update, op insert; COMMIT.
    with django_assert_num_queries(6):
        submit(document, owner, [5, "!"])


def test_member_changes_and_deletions_are_audit_lines_and_repeats_are_not(db):
    owner, editor = UserFactory(), UserFactory()
    document = document_create(owner=owner, title="Plan")
    member_set(user=owner, document_id=document.pk, member_id=editor.pk, role=Role.EDITOR)
    member_set(user=owner, document_id=document.pk, member_id=editor.pk, role=Role.EDITOR)
    member_remove(user=owner, document_id=document.pk, member_id=editor.pk)
    document_delete(user=owner, document_id=document.pk)

    events = SystemEvent.objects.filter(kind="user_activity").order_by("id")
    lines = [(e.actor, e.details) for e in events]
    assert lines == [
        (owner, {"action": "document_member_set", "document_id": document.pk,
                 "user_id": editor.pk, "role": "editor"}),
        (owner, {"action": "document_member_removed", "document_id": document.pk,
                 "user_id": editor.pk}),
        (owner, {"action": "document_deleted", "document_id": document.pk, "title": "Plan"}),
    ]  # fmt: skip
