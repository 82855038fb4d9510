"""End-to-end fixtures: two real Daphne workers that accept their own pages' origins, and
headless Chromium (Debian's `chromium`, driven by Playwright) with a context per user.

Screenshots go to ``.artifacts/e2e/`` (kept by CI as artifacts, ignored by git).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from collab.models import Document, Role
from collab.services import document_create, member_set
from monitoring.loadtest.workers import Worker, daphne_workers, free_port
from tests.factories import PASSWORD
from tests.system.conftest import Account, worker_env
from tests.system.conftest import make_account as make_account  # re-exported: a fixture

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "e2e"
T = TypeVar("T")


def in_thread(work: Callable[[], T]) -> T:
    """Run ORM work and service calls in a thread of their own: the services broadcast after
    commit through async_to_sync, which refuses this thread while Playwright's loop runs in it."""

    def run() -> T:
        try:
            return work()
        finally:
            # Back to the pool: a thread's connection is not returned when the thread ends, and
            # the pool of this process is small (DATABASE_POOL_MAX).
            connections.close_all()

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(run).result()


@pytest.fixture
def shared_document(make_account) -> tuple[Document, Account, Account]:
    """A document Alice owns ("Day 1: ") and Bob may edit, committed for the workers."""
    alice, bob = make_account(), make_account()

    def create() -> Document:
        owner = get_user_model().objects.get(pk=alice.user_id)
        document = document_create(owner=owner, title="Trip plan", content="Day 1: ")
        member_set(user=owner, document_id=document.pk, member_id=bob.user_id, role=Role.EDITOR)
        return document

    return in_thread(create), alice, bob


@pytest.fixture(scope="session")
def page_workers(django_db_setup: None) -> Iterator[list[Worker]]:
    """Two workers whose pages open sockets to themselves, so each allows its own origin."""
    ports = [free_port(), free_port()]
    origins = ",".join(f"http://127.0.0.1:{port}" for port in ports)
    env = {
        **worker_env(),
        "DJANGO_WS_ALLOWED_ORIGINS": origins,
        "DJANGO_CSRF_TRUSTED_ORIGINS": origins,
    }
    log_dir = Path(tempfile.mkdtemp(prefix="e2e-daphne-"))
    with daphne_workers(2, env, log_dir=log_dir, ports=ports) as workers:
        yield workers


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module, not per session: Playwright's sync API keeps an event loop running in this
    thread while it is open, and the tests that run after these need none there."""
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed for the e2e tests (.ci/run installs it)"
    # With that loop running, Django refuses ORM calls from this thread unless told it is safe:
    # it is here, the test's own queries are the only ones on it.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Fresh browser contexts (separate cookies: separate users); closed after the test."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def sign_in(
    contexts: list[BrowserContext], browser: Browser, worker: Worker, account: Account
) -> Page:
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    contexts.append(context)
    page = context.new_page()
    page.goto(worker.http_url("/accounts/login/"))
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/documents/")
    return page


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
