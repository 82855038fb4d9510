"""GET /api/monitoring/events/: staff only (others 403, anonymous 401), filters, pages."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from monitoring.events import record
from monitoring.models import EventKind, Severity
from tests.factories import UserFactory
from tests.integration.rest import error_of

URL = "/api/monitoring/events/"


@pytest.fixture
def staff_client(db) -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    return client


@pytest.fixture
def log(db):
    olive = UserFactory(username="olive")
    return [
        record(EventKind.LOGIN, Severity.INFO, actor=olive, ip="192.0.2.1"),
        record(EventKind.LOGIN_FAILED, Severity.WARNING, details={"username": "olive"}),
        record(EventKind.SECURITY_ALERT, Severity.CRITICAL, details={"rule": "r"}),
        record(EventKind.WS_DENIED, Severity.WARNING, ip="2001:db8::2"),
    ]


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_staff_list_events_newest_first_in_the_stream_shape(staff_client, log):
    response = staff_client.get(URL)

    assert ids(response) == [e.pk for e in reversed(log)]
    login = response.json()["results"][-1]
    assert login["kind"] == "login" and login["severity"] == "info"
    assert login["actor"] == {"id": log[0].actor_id, "username": "olive"}
    assert login["ip"] == "192.0.2.1" and login["details"] == {}
    assert response.json()["count"] == 4


def test_filters_by_kinds_severities_and_since(staff_client, log):
    assert ids(staff_client.get(URL, {"kind": "login_failed,ws_denied"})) == [
        log[3].pk,
        log[1].pk,
    ]
    assert ids(staff_client.get(URL, {"severity": "critical"})) == [log[2].pk]
    assert ids(staff_client.get(URL, {"since": log[1].pk})) == [log[3].pk, log[2].pk]
    assert ids(staff_client.get(URL, {"kind": "login", "since": log[0].pk})) == []


def test_pages(staff_client, log):
    page = staff_client.get(URL, {"limit": 2, "offset": 1}).json()
    assert [row["id"] for row in page["results"]] == [log[2].pk, log[1].pk]
    assert page["next"] and page["previous"]


@pytest.mark.parametrize(
    "query",
    [{"kind": "login,nope"}, {"severity": "fatal"}, {"since": "-1"}, {"since": "1.0"}],
)
def test_bad_filters_are_invalid(staff_client, query):
    error_of(staff_client.get(URL, query), 400, "invalid")


def test_non_staff_get_403_and_anonymous_401(api_client, log):
    error_of(api_client.get(URL), 403, "forbidden")
    error_of(APIClient().get(URL), 401, "unauthenticated")


def test_only_get(staff_client):
    error_of(staff_client.post(URL, {}, format="json"), 405, "method_not_allowed")
