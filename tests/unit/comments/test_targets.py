"""Target kinds and the permission rules of comments (comments/targets.py)."""

from __future__ import annotations

import pytest

from comments.targets import (
    EDITOR,
    OWNER,
    VIEWER,
    Anchor,
    TargetKind,
    TargetKinds,
    can_delete,
    can_read,
    can_resolve,
)

ROLES = [OWNER, EDITOR, VIEWER, None]


def roles_of_42(target_id, user_ids):
    members = {7: OWNER, 8: EDITOR, 9: VIEWER} if target_id == 42 else {}
    return {user: members[user] for user in user_ids if user in members}


@pytest.mark.parametrize("role", ROLES)
def test_whoever_has_a_role_reads(role):
    assert can_read(role) is (role is not None)


@pytest.mark.parametrize(
    ("role", "is_author", "allowed"),
    [
        (OWNER, False, True),
        (EDITOR, False, True),
        (VIEWER, False, False),
        (VIEWER, True, True),  # a viewer resolves the thread they started
        (None, True, False),  # but not once they lost the target
        (None, False, False),
    ],
)
def test_editors_owners_and_the_threads_author_resolve(role, is_author, allowed):
    assert can_resolve(role, is_thread_author=is_author) is allowed


@pytest.mark.parametrize(
    ("role", "is_author", "allowed"),
    [
        (OWNER, False, True),  # the target's owner deletes anyone's comment
        (OWNER, True, True),
        (EDITOR, False, False),
        (EDITOR, True, True),
        (VIEWER, False, False),
        (VIEWER, True, True),
        (None, True, False),  # an author who lost the target no longer sees the comment
        (None, False, False),
    ],
)
def test_the_author_or_the_targets_owner_deletes(role, is_author, allowed):
    assert can_delete(role, is_comment_author=is_author) is allowed


def test_a_kinds_role_is_read_through_its_roles_reader():
    kind = TargetKind("document", roles=roles_of_42)

    assert [kind.role(42, user) for user in (7, 8, 9, 10)] == [OWNER, EDITOR, VIEWER, None]
    assert kind.role(43, 7) is None
    assert kind.move_anchors is None


def test_only_registered_kinds_are_found_and_registering_again_replaces():
    kinds = TargetKinds()
    first = TargetKind("document", roles=roles_of_42)
    second = TargetKind("document", roles=lambda target_id, user_ids: {}, move_anchors=None)

    assert kinds.get("document") is None
    kinds.register(first)
    assert kinds.get("document") is first
    assert kinds.get("form") is None
    kinds.register(second)
    assert kinds.get("document") is second


def test_an_anchor_is_a_value():
    assert Anchor(1, 4, 7) == Anchor(start=1, end=4, version=7)
    with pytest.raises(AttributeError):
        Anchor(1, 4, 7).start = 2  # type: ignore[misc]
