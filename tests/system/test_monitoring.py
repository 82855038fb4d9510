"""System events across two real Daphne workers (issue 7's acceptance, the events part).

A burst of failed logins on one worker raises a security alert that a staff client on the
other worker receives live; a non-staff user is refused on the staff socket and REST list.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import urllib.parse
import urllib.request

import pytest

from monitoring.loadtest.workers import Worker
from tests.system.client import (
    RealtimeClient,
    attempt_handshake,
    fetch_ticket,
    http_request,
    ws_url,
)

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

EVENTS = "/ws/monitoring/events/"
FAILED_LOGINS = 5  # MONITORING_ALERT_FAILED_LOGINS_PER_USER's default


def fail_login(worker: Worker, username: str) -> int:
    """One failed sign-in through the admin form (a wrong password)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(worker.http_url("/admin/login/"), timeout=10) as response:
        assert response.status == 200
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode(
        {"username": username, "password": "wrong", "csrfmiddlewaretoken": csrf}
    ).encode()
    with opener.open(worker.http_url("/admin/login/"), data=form, timeout=10) as response:
        return response.status


async def test_a_failed_login_burst_on_one_worker_alerts_staff_on_the_other(
    worker_a, worker_b, staff, bob
):
    ticket = await fetch_ticket(worker_b.http_url(), staff.token)
    watcher = await RealtimeClient.connect(worker_b.ws_url(EVENTS), ticket=ticket)
    await watcher.next_event("monitoring.events.ready")

    statuses = [await asyncio.to_thread(fail_login, worker_a, bob.username) for _ in range(5)]

    await watcher.wait_until(
        lambda: any(
            f["type"] == "monitoring.event.recorded" and f["data"]["kind"] == "security_alert"
            for f in watcher.inbox
        ),
        timeout=10,
    )
    alerts = [
        f["data"]
        for f in watcher.inbox
        if f["type"] == "monitoring.event.recorded" and f["data"]["kind"] == "security_alert"
    ]
    failed = [
        f
        for f in watcher.inbox
        if f["type"] == "monitoring.event.recorded" and f["data"]["kind"] == "login_failed"
    ]
    assert statuses == [200] * FAILED_LOGINS  # the form shown again, with its error
    assert len(failed) == FAILED_LOGINS
    assert len(alerts) == 1
    assert alerts[0]["severity"] in ("warning", "critical")
    assert bob.username in json.dumps(alerts[0]["details"])
    await watcher.close()


async def test_non_staff_are_refused_on_the_staff_socket_and_the_rest_list(
    worker_a, worker_b, alice
):
    ticket = await fetch_ticket(worker_a.http_url(), alice.token)
    refused = await attempt_handshake(ws_url(worker_a.ws_url(EVENTS), ticket))
    status, _, _ = await asyncio.to_thread(
        http_request, worker_b.http_url("/api/monitoring/events/"), token=alice.token
    )

    assert (refused.close_code, refused.frames) == (4403, [])
    assert status == 403
