"""POST /api/realtime/tickets/ (config/realtime/views.py): single-use WebSocket tickets."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.realtime.tickets import TicketHolder, ticket_aredeem

URL = "/api/realtime/tickets/"


def test_post_issues_a_ticket_that_redeems_to_the_user(api_client, user, settings):
    response = api_client.post(URL)

    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == settings.REALTIME_TICKET_TTL_SECONDS == 30
    assert response["Cache-Control"] == "no-store"
    assert async_to_sync(ticket_aredeem)(body["ticket"]).user_id == user.pk
    assert async_to_sync(ticket_aredeem)(body["ticket"]) is None


def test_each_post_issues_a_different_ticket(api_client):
    first, second = api_client.post(URL).json()["ticket"], api_client.post(URL).json()["ticket"]

    assert first != second
    assert len(first) >= 40


def test_without_credentials_the_answer_is_401_with_the_error_shape(db):
    response = APIClient().post(URL)

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "unauthenticated",
            "message": "Authentication credentials were not provided.",
            "retry": False,
        }
    }
    assert response["WWW-Authenticate"] == 'Token realm="api"'


def test_a_token_authenticates(user):
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = client.post(URL)

    assert response.status_code == 201
    assert async_to_sync(ticket_aredeem)(response.json()["ticket"]) == TicketHolder(
        user.pk, None
    )  # by token


def test_a_wrong_token_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    response = client.post(URL)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_a_token_of_a_deactivated_user_is_401(user):
    token = Token.objects.create(user=user)
    user.is_active = False
    user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert client.post(URL).status_code == 401


def test_session_auth_enforces_csrf(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    refused = client.post(URL)

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert "ticket" not in refused.json()


def test_session_auth_with_the_csrf_token_is_accepted(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/admin/login/")  # any page with a form sets the CSRF cookie
    token = client.cookies["csrftoken"].value

    response = client.post(URL, HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 201


def test_the_ticket_endpoint_is_throttled_with_429_and_retry_after(api_client, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "realtime_ticket": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    statuses = [api_client.post(URL).status_code for _ in range(2)]
    refused = api_client.post(URL)

    assert statuses == [201, 201]
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["retry"] is True
    assert 0 < error["retry_after"] <= 120
    assert 1 <= int(refused["Retry-After"]) <= 120
    assert int(refused["Retry-After"]) >= error["retry_after"]


def test_the_ticket_throttle_is_per_user(user, settings):
    from tests.factories import UserFactory

    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "realtime_ticket": "1/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    first, second = APIClient(), APIClient()
    first.force_authenticate(user)
    second.force_authenticate(UserFactory())

    assert first.post(URL).status_code == 201
    assert second.post(URL).status_code == 201
    assert first.post(URL).status_code == 429


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_405_method_not_allowed(api_client, method):
    response = getattr(api_client, method)(URL)

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
