"""The notifications page (comments/pages.py, /notifications/): the signed-in user's own
notifications, the first page rendered with the page, and nobody else's.

Its live parts run in the browser (tests/e2e/test_staff.py); here, the answer, the elements the
script drives and the first page it starts from.
"""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from collab.models import DocumentMember, Role
from comments.models import Notification
from comments.pages import PAGE_SIZE
from comments.selectors import UNREAD_COUNT_CAP
from comments.services import comment_create, notifications_mark_read, thread_create
from tests.factories import DocumentFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/notifications/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def initial_of(response) -> dict:
    html = response.content.decode()
    found = re.search(
        r'<script id="notifications-initial" type="application/json">(.*?)</script>', html
    )
    assert found, "the page's first page is missing"
    return json.loads(found.group(1))


def unread_shown(response) -> str:
    found = re.search(r'<strong id="unread-count">([^<]*)</strong>', response.content.decode())
    assert found, "the unread count is missing"
    return found.group(1)


@pytest.fixture
def inbox():
    """Ada owns a document Bob edits; in Ada's thread Bob mentions her, then replies."""
    ada, bob, eve = UserFactory(username="ada"), UserFactory(username="bob"), UserFactory()
    document = DocumentFactory(owner=ada, title="Plan")
    DocumentMember.objects.create(document=document, user=bob, role=Role.EDITOR)
    started = thread_create(
        user=ada,
        target_kind="document",
        target_id=document.pk,
        body="Dates?",
        client_msg_id="t-1",
    )
    comment_create(
        user=bob,
        thread_id=started.thread["id"],
        body="@ada the <b>dates</b> look right",
        client_msg_id="c-1",
    )
    comment_create(
        user=bob, thread_id=started.thread["id"], body="And the rest", client_msg_id="c-2"
    )
    return ada, bob, eve, document


def test_anonymous_visitors_are_sent_to_sign_in():
    assert reverse("notifications-page") == URL

    response = Client().get(URL)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/notifications/"


def test_the_page_renders_the_users_notifications_and_unread_count(inbox):
    ada, _, _, document = inbox

    response = signed_in(ada).get(URL)

    assert response.status_code == 200
    initial = initial_of(response)
    reply, mention = initial["notifications"]  # newest first
    assert (reply["kind"], reply["excerpt"]) == ("reply", "And the rest")
    assert (mention["kind"], mention["excerpt"]) == ("mention", "@ada the <b>dates</b> look right")
    for notification in (reply, mention):
        assert notification["actor"]["username"] == "bob"
        assert notification["target"] == {"kind": "document", "id": document.pk, "key": ""}
        assert notification["read_at"] is None
    assert initial["unread"] == 2 and initial["more"] is False
    assert unread_shown(response) == "2"
    html = response.content.decode()
    assert "<b>dates</b>" not in html  # json_script escapes what users wrote


def test_the_page_has_what_its_script_drives(inbox):
    ada = inbox[0]

    html = signed_in(ada).get(URL).content.decode()

    assert 'id="unread" role="status" aria-live="polite"' in html
    assert 'id="notification-list" aria-label="Your notifications" aria-live="polite"' in html
    assert '<button type="button" id="mark-all-read">Mark all read</button>' in html
    assert 'id="load-more" hidden' in html
    assert 'id="connection-state"' in html
    assert 'import { mountNotificationsPage } from "/static/comments/notifications.js"' in html


def test_nobody_sees_anothers_notifications(inbox):
    _, bob, eve, _ = inbox

    for user in (bob, eve):  # bob wrote the comments; eve is a stranger to the document
        response = signed_in(user).get(URL)

        assert response.status_code == 200
        assert initial_of(response)["notifications"] == []
        assert unread_shown(response) == "0"
        assert "look right" not in response.content.decode()


def test_read_notifications_are_shown_read(inbox):
    ada = inbox[0]
    mention = Notification.objects.get(recipient=ada, kind="mention")
    notifications_mark_read(user=ada, ids=[mention.pk])

    response = signed_in(ada).get(URL)

    read = {n["kind"]: n["read_at"] is not None for n in initial_of(response)["notifications"]}
    assert read == {"mention": True, "reply": False}
    assert unread_shown(response) == "1"


def test_the_first_page_is_the_newest_and_says_there_is_more(inbox):
    ada, bob, _, _ = inbox
    thread_id = Notification.objects.filter(recipient=ada).first().thread_id
    for n in range(PAGE_SIZE):
        comment_create(user=bob, thread_id=thread_id, body=f"@ada #{n}", client_msg_id=f"m-{n}")

    response = signed_in(ada).get(URL)

    initial = initial_of(response)
    assert initial["more"] is True
    assert len(initial["notifications"]) == PAGE_SIZE
    ids = [n["id"] for n in initial["notifications"]]
    assert ids == sorted(ids, reverse=True)
    assert initial["notifications"][0]["excerpt"] == f"@ada #{PAGE_SIZE - 1}"


def test_a_full_inbox_reads_99_plus(inbox, django_assert_max_num_queries):
    ada, bob, _, _ = inbox
    thread_id = Notification.objects.filter(recipient=ada).first().thread_id
    comment = Notification.objects.filter(recipient=ada).first().comment
    Notification.objects.bulk_create(
        Notification(recipient=ada, kind="mention", actor=bob, thread_id=thread_id, comment=comment)
        for _ in range(UNREAD_COUNT_CAP)
    )

    client = signed_in(ada)

    # Session, user, one page, the capped count, the roles on its targets: whatever the inbox.
    with django_assert_max_num_queries(5):
        response = client.get(URL)

    assert unread_shown(response) == "99+"


def test_the_page_only_answers_get(inbox):
    response = signed_in(inbox[0]).post(URL)

    assert response.status_code == 405
