"""A respondent fills a published form on one worker while its owner watches the live
dashboard on the other: live validation, progress, the submit, and the dashboard's counters,
submissions table and status changes reaching both sides without a reload."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from forms_live.models import Form, Submission
from forms_live.services import field_add, form_change, form_create
from tests.e2e.conftest import in_thread, screenshot, sign_in

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
WAIT_MS = 10_000
FIELDS = [
    {"key": "name", "type": "text", "label": "Your name", "required": True},
    {"key": "email", "type": "email", "label": "Email", "required": True},
    {
        "key": "diet",
        "type": "single_choice",
        "label": "Diet",
        "options": ["Anything", "Vegetarian", "Vegan"],
    },
    {
        "key": "guests",
        "type": "number",
        "label": "Guests",
        "rules": {"min": 0, "max": 5, "integer": True},
    },
]


EVERY_TYPE = [
    {"key": "code", "type": "text", "label": "Code", "rules": {"pattern": "[A-Z]{2}-[0-9]+"}},
    {"key": "notes", "type": "long_text", "label": "Notes"},
    {"key": "seats", "type": "number", "label": "Seats", "rules": {"integer": True}},
    {"key": "email", "type": "email", "label": "Email"},
    {"key": "size", "type": "single_choice", "label": "Size", "options": ["S", "M", "L"]},
    {
        "key": "extras",
        "type": "multiple_choice",
        "label": "Extras",
        "options": ["Tea", "Cake", "Fruit"],
        "rules": {"min_selected": 1},
    },
    {"key": "agree", "type": "checkbox", "label": "I agree", "required": True},
    {"key": "day", "type": "date", "label": "Day", "rules": {"min": "2030-01-01"}},
]


def create_published(owner_id: int, title: str, fields: list[dict], **extra) -> Form:
    def create() -> Form:
        owner = get_user_model().objects.get(pk=owner_id)
        form = form_create(owner=owner, title=title, **extra)
        for revision, field in enumerate(fields):
            field_add(
                user=owner,
                form_id=form.pk,
                base_revision=revision,
                client_msg_id=f"add-{field['key']}",
                **field,
            )
        form_change(
            user=owner,
            form_id=form.pk,
            base_revision=len(fields),
            client_msg_id="publish",
            prop="status",
            value="published",
        )
        return form

    return in_thread(create)


@pytest.fixture
def published_form(make_account):
    alice, bob = make_account(), make_account()
    return create_published(alice.user_id, "Team lunch", FIELDS), alice, bob


def counter(page: Page, label: str):
    return page.get_by_label(label, exact=True)


def test_a_respondent_fills_the_form_while_the_owner_watches_the_dashboard(
    page_workers, browser, contexts, published_form
):
    form, alice, bob = published_form
    worker_a, worker_b = page_workers

    alice_page = sign_in(contexts, browser, worker_a, alice)
    alice_page.goto(worker_a.http_url(f"/forms/{form.pk}/dashboard/"))
    expect(alice_page.locator("#connection-state")).to_have_text("open", timeout=WAIT_MS)
    expect(alice_page.locator("#dashboard[data-state=ready]")).to_have_count(1, timeout=WAIT_MS)
    expect(counter(alice_page, "Starts")).to_have_text("0")
    expect(counter(alice_page, "Completions")).to_have_text("0")

    bob_page = sign_in(contexts, browser, worker_b, bob)
    bob_page.goto(worker_b.http_url(f"/forms/{form.pk}/fill/"))
    expect(bob_page.locator("#connection-state")).to_have_text("open", timeout=WAIT_MS)
    name = bob_page.get_by_label("Your name")
    expect(name).to_be_editable(timeout=WAIT_MS)
    # Opening the page started bob's submission: alice sees it live.
    expect(counter(alice_page, "Starts")).to_have_text("1", timeout=WAIT_MS)
    row = alice_page.locator("#submission-rows tr", has_text=bob.username)
    expect(row).to_contain_text("In progress", timeout=WAIT_MS)

    progress = bob_page.locator("#fill-progress-text")
    name.press_sequentially("Bob", delay=30)
    expect(progress).to_have_text("50% complete", timeout=WAIT_MS)
    # The view is counted after the start, and dashboards hear of it with the next change.
    expect(counter(alice_page, "Views")).to_have_text("1", timeout=WAIT_MS)
    email = bob_page.get_by_label("Email")
    email.press_sequentially("bob@example", delay=30)
    email_error = bob_page.locator("[data-key=email] .field-error")
    expect(email_error).to_have_text(
        "Enter an email address such as name@example.com.", timeout=WAIT_MS
    )
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(progress).to_have_text("50% complete")
    bob_page.get_by_label("Guests").fill("7")
    expect(bob_page.locator("[data-key=guests] .field-error")).to_have_text(
        "Enter 5 or less.", timeout=WAIT_MS
    )
    bob_page.get_by_label("Guests").fill("2")
    email.press_sequentially(".com", delay=30)
    expect(progress).to_have_text("100% complete", timeout=WAIT_MS)
    expect(bob_page.get_by_label("Progress")).to_have_attribute("value", "100")
    expect(email_error).to_have_text("")
    expect(bob_page.locator("[data-key=guests] .field-error")).to_have_text("")
    bob_page.get_by_label("Vegetarian").check()
    expect(row).to_contain_text("100%", timeout=WAIT_MS)
    screenshot(bob_page, "form-fill-bob")

    bob_page.get_by_role("button", name="Send").click()
    expect(bob_page.get_by_role("heading", name="Thank you!")).to_be_visible(timeout=WAIT_MS)
    expect(counter(alice_page, "Completions")).to_have_text("1", timeout=WAIT_MS)
    expect(counter(alice_page, "Completion rate")).to_have_text("100%")
    expect(row).to_contain_text("Submitted", timeout=WAIT_MS)
    expect(alice_page.locator("#funnel-chart g[data-key=completions]")).to_have_attribute(
        "data-value", "1"
    )

    # The owner moves it on: the respondent's page hears it.
    row.get_by_role("button", name="Start processing").click()
    expect(row).to_contain_text("Processing", timeout=WAIT_MS)
    expect(bob_page.locator("#fill-done-status")).to_contain_text(
        "Being processed", timeout=WAIT_MS
    )
    screenshot(alice_page, "form-dashboard-alice")
    screenshot(bob_page, "form-fill-bob-sent")
    alice_page.set_viewport_size({"width": 390, "height": 800})  # a phone: the charts redraw
    expect(alice_page.locator("#funnel-chart")).to_have_attribute(
        "viewBox", re.compile(r"^0 0 3[0-9]{2} "), timeout=WAIT_MS
    )
    screenshot(alice_page, "form-dashboard-alice-phone")

    submission = Submission.objects.get(form_id=form.pk, respondent_id=bob.user_id)
    assert submission.status == "processing"
    assert submission.values == {
        "name": "Bob",
        "email": "bob@example.com",
        "guests": 2,
        "diet": "Vegetarian",
    }


def test_every_field_type_is_filled_and_an_anonymous_answer_resumes_after_a_reload(
    page_workers, browser, contexts, make_account
):
    owner, bob = make_account(), make_account()
    form = create_published(owner.user_id, "Order", EVERY_TYPE, anonymous=True)
    page = sign_in(contexts, browser, page_workers[1], bob)
    page.goto(page_workers[1].http_url(f"/forms/{form.pk}/fill/"))
    expect(page.locator("#fill[data-state=ready]")).to_have_count(1, timeout=WAIT_MS)

    page.get_by_label("Code").fill("ab-1")
    expect(page.locator("[data-key=code] .field-error")).to_have_text(
        "This answer is not in the expected format.", timeout=WAIT_MS
    )
    page.get_by_label("Code").fill("AB-12")
    page.get_by_label("Notes").fill("Line one\nLine two")
    page.get_by_label("Seats").fill("3")
    page.get_by_label("Email").fill("bob@example.com")
    page.get_by_label("M", exact=True).check()
    page.get_by_label("Cake").check()
    page.get_by_label("Fruit").check()
    page.get_by_label("Day").fill("2030-05-01")
    expect(page.locator("#fill-progress-text")).to_have_text("0% complete")
    page.get_by_label("I agree").check()
    expect(page.locator("#fill-progress-text")).to_have_text("100% complete", timeout=WAIT_MS)
    expect(page.locator("#fill .field-error:not(:empty)")).to_have_count(0)
    page.wait_for_function("formsFill.queue.size === 0 && formsFill.queue.inflight === null")

    # Nothing names bob on an anonymous form: the token kept in the browser resumes his answer.
    page.reload()
    expect(page.locator("#fill[data-state=ready]")).to_have_count(1, timeout=WAIT_MS)
    expect(page.get_by_label("Code")).to_have_value("AB-12")
    expect(page.get_by_label("Notes")).to_have_value("Line one\nLine two")
    expect(page.get_by_label("Seats")).to_have_value("3")
    expect(page.get_by_label("Email")).to_have_value("bob@example.com")
    expect(page.get_by_label("M", exact=True)).to_be_checked()
    expect(page.get_by_label("Cake")).to_be_checked()
    expect(page.get_by_label("Tea")).not_to_be_checked()
    expect(page.get_by_label("I agree")).to_be_checked()
    expect(page.get_by_label("Day")).to_have_value("2030-05-01")
    expect(page.locator("#fill-progress-text")).to_have_text("100% complete")
    screenshot(page, "form-fill-every-type")
    (submission,) = Submission.objects.filter(form_id=form.pk)
    assert submission.respondent_id is None
    assert submission.values == {
        "code": "AB-12",
        "notes": "Line one\nLine two",
        "seats": 3,
        "email": "bob@example.com",
        "size": "M",
        "extras": ["Cake", "Fruit"],
        "day": "2030-05-01",
        "agree": True,
    }

    # A token the server does not know (another database, a deleted answer): a fresh start.
    page.evaluate(
        f"localStorage.setItem('forms_live.submission.{form.pk}.{bob.user_id}', 'not-a-token')"
    )
    page.reload()
    expect(page.locator("#fill[data-state=ready]")).to_have_count(1, timeout=WAIT_MS)
    expect(page.get_by_label("Code")).to_have_value("")
    expect(page.locator("#connection-state")).to_have_text("open", timeout=WAIT_MS)
    assert Submission.objects.filter(form_id=form.pk).count() == 2
