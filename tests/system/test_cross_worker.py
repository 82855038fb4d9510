"""Two real Daphne workers sharing PostgreSQL and Redis: what one worker does, the other honours.

Signals, tickets and rate limits must hold across processes (DESIGN sections 2, 4, 8), and the
handshake must let no one in without credentials or from a foreign Origin (RELIABILITY S1, S3).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import os
import time
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from monitoring import buffered
from monitoring.loadtest.workers import Worker
from tests.factories import PASSWORD
from tests.system.client import (
    ORIGIN,
    RealtimeClient,
    attempt_handshake,
    fetch_ticket,
    http_request,
    pipelined_handshake,
    ws_url,
)
from tests.system.conftest import SIGNAL_RATE_LIMIT, TICKET_RATE_LIMIT, Account

# Every test here talks to workers that read and write the test database, so each one is
# transactional (committed data, flushed afterwards) even when it creates no rows itself.
pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
]

PRESENCE = "/ws/presence/"
CLOSE_UNAUTHENTICATED = 4401


def unique_room() -> str:
    return f"lobby.sys-{uuid.uuid4().hex[:12]}"


async def open_client(worker: Worker, account: Account) -> RealtimeClient:
    ticket = await fetch_ticket(worker.http_url(), account.token)
    client = await RealtimeClient.connect(worker.ws_url(PRESENCE), ticket=ticket)
    assert client.welcome["user"]["id"] == account.user_id, client.welcome
    return client


async def test_signal_crosses_workers_in_both_directions(
    worker_a: Worker, worker_b: Worker, alice: Account, bob: Account
) -> None:
    room = unique_room()
    on_a = await open_client(worker_a, alice)
    on_b = await open_client(worker_b, bob)
    try:
        # The epoch lives in Redis: every worker announces the same one.
        assert on_a.welcome["epoch"] == on_b.welcome["epoch"]
        assert (await on_a.ack("presence.room.join", {"room": room}))["room"] == room
        assert (await on_b.ack("presence.room.join", {"room": room}))["room"] == room

        for sender, receiver, account in ((on_b, on_a, bob), (on_a, on_b, alice)):
            payload = {"nonce": uuid.uuid4().hex}
            await sender.ack("presence.signal.send", {"room": room, "data": payload})
            for client in (receiver, sender):  # every member, the sender included
                event = await client.next_event("presence.signal.received", timeout=5)
                assert event["data"] == {
                    "room": room,
                    "from": {"id": account.user_id, "username": account.username},
                    "data": payload,
                }
    finally:
        await on_a.close()
        await on_b.close()


async def test_room_leave_stops_delivery_across_workers(
    worker_a: Worker, worker_b: Worker, alice: Account, bob: Account
) -> None:
    left, kept = unique_room(), unique_room()
    on_a = await open_client(worker_a, alice)
    on_b = await open_client(worker_b, bob)
    try:
        for client in (on_a, on_b):
            for room in (left, kept):
                await client.ack("presence.room.join", {"room": room})
        assert (await on_b.ack("presence.room.leave", {"room": left})) == {"room": left}

        await on_a.ack("presence.signal.send", {"room": left, "data": {"n": 1}})
        await on_a.ack("presence.signal.send", {"room": kept, "data": {"n": 2}})

        # Published after the first signal on the same Redis connection: once it is here, the
        # first one would have been too.
        event = await on_b.next_event("presence.signal.received", timeout=5)
        assert event["data"]["room"] == kept, event
        assert not [f for f in on_b.inbox if f["type"] == "presence.signal.received"]
        reply = await on_b.request("presence.signal.send", {"room": left, "data": {}})
        assert reply["error"]["code"] == "invalid", reply
    finally:
        await on_a.close()
        await on_b.close()


async def test_handshake_without_credentials_is_closed_4401(worker_a: Worker) -> None:
    heartbeat = json.dumps({"id": "h1", "type": "session.heartbeat", "data": {}})
    await asyncio.sleep(buffered.FLUSH_SECONDS + 0.5)  # earlier tests' frames counted first
    before = await worker_metrics(worker_a)
    outcome = await attempt_handshake(worker_a.ws_url(PRESENCE), send=heartbeat)
    after = await worker_metrics(worker_a)

    assert outcome.http_status is None
    assert outcome.close_code == CLOSE_UNAUTHENTICATED
    assert outcome.frames == []  # no welcome, and the heartbeat was not answered
    refused = 'collab_ws_connects_total{app="presence",outcome="unauthenticated"}'
    assert after.get(refused, 0) == before.get(refused, 0) + 1
    processed = {k: v for k, v in after.items() if k.startswith("collab_ws_messages_in_total")}
    assert processed == {k: v for k, v in before.items() if k in processed}


async def test_frames_pipelined_before_refusal_are_not_processed(
    worker_a: Worker, worker_b: Worker, alice: Account
) -> None:
    room = unique_room()
    observer = await open_client(worker_b, alice)
    try:
        await observer.ack("presence.room.join", {"room": room})
        # The join's own count reaches the shared metrics files up to FLUSH_SECONDS later
        # (monitoring/buffered.py): it must be in "before", not mistaken for a processed frame.
        await asyncio.sleep(buffered.FLUSH_SECONDS + 0.5)
        commands = [
            {"id": "j", "type": "presence.room.join", "data": {"room": room}},
            {"id": "s", "type": "presence.signal.send", "data": {"room": room, "data": {}}},
            {"id": "h", "type": "session.heartbeat", "data": {}},
        ]
        before = await worker_metrics(worker_a)
        status, frames = await pipelined_handshake(
            worker_a.host, worker_a.port, PRESENCE, [json.dumps(c) for c in commands]
        )
        after = await worker_metrics(worker_a)

        assert status.startswith(b"HTTP/1.1 101"), status
        assert frames == [(0x8, CLOSE_UNAUTHENTICATED.to_bytes(2, "big"))], frames
        processed = {k for k in after if k.startswith("collab_ws_messages_in_total")}
        assert {k: after[k] for k in processed} == {k: before.get(k) for k in processed}
        # Nothing reached the room either: the observer's own signal is the first it hears.
        await observer.ack("presence.signal.send", {"room": room, "data": {"marker": True}})
        event = await observer.next_event("presence.signal.received", timeout=5)
        assert event["data"]["data"] == {"marker": True}, event
    finally:
        await observer.close()


@pytest.mark.parametrize(
    "ticket",
    ["A" * 43, "not a ticket!", "x", "A" * 500],
    ids=["unknown", "bad-characters", "too-short", "too-long"],
)
async def test_handshake_with_bad_ticket_is_closed_4401(worker_b: Worker, ticket: str) -> None:
    heartbeat = json.dumps({"id": "h1", "type": "session.heartbeat", "data": {}})
    outcome = await attempt_handshake(ws_url(worker_b.ws_url(PRESENCE), ticket), send=heartbeat)

    assert outcome.http_status is None
    assert outcome.close_code == CLOSE_UNAUTHENTICATED
    assert outcome.frames == []


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        ORIGIN.replace("http://", "https://"),  # scheme
        ORIGIN + ":8080",  # port
        ORIGIN + ".evil.com",  # suffix
        ORIGIN.replace("://", "://evil"),  # prefix
    ],
)
async def test_foreign_origin_is_refused_with_403(
    worker_a: Worker, alice: Account, origin: str
) -> None:
    # A valid ticket: the Origin check alone must refuse the handshake.
    ticket = await fetch_ticket(worker_a.http_url(), alice.token)
    outcome = await attempt_handshake(ws_url(worker_a.ws_url(PRESENCE), ticket), origin=origin)

    assert outcome.http_status == 403, outcome
    # Refused before authentication: a cross-site page cannot burn the user's tickets.
    client = await RealtimeClient.connect(worker_a.ws_url(PRESENCE), ticket=ticket)
    await client.close()


async def test_missing_origin_is_refused_with_403(worker_b: Worker, alice: Account) -> None:
    ticket = await fetch_ticket(worker_b.http_url(), alice.token)
    outcome = await attempt_handshake(ws_url(worker_b.ws_url(PRESENCE), ticket), origin=None)

    assert outcome.http_status == 403, outcome


async def test_ticket_from_worker_a_works_on_worker_b_once(
    worker_a: Worker, worker_b: Worker, alice: Account
) -> None:
    ticket = await fetch_ticket(worker_a.http_url(), alice.token)

    client = await RealtimeClient.connect(worker_b.ws_url(PRESENCE), ticket=ticket)
    try:
        assert client.welcome["user"] == {"id": alice.user_id, "username": alice.username}
        await client.ack("session.heartbeat")
    finally:
        await client.close()

    for worker in (worker_b, worker_a):
        outcome = await attempt_handshake(ws_url(worker.ws_url(PRESENCE), ticket))
        assert outcome.close_code == CLOSE_UNAUTHENTICATED, (worker.port, outcome)
        assert outcome.frames == []


async def test_ticket_endpoint_refuses_missing_or_bad_token(workers: list[Worker]) -> None:
    for worker in workers:
        for token in (None, "0" * 40):
            status, body, _ = await asyncio.to_thread(
                http_request,
                worker.http_url("/api/realtime/tickets/"),
                method="POST",
                token=token,
            )
            assert status == 401, (worker.port, token, status, body[:300])
            assert json.loads(body)["error"]["code"] == "unauthenticated"
            assert "ticket" not in json.loads(body)


async def test_session_cookie_from_worker_a_opens_socket_on_worker_b(
    worker_a: Worker, worker_b: Worker, staff: Account
) -> None:
    cookies = await asyncio.to_thread(admin_login, worker_a, staff)

    client = await RealtimeClient.connect(
        worker_b.ws_url(PRESENCE), headers={"Cookie": f"sessionid={cookies['sessionid']}"}
    )
    try:
        assert client.welcome["user"]["id"] == staff.user_id
    finally:
        await client.close()
    # The same session may also ask for a ticket, on either worker, but only with its CSRF token.
    session = f"sessionid={cookies['sessionid']}; csrftoken={cookies['csrftoken']}"
    url = worker_b.http_url("/api/realtime/tickets/")
    status, body, _ = await asyncio.to_thread(
        http_request, url, method="POST", headers={"Cookie": session}
    )
    assert status == 403, body
    assert json.loads(body)["error"]["code"] == "forbidden"
    status, body, _ = await asyncio.to_thread(
        http_request,
        url,
        method="POST",
        headers={"Cookie": session, "X-CSRFToken": cookies["csrftoken"]},
    )
    assert status == 201, body
    ticket = json.loads(body)["ticket"]
    client = await RealtimeClient.connect(worker_a.ws_url(PRESENCE), ticket=ticket)
    await client.close()


async def test_bad_json_gets_error_frame_and_socket_stays_open(
    worker_b: Worker, alice: Account
) -> None:
    client = await open_client(worker_b, alice)
    try:
        await client.send_raw('{"id": "j1", "type": "session.heartbeat", "data": ')

        error = await client.next_frame("error", timeout=5)
        assert error["id"] is None  # the id of unparsable text is unknown
        assert error["error"]["code"] == "bad_json"
        assert error["error"]["retry"] is False
        reply = await client.request("session.heartbeat")
        assert reply["type"] == "ack", reply
        assert client.close_code is None
    finally:
        await client.close()


async def test_oversized_frame_gets_too_large_and_socket_stays_open(
    worker_a: Worker, alice: Account
) -> None:
    client = await open_client(worker_a, alice)
    try:
        padding = "x" * 65536  # the app limit is 64 KiB; Daphne's own limit is 1 MiB
        await client.send_raw(
            json.dumps({"id": "big", "type": "session.heartbeat", "data": {"p": padding}})
        )

        error = await client.next_frame("error", timeout=5)
        assert error["error"]["code"] == "too_large", error
        assert (await client.request("session.heartbeat"))["type"] == "ack"
    finally:
        await client.close()


async def test_rate_limit_holds_across_workers(
    worker_a: Worker, worker_b: Worker, alice: Account, bob: Account
) -> None:
    room = unique_room()
    attempts = SIGNAL_RATE_LIMIT * 2
    on_a = await open_client(worker_a, alice)
    on_b = await open_client(worker_b, alice)
    observer = await open_client(worker_b, bob)
    try:
        for client in (on_a, on_b, observer):
            await client.ack("presence.room.join", {"room": room})
        # The sliding window weighs the previous minute's hits: stay inside one fixed window
        # (the autouse fixture cleared the counters) and the limit is exact, not limit + 1.
        await _wait_for_fresh_window(period=60.0, needed=5.0)

        replies = []
        for n in range(attempts):
            client = (on_a, on_b)[n % 2]
            replies.append(
                await client.request("presence.signal.send", {"room": room, "data": {"n": n}})
            )

        acked = [n for n, reply in enumerate(replies) if reply["type"] == "ack"]
        assert acked == list(range(SIGNAL_RATE_LIMIT)), replies
        for reply in replies[SIGNAL_RATE_LIMIT:]:
            assert reply["type"] == "error", reply
            assert reply["error"]["code"] == "rate_limited", reply
            assert reply["error"]["retry"] is True
            assert reply["error"]["retry_after"] > 0

        # Only acked signals went out. Bob's marker is published after all of them on the same
        # group, so once it arrives every earlier signal has arrived too.
        await observer.ack("presence.signal.send", {"room": room, "data": {"marker": True}})
        for client in (on_a, on_b, observer):
            received = await _signals_until_marker(client)
            assert received == list(range(SIGNAL_RATE_LIMIT)), (client.welcome, received)
    finally:
        for client in (on_a, on_b, observer):
            await client.close()


async def test_rate_limit_holds_for_a_concurrent_burst_on_both_workers(
    worker_a: Worker, worker_b: Worker, alice: Account, bob: Account
) -> None:
    room = unique_room()
    on_a = await open_client(worker_a, alice)
    on_b = await open_client(worker_b, alice)
    observer = await open_client(worker_a, bob)
    try:
        for client in (on_a, on_b, observer):
            await client.ack("presence.room.join", {"room": room})
        await _wait_for_fresh_window(period=60.0, needed=5.0)

        # Every frame in flight at once, half through each worker: the shared counter is
        # incremented atomically, so concurrency must not let one extra through.
        replies = await asyncio.gather(
            *(
                (on_a, on_b)[n % 2].request(
                    "presence.signal.send", {"room": room, "data": {"n": n}}
                )
                for n in range(SIGNAL_RATE_LIMIT * 3)
            )
        )

        acked = sorted(n for n, reply in enumerate(replies) if reply["type"] == "ack")
        refused = [reply for reply in replies if reply["type"] != "ack"]
        assert len(acked) == SIGNAL_RATE_LIMIT, replies
        assert {reply["error"]["code"] for reply in refused} == {"rate_limited"}, refused
        await observer.ack("presence.signal.send", {"room": room, "data": {"marker": True}})
        for client in (on_a, on_b, observer):
            assert sorted(await _signals_until_marker(client)) == acked
    finally:
        for client in (on_a, on_b, observer):
            await client.close()


async def test_ticket_endpoint_rate_limit_holds_across_workers(
    worker_a: Worker, worker_b: Worker, alice: Account
) -> None:
    await _wait_for_fresh_window(period=60.0, needed=5.0)
    answers = []
    for n in range(TICKET_RATE_LIMIT * 2):
        worker = (worker_a, worker_b)[n % 2]
        answers.append(
            await asyncio.to_thread(
                http_request,
                worker.http_url("/api/realtime/tickets/"),
                method="POST",
                token=alice.token,
            )
        )

    statuses = [status for status, _, _ in answers]
    assert statuses == [201] * TICKET_RATE_LIMIT + [429] * TICKET_RATE_LIMIT, statuses
    for _, body, headers in answers[TICKET_RATE_LIMIT:]:
        assert json.loads(body)["error"]["code"] == "rate_limited"
        assert int(headers["Retry-After"]) >= 1


async def test_readiness_checks_pass_on_both_workers(workers: list[Worker]) -> None:
    for worker in workers:
        status, body, _ = await asyncio.to_thread(http_request, worker.http_url("/readyz"))
        checks = json.loads(body)["checks"]
        assert status == 200, checks
        assert set(checks) == {"database", "redis", "channel_layer"}, checks


def test_workers_recover_when_their_database_connections_are_killed(
    workers: list[Worker], alice: Account
) -> None:
    """A PostgreSQL restart or an idle-connection reaper leaves dead connections in each
    worker's pool; the next requests must get fresh ones, not a 500 (RELIABILITY F6, F8)."""
    for worker in workers:  # fill the pools: concurrent REST requests each take a connection
        url = worker.http_url(f"/api/presence/users/?ids={alice.user_id}")
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _, u=url: http_request(u, token=alice.token), range(16)))
        assert [status for status, _, _ in answers] == [200] * 16
    ports = [port for worker in workers for port in postgres_client_ports(worker.pid)]
    # Several dead connections per pool: psycopg_pool's backoff between failed checks (1 s,
    # 2 s, 4 s...) would make recovery slower than the readiness timeout (config/realtime/apps).
    assert len(ports) > len(workers), "the workers hold too few PostgreSQL connections to kill"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND client_port = ANY(%s)",
            [ports],
        )
        assert cursor.fetchone()[0] == len(ports)

    for worker in workers:
        for _ in range(5):  # more than the pool holds
            status, body, _ = http_request(worker.http_url("/readyz"))
            assert status == 200, (worker.port, body)
        status, body, _ = http_request(
            worker.http_url("/api/realtime/tickets/"), method="POST", token=alice.token
        )
        assert status == 201, (worker.port, status, body[:300])


