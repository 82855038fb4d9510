"""Public operational endpoints: /healthz, /readyz, /metrics, plus schema and admin pages."""

from __future__ import annotations

import socket

import pytest
from django.test import Client

from config.realtime import kv


def test_healthz_is_200_ok(db):
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


# Readiness runs its database check through database_sync_to_async, which with the sync test
# client lands on this thread: a test wrapped in a transaction would be checking that instead.
def test_readyz_checks_database_redis_and_channel_layer(transactional_db):
    response = Client().get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "channel_layer"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert check["ms"] >= 0


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_readyz_is_503_when_redis_is_unreachable_and_names_only_the_failure(
    transactional_db, settings
):
    # A real endpoint nobody listens on, not a mock: the shared store cannot connect.
    port = unused_port()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    kv.reset_store()

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert body["checks"]["database"]["ok"] is True
    assert "127.0.0.1" not in response.content.decode()
    assert str(port) not in response.content.decode()


@pytest.mark.parametrize("url", ["/healthz", "/readyz"])
def test_health_endpoints_answer_only_get(db, url):
    assert Client().post(url).status_code == 405


def test_metrics_are_exposed_in_prometheus_format(db):
    response = Client().get("/metrics")

    assert response.status_code == 200
    text = response.content.decode()
    assert "# TYPE collab_ws_connections gauge" in text
    assert "collab_ws_connects_total" in text
    assert "collab_rate_limited_total" in text


def test_the_openapi_schema_is_served(db):
    response = Client().get("/api/schema/")

    assert response.status_code == 200
    assert b"/api/realtime/tickets/" in response.content


def test_the_api_docs_page_is_served(db):
    assert Client().get("/api/docs/").status_code == 200


def test_the_admin_login_page_is_served(db):
    response = Client().get("/admin/login/")

    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content


def test_the_admin_requires_a_staff_login(db):
    response = Client().get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
