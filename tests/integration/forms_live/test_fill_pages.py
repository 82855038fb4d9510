"""The fill page and the live dashboard of a form (forms_live/pages/fill.py): who may open them,
as the form's sockets decide, and what they render for the browser modules to drive.

A published form ("Sign-up") has an owner, an editor and a viewer; a stranger is no member (and
may still fill it: anyone signed in may). A draft and a closed form are nobody's to fill.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.staticfiles import finders
from django.test import Client

from forms_live.models import Form
from forms_live.services import field_add, form_change, form_create, member_set
from tests.factories import UserFactory
from tests.integration.ws import close_code, communicator, receive, ticket_for

HUGE = "99999999999999999999"


@dataclass
class Cast:
    published: Form
    draft: Form
    closed: Form
    owner: Any
    editor: Any
    viewer: Any
    stranger: Any

    def client(self, who: str | None) -> Client:
        client = Client()
        if who is not None:
            client.force_login(getattr(self, who))
        return client


def change_form(owner, form: Form, prop: str, value: Any) -> None:
    base = Form.objects.get(pk=form.pk).revision
    form_change(
        user=owner,
        form_id=form.pk,
        base_revision=base,
        client_msg_id=f"{prop}-{value}",
        prop=prop,
        value=value,
    )


def new_form(owner, title: str, status: str | None, members: dict, **extra: Any) -> Form:
    form = form_create(owner=owner, title=title, **extra)
    for role, user in members.items():
        member_set(user=owner, form_id=form.pk, member_id=user.pk, role=role)
    field_add(
        user=owner,
        form_id=form.pk,
        base_revision=0,
        client_msg_id="add-email",
        key="email",
        type="email",
        label="E-mail",
        required=True,
    )
    if status == "closed":
        change_form(owner, form, "status", "published")
    if status is not None:
        change_form(owner, form, "status", status)
    return form


def make_cast() -> Cast:
    owner, editor, viewer, stranger = UserFactory.create_batch(4)
    members = {"editor": editor, "viewer": viewer}
    return Cast(
        published=new_form(owner, "Sign-up", "published", members),
        draft=new_form(owner, "Draft plan", None, members),
        closed=new_form(owner, "Old survey", "closed", members),
        owner=owner,
        editor=editor,
        viewer=viewer,
        stranger=stranger,
    )


@pytest.fixture
def cast(db) -> Cast:
    return make_cast()


def fill_url(form_id: object) -> str:
    return f"/forms/{form_id}/fill/"


def dashboard_url(form_id: object) -> str:
    return f"/forms/{form_id}/dashboard/"


VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class Page(HTMLParser):
    """A rendered page: its elements by id with their text, the labels' targets, the module
    scripts and the stylesheets."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, tuple[str, dict[str, str]]] = {}
        self.text: dict[str, str] = {}
        self.label_for: dict[str, str] = {}
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._open: list[str | None] = []  # the ids of the open elements (None: no id)
        self._label: str | None = None
        self._script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        element_id = attributes.get("id")
        if element_id is not None:
            assert element_id not in self.by_id, f"id {element_id} twice"
            self.by_id[element_id] = (tag, attributes)
            self.text[element_id] = ""
        if tag not in VOID:
            self._open.append(element_id)
        if tag == "label" and "for" in attributes:
            self._label = attributes["for"]
            self.label_for[self._label] = ""
        self._script = tag == "script" and attributes.get("type") == "module"
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.styles.append(attributes["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self._open:
            self._open.pop()
        if tag == "label":
            self._label = None
        self._script = False

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            if element_id is not None:
                self.text[element_id] += data
        if self._label is not None:
            self.label_for[self._label] += data
        if self._script:
            self.scripts.append(data)

    def text_of(self, element_id: str) -> str:
        return " ".join(self.text[element_id].split())

    def labelled(self, element_id: str) -> str:
        """The accessible name: aria-label, a <label for>, or the aria-labelledby elements."""
        _, attributes = self.by_id[element_id]
        if "aria-label" in attributes:
            return attributes["aria-label"]
        if element_id in self.label_for:
            return " ".join(self.label_for[element_id].split())
        names = attributes.get("aria-labelledby", "").split()
        assert names, f"#{element_id} has no label"
        return " ".join(self.text_of(name) for name in names)


def parse(response) -> Page:
    return Page(response.content.decode())


def static_modules(page: Page) -> list[str]:
    """Every static file the page loads: its stylesheets, the modules its scripts import and,
    transitively, the modules those import (relative imports, as the browser resolves them)."""
    wanted = [href for href in page.styles]
    for script in page.scripts:
        wanted += re.findall(r'from\s+"([^"]+)"', script)
    seen: list[str] = []
    while wanted:
        url = wanted.pop()
        assert url.startswith("/static/"), url
        path = url.removeprefix("/static/")
        if path in seen:
            continue
        seen.append(path)
        found = finders.find(path)
        assert found, f"{url} is not a static file"
        if path.endswith(".js"):
            with open(found, encoding="utf-8") as module:
                source = module.read()
            for target in re.findall(r'^\s*(?:import|export)[^;]*?from\s+"([^"]+)"', source, re.M):
                joined = PurePosixPath("/static", path).parent / target
                wanted.append(str(PurePosixPath(*_normalise(joined.parts))))
    return seen


def _normalise(parts: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            out.pop()
        elif part != ".":
            out.append(part)
    return out


# --- the fill page -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "editor", "viewer", "stranger"])
def test_anyone_signed_in_opens_the_fill_page_of_a_published_form(cast, who):
    response = cast.client(who).get(fill_url(cast.published.pk))

    assert response.status_code == 200
    assert response.templates[0].name == "forms_live/fill.html"
    page = parse(response)
    _, root = page.by_id["fill"]
    assert root["data-form"] == str(cast.published.pk)
    assert root["data-anonymous"] == "false"
    assert page.text_of("fill-title") == "Sign-up"
    assert page.by_id["fill-progress"][0] == "progress"
    assert page.labelled("fill-progress") == "Progress"
    assert page.by_id["fill-progress-text"][1]["role"] == "status"
    assert page.by_id["fill-status"][1]["aria-live"] == "polite"
    assert page.by_id["fill-form"][1].get("novalidate") is not None
    assert page.by_id["fill-submit"][0] == "button"
    assert page.by_id["fill-done"][1].get("hidden") is not None
    assert page.by_id["connection-state"][1]["role"] == "status"


def test_the_fill_page_mounts_the_module_on_its_form_and_every_file_it_loads_is_served(cast):
    page = parse(cast.client("stranger").get(fill_url(cast.published.pk)))

    (script,) = page.scripts
    assert 'import { mountFill } from "/static/forms_live/fill.js"' in script
    assert f"formId: {cast.published.pk}," in script
    assert f"userId: {cast.stranger.pk}," in script
    assert "anonymous: false," in script
    loaded = static_modules(page)
    assert {"forms_live/fill.js", "forms_live/fill.css", "realtime/client.js"} <= set(loaded)


def test_the_fill_page_of_an_anonymous_form_says_so_and_keeps_its_token(db):
    owner = UserFactory()
    form = new_form(owner, "Feedback", "published", {}, anonymous=True)
    client = Client()
    client.force_login(UserFactory())

    response = client.get(fill_url(form.pk))

    assert response.status_code == 200
    page = parse(response)
    assert page.by_id["fill"][1]["data-anonymous"] == "true"
    assert "anonymous: true," in page.scripts[0]
    assert "your name is not stored" in response.content.decode()


@pytest.mark.parametrize("who", ["owner", "stranger"])
@pytest.mark.parametrize("which", ["draft", "closed"])
def test_a_draft_or_closed_form_has_no_fill_page_even_for_its_owner(cast, who, which):
    form = getattr(cast, which)

    response = cast.client(who).get(fill_url(form.pk))

    assert response.status_code == 404
    assert b"Draft plan" not in response.content and b"Old survey" not in response.content


@pytest.mark.parametrize("form_id", ["0", "987654321", HUGE])
def test_a_form_that_does_not_exist_has_no_fill_page(cast, form_id):
    assert cast.client("stranger").get(fill_url(form_id)).status_code == 404


def test_the_fill_page_sends_the_anonymous_to_sign_in(cast):
    url = fill_url(cast.published.pk)

    response = cast.client(None).get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_the_fill_page_is_read_only(cast):
    response = cast.client("stranger").post(fill_url(cast.published.pk))

    assert response.status_code == 405


def test_the_fill_page_costs_a_few_queries(cast, django_assert_max_num_queries):
    client = cast.client("stranger")
    with django_assert_max_num_queries(4):  # session, user, form (and a savepoint at most)
        assert client.get(fill_url(cast.published.pk)).status_code == 200


# --- the dashboard -------------------------------------------------------------------------------

COUNTERS = {
    "count-views": "Views",
    "count-starts": "Starts",
    "count-completions": "Completions",
    "count-abandoned": "Abandoned",
    "count-completion-rate": "Completion rate",
    "count-median": "Median time to complete",
}


@pytest.mark.parametrize("who", ["owner", "editor"])
def test_owners_and_editors_open_the_dashboard(cast, who):
    response = cast.client(who).get(dashboard_url(cast.published.pk))

    assert response.status_code == 200
    assert response.templates[0].name == "forms_live/dashboard.html"
    page = parse(response)
    assert page.by_id["dashboard"][1]["data-form"] == str(cast.published.pk)
    assert page.text_of("dashboard-title") == "Sign-up"
    for counter, label in COUNTERS.items():
        assert page.labelled(counter) == label
    assert page.by_id["counters"][1]["aria-live"] == "polite"
    for chart in ("funnel-chart", "dropoff-chart"):
        tag, attributes = page.by_id[chart]
        assert (tag, attributes["role"]) == ("svg", "img")
        assert page.labelled(chart)
    assert page.by_id["submissions"][0] == "table"
    assert page.by_id["submission-rows"][0] == "tbody"
    assert page.by_id["dashboard-updated"][1]["role"] == "status"
    assert f'href="/forms/{cast.published.pk}/fill/"' in response.content.decode()


def test_the_dashboard_mounts_the_module_on_its_form_and_every_file_it_loads_is_served(cast):
    page = parse(cast.client("owner").get(dashboard_url(cast.published.pk)))

    (script,) = page.scripts
    assert 'import { mountDashboard } from "/static/forms_live/dashboard.js"' in script
    assert f"formId: {cast.published.pk}," in script
    loaded = static_modules(page)
    assert {"forms_live/dashboard.js", "forms_live/charts.js", "realtime/client.js"} <= set(loaded)


def test_a_draft_has_a_dashboard_for_its_builders_without_a_fill_link(cast):
    response = cast.client("editor").get(dashboard_url(cast.draft.pk))

    assert response.status_code == 200
    assert f"/forms/{cast.draft.pk}/fill/" not in response.content.decode()
    assert parse(response).by_id["dashboard-form-status"][1]["data-status"] == "draft"


def test_a_viewer_is_refused_the_dashboard_as_the_socket_refuses_them(cast):
    response = cast.client("viewer").get(dashboard_url(cast.published.pk))

    assert response.status_code == 403
    assert b"count-completions" not in response.content


@pytest.mark.parametrize("form_id", ["published", "0", HUGE])
def test_a_stranger_finds_no_dashboard(cast, form_id):
    form_id = cast.published.pk if form_id == "published" else form_id

    response = cast.client("stranger").get(dashboard_url(form_id))

    assert response.status_code == 404
    assert b"Sign-up" not in response.content


def test_the_dashboard_sends_the_anonymous_to_sign_in(cast):
    url = dashboard_url(cast.published.pk)

    response = cast.client(None).get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


# --- pages and sockets agree ---------------------------------------------------------------------

# What each page answers, and what its socket does: 200 and the socket opens, 403 and 4403,
# 404 and 4404.
SOCKET_FOR_PAGE = {200: None, 403: 4403, 404: 4404}
AGREEMENT = [
    ("fill", "published", "owner", 200),
    ("fill", "published", "stranger", 200),
    ("fill", "draft", "owner", 404),
    ("fill", "closed", "stranger", 404),
    ("dashboard", "published", "owner", 200),
    ("dashboard", "published", "editor", 200),
    ("dashboard", "published", "viewer", 403),
    ("dashboard", "published", "stranger", 404),
    ("dashboard", "draft", "owner", 200),
]


def status_of(cast: Cast, who: str, url: str) -> int:
    return cast.client(who).get(url).status_code


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_each_page_answers_as_its_socket_does(communicators):
    cast = await sync_to_async(make_cast)()
    for page, which, who, status in AGREEMENT:
        form = getattr(cast, which)
        user = getattr(cast, who)
        url = (fill_url if page == "fill" else dashboard_url)(form.pk)

        answered = await sync_to_async(status_of)(cast, who, url)

        comm = communicator(f"/ws/forms/{form.pk}/{page}/", ticket=ticket_for(user))
        communicators.append(comm)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        expected_close = SOCKET_FOR_PAGE[status]
        if expected_close is None:
            assert (await receive(comm))["type"] == "session.welcome", (page, which, who)
            assert (await receive(comm))["type"] == f"forms.{page}.snapshot", (page, which, who)
        else:
            assert await close_code(comm) == expected_close, (page, which, who)
        assert answered == status, (page, which, who)
