"""Staff controls across two real Daphne workers (issue 7's acceptance, the controls part).

A staff announcement made on one worker reaches users connected to both live, and a user who
connects afterwards; an app switched off refuses new sockets on both workers (4503), closes the
ones open, and accepts them again when switched on; disconnecting a user closes their sockets
on both; the connection counts cover both workers.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from monitoring.loadtest.workers import Worker
from tests.system.client import (
    RealtimeClient,
    attempt_handshake,
    fetch_ticket,
    http_request,
    ws_url,
)
from tests.system.conftest import Account

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

PRESENCE = "/ws/presence/"
NOTIFICATIONS = "/ws/comments/notifications/"
# Workers reload the control state by themselves every REALTIME_CONTROL_REFRESH_SECONDS (5);
# the control message makes it sooner. A bound, not a speed target.
TAKES_EFFECT_WITHIN = 10


@pytest.fixture
def admin(make_account) -> Account:
    return make_account(is_staff=True, is_superuser=True)


@pytest.fixture
def carol(make_account) -> Account:
    return make_account()


async def rest(worker: Worker, path: str, account: Account, method="GET", body=None):
    status, raw, _ = await asyncio.to_thread(
        http_request, worker.http_url(path), method=method, token=account.token, json_body=body
    )
    return status, json.loads(raw) if raw else None


async def connect(worker: Worker, account: Account, path: str = PRESENCE) -> RealtimeClient:
    ticket = await fetch_ticket(worker.http_url(), account.token)
    return await RealtimeClient.connect(worker.ws_url(path), ticket=ticket)


async def refused_code(worker: Worker, account: Account, path: str = PRESENCE) -> int | None:
    ticket = await fetch_ticket(worker.http_url(), account.token)
    outcome = await attempt_handshake(ws_url(worker.ws_url(path), ticket))
    return outcome.close_code


async def test_an_announcement_reaches_users_on_both_workers_live_and_on_connect(
    worker_a, worker_b, admin, alice, bob, carol
):
    on_a = await connect(worker_a, alice)
    on_b = await connect(worker_b, bob, NOTIFICATIONS)
    body = {"text": "Maintenance at 22:00 UTC", "level": "warning", "expires_in": 600}

    status, made = await rest(worker_a, "/api/monitoring/announcements/", admin, "POST", body)
    try:
        heard_a = await on_a.next_event("monitoring.announcement.published")
        heard_b = await on_b.next_event("monitoring.announcement.published")
        latecomer = await connect(worker_b, carol)
        on_connect = await latecomer.next_event("monitoring.announcement.published")
    finally:
        await rest(worker_b, f"/api/monitoring/announcements/{made['id']}/withdraw/", admin, "POST")
    withdrawn = await on_a.next_event("monitoring.announcement.withdrawn")

    assert status == 201
    assert heard_a["data"]["text"] == heard_b["data"]["text"] == "Maintenance at 22:00 UTC"
    assert heard_a["data"]["id"] == heard_b["data"]["id"] == on_connect["data"]["id"] == made["id"]
    assert withdrawn["data"] == {"id": made["id"]}
    for client in (on_a, on_b, latecomer):
        await client.close()


async def test_an_app_switched_off_refuses_sockets_on_both_workers_until_switched_on(
    worker_a, worker_b, admin, alice, bob
):
    open_a = await connect(worker_a, alice)
    open_b = await connect(worker_b, bob)
    other_app = await connect(worker_b, alice, NOTIFICATIONS)

    status, switch = await rest(
        worker_a, "/api/monitoring/apps/presence/", admin, "PATCH",
        {"enabled": False, "reason": "system test"},
    )  # fmt: skip
    try:
        closed = [await c.wait_closed(TAKES_EFFECT_WITHIN) for c in (open_a, open_b)]
        refused = [await refused_code(w, bob) for w in (worker_a, worker_b)]
        rest_still_works = await rest(worker_b, "/api/presence/users/?ids=1", alice)
    finally:
        await rest(worker_b, "/api/monitoring/apps/presence/", admin, "PATCH", {"enabled": True})
    reopened = []
    for worker, account in ((worker_a, alice), (worker_b, bob)):
        reopened.append(await connect_when_on(worker, account))

    assert status == 200 and switch["enabled"] is False
    assert closed == [4503, 4503]
    assert refused == [4503, 4503]
    assert rest_still_works[0] == 200
    assert other_app.close_code is None  # comments was not switched off
    assert [c.welcome["user"]["id"] for c in reopened] == [alice.user_id, bob.user_id]
    for client in (other_app, *reopened):
        await client.close()


async def connect_when_on(worker: Worker, account: Account) -> RealtimeClient:
    """The switch back on reaches every worker within the refresh interval: retry until then."""
    deadline = time.monotonic() + TAKES_EFFECT_WITHIN
    while True:
        try:
            return await connect(worker, account)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def test_a_disconnected_user_loses_their_sockets_on_both_workers(
    worker_a, worker_b, admin, alice, bob
):
    alice_a = await connect(worker_a, alice)
    alice_b = await connect(worker_b, alice, NOTIFICATIONS)
    bob_b = await connect(worker_b, bob)

    status, _ = await rest(
        worker_a, f"/api/monitoring/users/{alice.user_id}/disconnect/", admin, "POST"
    )
    codes = [await c.wait_closed(TAKES_EFFECT_WITHIN) for c in (alice_a, alice_b)]
    await asyncio.sleep(0.5)

    assert status == 202
    assert codes == [4401, 4401]
    assert bob_b.close_code is None
    await bob_b.close()


async def test_connection_counts_cover_both_workers(worker_a, worker_b, admin, alice, bob):
    clients = [
        await connect(worker_a, alice),
        await connect(worker_b, bob),
        await connect(worker_b, alice, NOTIFICATIONS),
    ]
    workers = {
        f":{worker_a.pid}": {"presence": 1},
        f":{worker_b.pid}": {"comments": 1, "presence": 1},
    }

    deadline = time.monotonic() + TAKES_EFFECT_WITHIN
    while True:  # each worker reports every REALTIME_CONTROL_REPORT_SECONDS
        status, overview = await rest(worker_a, "/api/monitoring/connections/", admin)
        reported = {
            suffix: report["apps"]
            for report in overview["workers"]
            for suffix in workers
            if report["worker"].endswith(suffix)
        }
        if reported == workers or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)

    assert status == 200
    assert reported == workers
    assert overview["apps"]["presence"] >= 2 and overview["apps"]["comments"] >= 1
    for client in clients:
        await client.close()
