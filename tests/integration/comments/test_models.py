"""What the database itself guarantees for comments (comments/models.py), on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from comments.models import Comment, Reaction, Thread, ThreadEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def thread():
    return Thread.objects.create(target_kind="document", target_id=42, created_by=UserFactory())


def refused(create) -> bool:
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


def test_one_client_message_id_makes_one_comment_per_author(thread):
    author, other = UserFactory(), UserFactory()
    Comment.objects.create(thread=thread, author=author, body="hi", client_msg_id="m1")

    assert refused(
        lambda: Comment.objects.create(thread=thread, author=author, body="hi", client_msg_id="m1")
    )
    assert not refused(
        lambda: Comment.objects.create(thread=thread, author=other, body="hi", client_msg_id="m1")
    )


def test_a_user_reacts_once_per_kind_on_a_comment(thread):
    user = UserFactory()
    comment = Comment.objects.create(thread=thread, author=user, body="hi", client_msg_id="m")
    Reaction.objects.create(comment=comment, user=user, kind="like")

    assert refused(lambda: Reaction.objects.create(comment=comment, user=user, kind="like"))
    assert not refused(lambda: Reaction.objects.create(comment=comment, user=user, kind="love"))


def test_a_thread_event_seq_is_used_once(thread):
    ThreadEvent.objects.create(thread=thread, seq=1, type="comments.comment.created", data={})

    assert refused(lambda: ThreadEvent.objects.create(thread=thread, seq=1, type="x.y.z", data={}))


def test_an_anchor_must_not_end_before_it_starts():
    user = UserFactory()

    assert refused(
        lambda: Thread.objects.create(
            target_kind="document", target_id=1, anchor_start=5, anchor_end=2, created_by=user
        )
    )
    assert not refused(
        lambda: Thread.objects.create(
            target_kind="document", target_id=1, anchor_start=2, anchor_end=5, created_by=user
        )
    )
