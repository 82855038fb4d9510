"""The admin's event log: staff look and filter; nobody adds, changes or deletes there."""

from __future__ import annotations

import pytest

from monitoring.events import record
from monitoring.models import EventKind, Severity, SystemEvent
from tests.factories import UserFactory


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_list_shows_and_filters_events(admin_client):
    record(EventKind.LOGIN_FAILED, Severity.WARNING, ip="192.0.2.7", details={"username": "x"})
    record(EventKind.ANNOUNCEMENT, Severity.INFO)

    everything = admin_client.get("/admin/monitoring/systemevent/")
    failed = admin_client.get("/admin/monitoring/systemevent/?kind__exact=login_failed")
    searched = admin_client.get("/admin/monitoring/systemevent/?q=192.0.2.7")

    assert everything.status_code == failed.status_code == searched.status_code == 200
    assert "192.0.2.7" in failed.content.decode()
    assert len(failed.context["cl"].result_list) == 1
    assert len(searched.context["cl"].result_list) == 1


def test_events_are_read_only(admin_client):
    event = record(EventKind.ANNOUNCEMENT, Severity.INFO)

    add = admin_client.get("/admin/monitoring/systemevent/add/")
    change = admin_client.post(
        f"/admin/monitoring/systemevent/{event.pk}/change/", {"kind": "login"}
    )
    delete = admin_client.post(f"/admin/monitoring/systemevent/{event.pk}/delete/", {"post": "yes"})

    assert add.status_code == 403
    assert change.status_code == 403
    assert delete.status_code == 403
    assert SystemEvent.objects.get(pk=event.pk).kind == "announcement"
