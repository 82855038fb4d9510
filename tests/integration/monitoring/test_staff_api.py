"""REST staff controls under /api/monitoring/: who may do what, inputs, and what they change."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from monitoring.models import Announcement, AppSwitch, SystemEvent
from tests.factories import UserFactory
from tests.integration.rest import error_of

pytestmark = pytest.mark.django_db(transaction=True)

CONNECTIONS = "/api/monitoring/connections/"
APPS = "/api/monitoring/apps/"
ANNOUNCEMENTS = "/api/monitoring/announcements/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def superuser_client() -> APIClient:
    return client_for(UserFactory(is_staff=True, is_superuser=True))


@pytest.fixture
def staff_client() -> APIClient:
    """Staff without any model permission: may look, may not act."""
    return client_for(UserFactory(is_staff=True))


@pytest.fixture
def user_client() -> APIClient:
    return client_for(UserFactory())


def staff_with(*codenames: str) -> APIClient:
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="monitoring", codename__in=codenames)
    )
    return client_for(user)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("get", CONNECTIONS, None),
        ("post", "/api/monitoring/users/1/disconnect/", None),
        ("get", APPS, None),
        ("patch", APPS + "forms/", {"enabled": False}),
        ("post", ANNOUNCEMENTS, {"text": "hi"}),
        ("post", ANNOUNCEMENTS + "1/withdraw/", None),
    ],
)
def test_staff_routes_refuse_others_with_403_and_anonymous_with_401(user_client, method, url, body):
    refused = getattr(user_client, method)(url, body, format="json")
    anonymous = getattr(APIClient(), method)(url, body, format="json")

    error_of(refused, 403, "forbidden")
    error_of(anonymous, 401, "unauthenticated")
    assert not SystemEvent.objects.filter(kind="staff_action").exists()


@pytest.mark.parametrize(
    ("method", "url", "body", "codename"),
    [
        ("post", "/api/monitoring/users/{user}/disconnect/", None, "disconnect_user"),
        ("patch", APPS + "forms/", {"enabled": False}, "change_appswitch"),
        ("post", ANNOUNCEMENTS, {"text": "hi"}, "add_announcement"),
    ],
)
def test_staff_need_the_permission_of_each_change(staff_client, method, url, body, codename):
    target = UserFactory()
    url = url.format(user=target.pk)

    refused = getattr(staff_client, method)(url, body, format="json")
    allowed = getattr(staff_with(codename), method)(url, body, format="json")

    error_of(refused, 403, "forbidden")
    assert allowed.status_code in (200, 201, 202), allowed.content


def test_the_switches_list_every_app_and_a_patch_switches_one(superuser_client):
    AppSwitch.objects.all().delete()  # absent rows read as on

    before = superuser_client.get(APPS)
    patched = superuser_client.patch(
        APPS + "comments/", {"enabled": False, "reason": "incident 42"}, format="json"
    )
    one = superuser_client.get(APPS + "comments/")

    assert before.status_code == 200
    assert [(s["app"], s["enabled"]) for s in before.json()] == [
        ("collab", True), ("comments", True), ("forms", True), ("presence", True),
    ]  # fmt: skip
    assert patched.status_code == 200, patched.content
    assert one.json()["enabled"] is False and one.json()["reason"] == "incident 42"
    assert one.json()["changed_by"]["username"]
    assert SystemEvent.objects.get(kind="staff_action").details["action"] == "app_disabled"


@pytest.mark.parametrize(
    ("app", "body", "status", "code"),
    [
        ("monitoring", {"enabled": False}, 404, "not_found"),
        ("forms", {"enabled": "no"}, 400, "invalid"),
        ("forms", {"enabled": 0}, 400, "invalid"),
        ("forms", {}, 400, "invalid"),
        ("forms", {"enabled": False, "reason": "x" * 201}, 400, "invalid"),
        ("forms", {"enabled": False, "reason": 7}, 400, "invalid"),
    ],
)
def test_bad_switches_get_a_stable_error(superuser_client, app, body, status, code):
    error_of(superuser_client.patch(APPS + f"{app}/", body, format="json"), status, code)


def test_an_announcement_is_made_listed_and_withdrawn(superuser_client, user_client):
    made = superuser_client.post(
        ANNOUNCEMENTS, {"text": "Back at 23:00", "level": "critical", "expires_in": 600},
        format="json",
    )  # fmt: skip
    announcement_id = made.json()["id"]
    seen_by_user = user_client.get(ANNOUNCEMENTS)
    one_for_user = user_client.get(ANNOUNCEMENTS + f"{announcement_id}/")
    withdrawn = superuser_client.post(ANNOUNCEMENTS + f"{announcement_id}/withdraw/")
    after_for_user = user_client.get(ANNOUNCEMENTS)
    gone_for_user = user_client.get(ANNOUNCEMENTS + f"{announcement_id}/")
    staff_list = superuser_client.get(ANNOUNCEMENTS)
    staff_live = superuser_client.get(ANNOUNCEMENTS + "?live=true")

    assert made.status_code == 201, made.content
    assert made.json()["level"] == "critical" and made.json()["live"] is True
    assert [a["text"] for a in seen_by_user.json()["results"]] == ["Back at 23:00"]
    assert "created_by" not in seen_by_user.json()["results"][0]  # staff detail, staff only
    assert one_for_user.status_code == 200
    assert withdrawn.status_code == 200 and withdrawn.json()["live"] is False
    assert withdrawn.json()["withdrawn_by"] is not None
    assert after_for_user.json()["results"] == []
    error_of(gone_for_user, 404, "not_found")
    assert [a["id"] for a in staff_list.json()["results"]] == [announcement_id]
    assert staff_live.json()["results"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": ""},
        {"text": "x" * 501},
        {"text": "hi", "level": "loud"},
        {"text": "hi", "expires_in": 5},
        {"text": "hi", "expires_at": "2000-01-01T00:00:00Z"},
        {"text": "hi", "expires_at": "2999-01-01T00:00:00Z", "expires_in": 600},
        {"text": ["hi"]},
    ],
)
def test_bad_announcements_get_a_stable_error(superuser_client, body):
    error_of(superuser_client.post(ANNOUNCEMENTS, body, format="json"), 400, "invalid")
    assert not Announcement.objects.exists()


def test_disconnecting_an_unknown_user_is_404(superuser_client):
    error_of(superuser_client.post("/api/monitoring/users/999999/disconnect/"), 404, "not_found")


def test_disconnecting_a_user_answers_202_and_is_audited(superuser_client):
    target = UserFactory(username="mallory")

    response = superuser_client.post(f"/api/monitoring/users/{target.pk}/disconnect/")

    assert response.status_code == 202
    assert response.json() == {"user": {"id": target.pk, "username": "mallory"}}
    event = SystemEvent.objects.get(kind="staff_action")
    assert event.details["action"] == "user_disconnected" and event.severity == "warning"


def test_connections_answer_totals_per_app_and_worker(staff_client):
    response = staff_client.get(CONNECTIONS)

    assert response.status_code == 200
    assert response.json() == {"total": 0, "apps": {}, "workers": []}