# --- helpers ---------------------------------------------------------------------------


async def worker_metrics(worker: Worker) -> dict[str, float]:
    """This worker's Prometheus samples, ``{'name{labels}': value}``."""
    status, body, _ = await asyncio.to_thread(http_request, worker.http_url("/metrics"))
    assert status == 200, status
    samples = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def admin_login(worker: Worker, account: Account) -> dict[str, str]:
    """Sign in through the admin login form; the session and CSRF cookies."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(worker.http_url("/admin/login/"), timeout=10) as response:
        assert response.status == 200
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode(
        {
            "username": account.username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": csrf,
            "next": "/admin/",
        }
    ).encode()
    with opener.open(worker.http_url("/admin/login/"), data=form, timeout=10) as response:
        assert response.status == 200, response.status
    cookies = {c.name: c.value for c in jar}
    assert "sessionid" in cookies, f"admin login did not sign in: {cookies}"
    return cookies


def postgres_client_ports(pid: int, server_port: int = 5432) -> list[int]:
    """Local ports of this process's TCP connections to PostgreSQL, from /proc (Linux)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                ports.append(int(local.rsplit(":", 1)[1], 16))
    return ports


async def _wait_for_fresh_window(*, period: float, needed: float) -> None:
    remaining = period - time.time() % period
    if remaining < needed:
        await asyncio.sleep(remaining + 0.05)


async def _signals_until_marker(client: RealtimeClient) -> list[int]:
    received = []
    while True:
        event = await client.next_event("presence.signal.received", timeout=5)
        if event["data"]["data"].get("marker"):
            return received
        received.append(event["data"]["data"]["n"])
