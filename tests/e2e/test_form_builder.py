"""Two builders of one form in two browser contexts, on two workers: the owner (Alice) on
worker A and an editor (Bob) on worker B, on the live form builder page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from forms_live.models import FieldConflict, Form, FormField
from forms_live.services import field_add, field_change, form_create, member_set
from tests.e2e.conftest import in_thread, screenshot, sign_in

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
WAIT_MS = 10_000


# Exceptions the pages did not catch, by page: any fails the test.
page_errors: dict[Page, list[Exception]] = {}


@pytest.fixture(autouse=True)
def _no_page_errors():
    page_errors.clear()
    yield
    assert not page_errors, page_errors


@pytest.fixture
def shared_form(make_account):
    alice, bob = make_account(), make_account()

    def create():
        owner = get_user_model().objects.get(pk=alice.user_id)
        form = form_create(owner=owner, title="Sign-up", conflict_policy="manual")
        member_set(user=owner, form_id=form.pk, member_id=bob.user_id, role="editor")
        for revision, (key, kind, label) in enumerate(
            [("email", "email", "E-mail"), ("name", "text", "Name")]
        ):
            field_add(
                user=owner,
                form_id=form.pk,
                base_revision=revision,
                client_msg_id=f"add-{key}",
                key=key,
                type=kind,
                label=label,
            )
        return form

    return in_thread(create), alice, bob


def open_for_both(page_workers, browser, contexts, shared_form) -> list[Page]:
    """Alice on worker A and Bob on worker B, on the builder, the snapshot drawn."""
    form, alice, bob = shared_form
    pages = []
    for worker, account in zip(page_workers, (alice, bob), strict=True):
        page = sign_in(contexts, browser, worker, account)
        page.on(
            "pageerror", lambda error, page=page: page_errors.setdefault(page, []).append(error)
        )
        page.goto(worker.http_url("/forms/"))
        page.get_by_role("link", name=form.title).click()  # the list leads to the builder
        page.wait_for_url(f"**/forms/{form.pk}/edit/")
        expect(page.locator("#connection-state")).to_have_text("open", timeout=WAIT_MS)
        expect(page.locator("#fields > li")).to_have_count(2, timeout=WAIT_MS)
        pages.append(page)
    # Each sees the other here: the presence room works across the workers.
    expect(pages[0].locator("#members")).to_contain_text(bob.username, timeout=WAIT_MS)
    return pages


def field(page: Page, key: str):
    return page.locator(f'#fields > li[data-key="{key}"]')


def test_who_edits_which_field_and_a_new_field_appear_live(
    page_workers, browser, contexts, shared_form
):
    form, alice, bob = shared_form
    alice_page, bob_page = open_for_both(page_workers, browser, contexts, shared_form)

    field(bob_page, "name").get_by_label("Label").focus()
    expect(field(alice_page, "name").locator(".editing")).to_have_text(
        f"{bob.username} editing", timeout=WAIT_MS
    )
    expect(field(alice_page, "email").locator(".editing")).to_have_text("")
    expect(alice_page.locator("#members")).to_contain_text(
        f"{bob.username}: editing name", timeout=WAIT_MS
    )

    alice_page.get_by_label("Key").fill("age")
    alice_page.locator("#add-type").select_option("number")
    alice_page.locator("#add-label").fill("Your age")
    alice_page.get_by_role("button", name="Add field").click()
    expect(field(bob_page, "age").get_by_label("Label")).to_have_value("Your age", timeout=WAIT_MS)
    expect(bob_page.locator("#fields > li")).to_have_count(3)
    expect(alice_page.get_by_role("status").filter(has_text="Added age.")).to_be_visible()

    # An ack's error is shown, not thrown: the key is taken.
    alice_page.get_by_label("Key").fill("name")
    alice_page.locator("#add-label").fill("Again")
    alice_page.get_by_role("button", name="Add field").click()
    expect(alice_page.locator("#builder-messages")).to_have_text(
        "Adding name: The form already has a field 'name'. (conflict)", timeout=WAIT_MS
    )
    # The owner publishes: the editor's page shows it, and the way to fill it.
    alice_page.get_by_label("Status").select_option("published")
    expect(bob_page.locator("#form-status")).to_have_text("published", timeout=WAIT_MS)
    expect(bob_page.get_by_role("link", name="Fill")).to_be_visible()
    expect(bob_page.get_by_label("Status (the owner's)")).to_be_disabled()
    screenshot(alice_page, "form-builder-alice")
    screenshot(bob_page, "form-builder-bob")

    # Bob leaves the field: nobody edits it any more.
    bob_page.locator("#add-key").focus()
    expect(field(alice_page, "name").locator(".editing")).to_have_text("", timeout=WAIT_MS)
    keys = list(FormField.objects.filter(form=form).values_list("key", flat=True))
    assert keys == ["email", "name", "age"]

    # Bob's socket goes; what changed meanwhile comes on the next one as the missed changes
    # after the revision his page had (`since`), not as a new snapshot.
    bob_page.evaluate(
        """() => {
          const client = window.formBuilder.client;
          client.on("forms.form.resumed", (frame) => (window.resumedAt = frame.data.revision));
          client.on("forms.form.snapshot", () => (window.snapshots = (window.snapshots ?? 0) + 1));
          client.close();
        }"""
    )
    expect(bob_page.locator("#connection-state")).to_have_text("closed", timeout=WAIT_MS)
    revision = in_thread(
        lambda: (
            field_change(
                user=get_user_model().objects.get(pk=alice.user_id),
                form_id=form.pk,
                base_revision=3,
                client_msg_id="rename-email",
                key="email",
                prop="label",
                value="Work e-mail",
            ).revision
        )
    )
    bob_page.evaluate("() => window.formBuilder.client.start()")
    expect(field(bob_page, "email").get_by_label("Label")).to_have_value(
        "Work e-mail", timeout=WAIT_MS
    )
    assert bob_page.evaluate("() => [window.resumedAt, window.snapshots ?? 0]") == [revision, 0]

    alice_page.get_by_role("link", name="← Forms").click()
    row = alice_page.locator(f'li[data-form="{form.pk}"]')
    expect(row).to_contain_text("Published", timeout=WAIT_MS)
    expect(row.get_by_role("link", name="Fill")).to_be_visible()
    expect(row.get_by_role("link", name="Dashboard")).to_be_visible()
    screenshot(alice_page, "forms-list-alice")


def test_a_conflict_shows_on_both_pages_and_resolving_it_clears_it_on_both(
    page_workers, browser, contexts, shared_form
):
    form, alice, bob = shared_form
    alice_page, bob_page = open_for_both(page_workers, browser, contexts, shared_form)
    seen = alice_page.locator("#builder").get_attribute("data-revision")

    # Both start from the same revision; Alice's change lands first, Bob's is then a conflict.
    field(bob_page, "name").get_by_label("Label").fill("Bob's name")
    alice_label = field(alice_page, "name").get_by_label("Label")
    alice_label.fill("Alice's name")
    alice_label.press("Enter")
    next_revision = str(int(seen) + 1)
    expect(bob_page.locator("#builder")).to_have_attribute("data-revision", next_revision)
    expect(field(bob_page, "name").get_by_label("Label")).to_have_value("Bob's name")
    field(bob_page, "name").get_by_label("Label").press("Enter")

    for page in (alice_page, bob_page):
        conflict = page.locator("#conflicts > li")
        expect(conflict).to_have_count(1, timeout=WAIT_MS)
        expect(conflict.locator(".current")).to_contain_text("“Alice's name”")
        expect(conflict.locator(".proposed")).to_contain_text(f"“Bob's name” by {bob.username}")
        expect(page.locator("#conflicts-count")).to_have_text("1")
    # Manual policy: the current value stays until someone decides.
    expect(field(bob_page, "name").get_by_label("Label")).to_have_value("Alice's name")
    expect(bob_page.locator("#builder-messages")).to_contain_text("resolve the conflict below")
    screenshot(alice_page, "form-conflict-alice")
    bob_page.set_viewport_size({"width": 390, "height": 844})  # a phone
    screenshot(bob_page, "form-conflict-bob")

    alice_page.get_by_role("button", name="Take proposed").click()
    expect(alice_page.locator("#builder-messages")).to_have_text(
        "Conflict on name: resolved.", timeout=WAIT_MS
    )
    for page in (alice_page, bob_page):
        expect(page.locator("#conflicts > li")).to_have_count(0, timeout=WAIT_MS)
        expect(page.locator("#conflicts-count")).to_have_text("0")
        expect(field(page, "name").get_by_label("Label")).to_have_value(
            "Bob's name", timeout=WAIT_MS
        )
    conflict = FieldConflict.objects.get(form=form)
    assert (conflict.status, conflict.resolution, conflict.resolved_by_id) == (
        "resolved",
        "proposed",
        alice.user_id,
    )
    assert FormField.objects.get(form=form, key="name").label == "Bob's name"
    assert Form.objects.get(pk=form.pk).revision == int(seen) + 3
