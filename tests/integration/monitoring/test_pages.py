"""The staff page (monitoring/pages.py, /staff/): who may open it, and what it renders for whom.

Its live parts run in the browser (tests/e2e/test_staff.py); here, the page's answer, its
sections, the filters of every event kind and severity, and the controls each permission shows.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from monitoring.models import AnnouncementLevel, EventKind, Severity
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/staff/"
SECTIONS = [
    "alerts",
    "connections-total",
    "connections-chart",
    "connections-workers",
    "readiness-status",
    "readiness-checks",
    "app-switches",
    "announcements",
    "event-filters",
    "events-status",
    "events",
]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def staff_with(*codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="monitoring", codename__in=codenames)
    )
    return user


def options_of(html: str) -> dict:
    found = re.search(r'<script id="staff-options" type="application/json">(.*?)</script>', html)
    assert found, "the page's options are missing"
    return json.loads(found.group(1))


class Form(HTMLParser):
    """The ids in the page, the form fields and the labels naming them."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.fields: list[dict[str, str | None]] = []
        self.labelled: set[str] = set()
        self.wrapped = 0  # fields inside a <label>
        self._in_label = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "label":
            self._in_label += 1
            if attributes.get("for"):
                self.labelled.add(attributes["for"])
        if tag in ("input", "select", "textarea") and attributes.get("type") != "hidden":
            self.fields.append({**attributes, "wrapped": "yes" if self._in_label else None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label -= 1


def parsed(response) -> Form:
    form = Form()
    form.feed(response.content.decode())
    return form


def assert_every_field_labelled(form: Form) -> None:
    for field in form.fields:
        assert field["wrapped"] or field.get("id") in form.labelled, f"no label for {field}"


def test_anonymous_visitors_are_sent_to_sign_in():
    assert reverse("staff-page") == URL

    response = Client().get(URL)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/staff/"


def test_signed_in_users_who_are_not_staff_get_403_and_no_page():
    response = signed_in(UserFactory()).get(URL)

    assert response.status_code == 403
    html = response.content.decode()
    assert "Staff only" in html
    assert "staff.js" not in html and "staff-options" not in html
    assert 'href="/staff/"' not in html  # nor the nav's link to it


def test_staff_get_every_section_and_a_filter_for_every_kind_and_severity():
    response = signed_in(UserFactory(is_staff=True)).get(URL)

    assert response.status_code == 200
    form = parsed(response)
    assert set(SECTIONS) <= form.ids
    assert "connection-state" in form.ids  # the badge the page's socket drives
    boxes = {(f["name"], f["value"]) for f in form.fields if f.get("type") == "checkbox"}
    assert boxes == {("kind", kind) for kind in EventKind.values} | {
        ("severity", severity) for severity in Severity.values
    }
    assert_every_field_labelled(form)
    html = response.content.decode()
    assert '<script type="module">' in html
    assert 'import { mountStaffPage } from "/static/monitoring/staff.js"' in html
    assert 'href="/static/monitoring/staff.css"' in html


def test_staff_without_permissions_see_no_controls():
    response = signed_in(UserFactory(is_staff=True)).get(URL)

    options = options_of(response.content.decode())
    assert options["can_switch"] is False
    assert options["can_announce"] is False
    assert options["can_withdraw"] is False
    form = parsed(response)
    assert "announce-form" not in form.ids and "switch-reason" not in form.ids
    assert "monitoring.change_appswitch" in response.content.decode()  # says what is missing


def test_a_superuser_gets_every_control_with_labels():
    user = UserFactory(is_staff=True, is_superuser=True)

    response = signed_in(user).get(URL)

    options = options_of(response.content.decode())
    assert options["can_switch"] and options["can_announce"] and options["can_withdraw"]
    form = parsed(response)
    assert {"announce-form", "announce-text", "announce-level", "announce-minutes"} <= form.ids
    assert "switch-reason" in form.ids
    levels = re.findall(r'<option value="(\w+)">', response.content.decode())
    assert levels == AnnouncementLevel.values
    assert_every_field_labelled(form)


def test_each_control_follows_its_own_permission():
    announcer = staff_with("add_announcement")

    response = signed_in(announcer).get(URL)

    options = options_of(response.content.decode())
    assert options["can_announce"] is True
    assert options["can_switch"] is False and options["can_withdraw"] is False
    assert "announce-form" in parsed(response).ids
    assert "switch-reason" not in parsed(response).ids


def test_the_latency_meters_use_the_health_samplers_warning_levels(settings):
    settings.MONITORING_HEALTH_THRESHOLDS = {
        "cpu_percent": 90,
        "database_ms": {"warning": 120, "critical": 900},
        "redis_ms": 40,
    }

    response = signed_in(UserFactory(is_staff=True)).get(URL)

    assert options_of(response.content.decode())["latency_warning_ms"] == {
        "database": 120.0,
        "redis": 40.0,
    }


def test_a_bad_threshold_setting_leaves_the_meters_without_scale(settings):
    settings.MONITORING_HEALTH_THRESHOLDS = {"database_ms": "fast"}

    response = signed_in(UserFactory(is_staff=True)).get(URL)

    assert response.status_code == 200
    assert options_of(response.content.decode())["latency_warning_ms"] == {}


def test_the_page_only_answers_get():
    response = signed_in(UserFactory(is_staff=True)).post(URL)

    assert response.status_code == 405


@pytest.mark.parametrize("path", ["monitoring/staff.js", "monitoring/staff.css"])
def test_the_pages_static_files_are_served(path):
    response = Client().get(f"/static/{path}")

    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body.strip()
