"""The admin's event log: staff look and filter; nobody adds, changes or deletes there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from monitoring.events import record
from monitoring.models import Announcement, AppSwitch, EventKind, Severity, SystemEvent
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


# --- staff controls ----------------------------------------------------------------------------
def test_switches_are_listed_for_every_app_and_change_through_the_audited_service(admin_client):
    AppSwitch.objects.all().delete()  # a flushed table still lists every app

    listed = admin_client.get("/admin/monitoring/appswitch/")
    forms = AppSwitch.objects.get(app="forms")
    changed = admin_client.post(
        f"/admin/monitoring/appswitch/{forms.pk}/change/", {"reason": "upgrade"}
    )  # "enabled" unticked: off
    acted = admin_client.post(
        "/admin/monitoring/appswitch/",
        {"action": "switch_on", "_selected_action": [forms.pk]},
    )

    assert listed.status_code == 200
    assert sorted(s.app for s in listed.context["cl"].result_list) == [
        "collab", "comments", "forms", "presence",
    ]  # fmt: skip
    assert changed.status_code == 302
    assert acted.status_code == 302
    actions = [
        e.details["action"] for e in SystemEvent.objects.filter(kind="staff_action").order_by("id")
    ]
    assert actions == ["app_disabled", "app_enabled"]
    assert AppSwitch.objects.get(app="forms").enabled is True


def test_an_announcement_made_in_the_admin_is_recorded_and_then_read_only(admin_client):
    expires = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    date, time = expires.split(" ")
    made = admin_client.post(
        "/admin/monitoring/announcement/add/",
        {"text": "Upgrade tonight", "level": "info", "expires_at_0": date, "expires_at_1": time},
    )
    announcement = Announcement.objects.get()
    edited = admin_client.post(
        f"/admin/monitoring/announcement/{announcement.pk}/change/", {"text": "changed"}
    )
    past = admin_client.post(
        "/admin/monitoring/announcement/add/",
        {"text": "late", "level": "info", "expires_at_0": "2000-01-01", "expires_at_1": "00:00"},
    )
    withdrawn = admin_client.post(
        "/admin/monitoring/announcement/",
        {"action": "withdraw", "_selected_action": [announcement.pk]},
    )

    assert made.status_code == 302, made.content
    assert SystemEvent.objects.filter(kind="announcement").count() == 1
    assert edited.status_code == 302
    assert past.status_code == 200  # the form again, with its error
    assert "must expire in the future" in past.content.decode()
    assert withdrawn.status_code == 302
    announcement.refresh_from_db()
    assert announcement.text == "Upgrade tonight" and announcement.withdrawn_at is not None
    assert Announcement.objects.count() == 1


def test_the_live_connections_page_counts_and_disconnects_a_user(admin_client):
    target = UserFactory(username="mallory")

    page = admin_client.get("/admin/monitoring/liveconnections/")
    posted = admin_client.post("/admin/monitoring/liveconnections/", {"username": "mallory"})
    unknown = admin_client.post(
        "/admin/monitoring/liveconnections/", {"username": "nobody"}, follow=True
    )

    assert page.status_code == 200
    assert "No worker has an open socket." in page.content.decode()
    assert 'name="username"' in page.content.decode()
    assert posted.status_code == 302
    event = SystemEvent.objects.get(kind="staff_action")
    assert event.details == {"action": "user_disconnected", "user_id": target.pk,
                             "username": "mallory"}  # fmt: skip
    assert "No user named" in unknown.content.decode()


def test_staff_who_may_only_look_see_connections_but_cannot_disconnect(client, db):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="monitoring", codename="view_liveconnections"
        )
    )
    target = UserFactory()
    client.force_login(viewer)

    page = client.get("/admin/monitoring/liveconnections/")
    posted = client.post("/admin/monitoring/liveconnections/", {"username": target.username})

    assert page.status_code == 200
    assert 'name="username"' not in page.content.decode()
    assert posted.status_code == 403
    assert not SystemEvent.objects.filter(kind="staff_action").exists()
