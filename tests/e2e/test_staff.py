"""The staff page and the notifications page, live across two workers.

A staff member on worker A sees a failed login made on worker B's sign-in page arrive in the
event table and the alerts, beside the connection counts and readiness; a user on worker A sees
a mention made over REST on worker B arrive in their notifications, and marks it read.
"""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from comments.models import Notification
from tests.e2e.conftest import screenshot, sign_in
from tests.system.client import http_request

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
WAIT_MS = 10_000


def test_staff_see_a_failed_login_on_the_other_worker_live(
    page_workers, browser, contexts, make_account
):
    worker_a, worker_b = page_workers
    staff = make_account(is_staff=True)
    page = sign_in(contexts, browser, worker_a, staff)
    page.goto(worker_a.http_url("/staff/"))
    expect(page.locator("#connection-state")).to_have_text("open", timeout=WAIT_MS)
    expect(page.locator("main[data-ready=true]")).to_have_count(1, timeout=WAIT_MS)

    tried = f"nobody-{secrets.token_hex(4)}"
    intruder = browser.new_context()
    contexts.append(intruder)
    login = intruder.new_page()
    login.goto(worker_b.http_url("/accounts/login/"))
    login.get_by_label("Username").fill(tried)
    login.get_by_label("Password").fill("wrong password")
    login.get_by_role("button", name="Sign in").click()
    expect(login.get_by_role("alert")).to_contain_text("did not match", timeout=WAIT_MS)

    row = page.locator("#events tbody tr", has_text=tried)
    expect(row).to_contain_text("login_failed", timeout=WAIT_MS)
    expect(row).to_have_class(re.compile(r"\bseverity-warning\b"))
    expect(page.locator("#alerts li", has_text=tried)).to_contain_text("warning: login_failed")
    # The page's own sockets on worker A count: at most two report rounds away.
    expect(page.locator("#connections-total")).to_have_text(
        re.compile(r"^[1-9]\d*$"), timeout=WAIT_MS
    )
    expect(page.locator("#connections-chart rect[data-app=monitoring]")).to_have_count(1)
    expect(page.locator("#connections-workers tbody tr", has_text="monitoring")).to_have_count(1)
    expect(page.locator("#readiness-status")).to_have_text("ready", timeout=WAIT_MS)
    expect(page.locator("#readiness-checks tr[data-check=database]")).to_contain_text("ok")
    screenshot(page, "staff")


def test_a_mention_made_on_the_other_worker_arrives_live_and_is_marked_read(
    page_workers, browser, contexts, shared_document
):
    worker_a, worker_b = page_workers
    document, ada, bob = shared_document  # ada: the owner
    page = sign_in(contexts, browser, worker_a, ada)
    page.goto(worker_a.http_url("/notifications/"))
    expect(page.locator("main[data-live=true]")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#connection-state")).to_have_text("open")
    expect(page.locator("#unread-count")).to_have_text("0")

    status, body, _ = http_request(
        worker_b.http_url("/api/comments/threads/"),
        method="POST",
        token=bob.token,
        json_body={
            "target_kind": "document",
            "target_id": document.pk,
            "body": f"@{ada.username} can you check the totals?",
            "client_msg_id": "e2e-mention",
        },
    )
    assert status == 201, body

    item = page.locator("#notification-list li", has_text="check the totals")
    expect(item).to_contain_text(
        f"{bob.username} mentioned you on document #{document.pk}", timeout=WAIT_MS
    )
    expect(item).to_have_attribute("data-unread", "true")
    expect(item.get_by_role("link")).to_have_attribute("href", f"/documents/{document.pk}/")
    expect(page.locator("#unread-count")).to_have_text("1")
    screenshot(page, "notifications-unread")

    item.get_by_role("button", name="Mark read").click()
    expect(item).to_have_attribute("data-unread", "false", timeout=WAIT_MS)
    expect(page.locator("#unread-count")).to_have_text("0")
    expect(page.get_by_role("button", name="Mark all read")).to_be_disabled()
    screenshot(page, "notifications-read")
    assert not Notification.objects.filter(recipient_id=ada.user_id, read_at__isnull=True).exists()
