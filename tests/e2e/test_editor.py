"""Two users in two browser contexts, on two workers, edit one document in the editor page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from collab.models import Document
from tests.e2e.conftest import screenshot, sign_in

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
WAIT_MS = 10_000


def open_for_both(page_workers, browser, contexts, shared_document) -> list[Page]:
    """Alice on worker A and Bob on worker B, signed in, on the document, their sockets open."""
    document, alice, bob = shared_document
    pages = []
    for worker, account in zip(page_workers, (alice, bob), strict=True):
        page = sign_in(contexts, browser, worker, account)
        page.goto(worker.http_url(f"/documents/{document.pk}/"))
        expect(page.locator("#connection-state")).to_have_text("open", timeout=WAIT_MS)
        pages.append(page)
    return pages


def test_typing_in_one_editor_appears_in_the_other(
    page_workers, browser, contexts, shared_document
):
    document, alice, _ = shared_document
    alice_page, bob_page = open_for_both(page_workers, browser, contexts, shared_document)
    for page in (alice_page, bob_page):
        expect(page.get_by_label("Text")).to_have_value("Day 1: ", timeout=WAIT_MS)

    alice_editor = alice_page.get_by_label("Text")
    alice_editor.click()
    alice_editor.press("End")
    alice_editor.press_sequentially("museum 👋", delay=40)
    expect(bob_page.get_by_label("Text")).to_have_value("Day 1: museum 👋", timeout=WAIT_MS)
    bob_editor = bob_page.get_by_label("Text")
    bob_editor.click()
    bob_editor.press("End")
    bob_editor.press_sequentially(", lunch", delay=40)
    expect(alice_editor).to_have_value("Day 1: museum 👋, lunch", timeout=WAIT_MS)
    expect(bob_page.locator("#members")).to_contain_text(alice.username, timeout=WAIT_MS)
    screenshot(alice_page, "editor-alice")
    screenshot(bob_page, "editor-bob")

    document.refresh_from_db()
    assert document.content == "Day 1: museum 👋, lunch"
    assert Document.objects.get(pk=document.pk).content == alice_editor.input_value()


def test_a_comment_a_reply_and_a_reaction_appear_live(
    page_workers, browser, contexts, shared_document
):
    _, alice, bob = shared_document
    alice_page, bob_page = open_for_both(page_workers, browser, contexts, shared_document)
    # Bob's notifications socket watches the document: new threads reach him live.
    expect(bob_page.locator("#comments[data-watching=true]")).to_have_count(1, timeout=WAIT_MS)

    alice_page.get_by_label("New comment").fill("Check the dates")
    alice_page.get_by_role("button", name="Comment").click()
    thread = bob_page.get_by_role("button", name=f"Thread by {alice.username}")
    expect(thread).to_be_visible(timeout=WAIT_MS)
    thread.click()
    expect(bob_page.get_by_label("Comments in this thread")).to_contain_text(
        "Check the dates", timeout=WAIT_MS
    )
    bob_page.get_by_role("button", name="like (0)").click()
    expect(alice_page.get_by_role("button", name="like (1)")).to_be_visible(timeout=WAIT_MS)
    bob_page.get_by_label("Reply").press_sequentially("Looks good", delay=30)
    expect(alice_page.locator(".typing")).to_contain_text(bob.username, timeout=WAIT_MS)
    bob_page.get_by_role("button", name="Reply").click()
    expect(alice_page.get_by_label("Comments in this thread")).to_contain_text(
        "Looks good", timeout=WAIT_MS
    )
    screenshot(alice_page, "comments-alice")
    screenshot(bob_page, "comments-bob")


def test_going_offline_typing_and_coming_back_loses_nothing(
    page_workers, browser, contexts, shared_document
):
    document, _, _ = shared_document
    alice_page, bob_page = open_for_both(page_workers, browser, contexts, shared_document)
    alice_editor, bob_editor = alice_page.get_by_label("Text"), bob_page.get_by_label("Text")
    for editor in (alice_editor, bob_editor):
        expect(editor).to_have_value("Day 1: ", timeout=WAIT_MS)

    alice_page.context.set_offline(True)  # the browser's "offline" event: the client drops
    expect(alice_page.locator("#connection-state")).to_have_text("offline", timeout=WAIT_MS)
    alice_editor.click()
    alice_editor.press("End")
    alice_editor.press_sequentially("train ✈", delay=30)  # typed offline: kept, not yet sent
    bob_editor.click()
    bob_editor.press("Home")
    bob_editor.press_sequentially("Plan. ", delay=30)  # meanwhile, online
    expect(bob_page.locator("#version")).not_to_contain_text("saving", timeout=WAIT_MS)
    document.refresh_from_db()
    assert document.content == "Plan. Day 1: "  # Bob's edit is stored, Alice's is not
    expect(alice_editor).to_have_value("Day 1: train ✈")  # and Bob's has not reached her
    screenshot(alice_page, "offline-alice")

    alice_page.context.set_offline(False)  # "online": the client reconnects at once
    expect(alice_page.locator("#connection-state")).to_have_text("open", timeout=WAIT_MS)
    for editor in (alice_editor, bob_editor):
        expect(editor).to_have_value("Plan. Day 1: train ✈", timeout=WAIT_MS)
    screenshot(alice_page, "back-online-alice")
    document.refresh_from_db()
    assert document.content == "Plan. Day 1: train ✈"


def test_someone_who_leaves_is_no_longer_listed(page_workers, browser, contexts, shared_document):
    _, _, bob = shared_document
    alice_page, bob_page = open_for_both(page_workers, browser, contexts, shared_document)
    members = alice_page.locator("#members")
    expect(members).to_contain_text(bob.username, timeout=WAIT_MS)

    bob_page.close()
    expect(members).not_to_contain_text(bob.username, timeout=WAIT_MS)
