"""S10 of RELIABILITY.md: what a client sends in confidence never reaches a log.

A run through nginx (deploy/nginx/collab.conf) in front of two workers of this module signs in
with the login form (and fails once), mints tickets with a DRF token, opens sockets with a ticket
and with the session cookie, sends signals, an op and a comment, and sends frames the server
refuses. Then every log is searched: both workers' output (Daphne's access lines and the app's
log records, unbuffered), nginx's access and error logs, the system events the app stored (the
workers record socket events here), and, for what any test of the session could leak (the
factories' password, a session cookie, a token header), the shared workers' logs -- under
``make reliability`` this module runs after the fault tests that use them.

Nothing may be found but tickets, and only in nginx's access log (the handshake's query string),
each one already spent and valid for at most 30 s when issued; a ticket minted and never used
must not be found at all.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from config.errors import CLOSE_UNAUTHENTICATED
from monitoring.loadtest.workers import Worker, daphne_workers, free_port
from monitoring.models import EventKind, SystemEvent
from tests.factories import PASSWORD
from tests.system.client import RealtimeClient, attempt_handshake, http_request, ws_url
from tests.system.conftest import Account, worker_env
from tests.system.faults.scale import record, scaled
from tests.system.test_nginx import Nginx, answers, render_main, render_site

pytestmark = [
    pytest.mark.system,
    pytest.mark.full_scale,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(scaled(ci=120, full=300)),
]

TICKET_TTL_MAX = 30
# What any test's secrets look like, for the logs of workers this module did not drive.
GENERIC = {
    "password": re.compile(re.escape(PASSWORD)),
    "session cookie": re.compile(r"sessionid=\w{8,}"),
    "token header": re.compile(r"Token [0-9a-f]{40}"),
}
TICKET_IN_QUERY = re.compile(r"ticket=([A-Za-z0-9_-]{20,128})")


@pytest.fixture(scope="module")
def leak_workers(django_db_setup: None, tmp_path_factory) -> Iterator[list[Worker]]:
    env = worker_env() | {
        # Every line written at once (Daphne's access lines go to a buffered stdout otherwise),
        # and socket events recorded, so the stored events are searched too.
        "PYTHONUNBUFFERED": "1",
        "MONITORING_MAX_PENDING_EVENTS": "100",
    }
    with daphne_workers(2, env, log_dir=tmp_path_factory.mktemp("s10-daphne")) as workers:
        yield workers


@pytest.fixture(scope="module")
def proxy(leak_workers: list[Worker], tmp_path_factory) -> Iterator[Nginx]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(binary).exists(), "nginx is needed (.ci/services installs it)"
    prefix = tmp_path_factory.mktemp("s10-nginx")
    server = Nginx(prefix, free_port())
    (prefix / "collab.conf").write_text(render_site(leak_workers, server.port))
    (prefix / "nginx.conf").write_text(render_main(prefix))
    server.process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")], stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while not answers(server.http_url("/healthz")):
            assert server.process.poll() is None, server.process.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        yield server
    finally:
        server.process.terminate()
        server.process.wait(10)


def login(proxy: Nginx, username: str, password: str) -> dict[str, str]:
    """The login form, as a browser fills it in; the cookies it ends with."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    url = proxy.http_url("/accounts/login/")
    with opener.open(url, timeout=10) as response:
        assert response.status == 200
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    form = {"username": username, "password": password, "csrfmiddlewaretoken": csrf}
    with opener.open(url, data=urllib.parse.urlencode(form).encode(), timeout=10) as response:
        assert response.status == 200
    return {c.name: c.value for c in jar}


def rest(proxy: Nginx, path: str, account: Account, body: object = None) -> dict:
    method = "GET" if body is None else "POST"
    status, answer, _ = http_request(
        proxy.http_url(path), method=method, token=account.token, json_body=body
    )
    assert status in (200, 201), (path, status, answer[:300])
    return json.loads(answer)


async def test_no_log_holds_a_credential_or_a_message_body(proxy, leak_workers, workers, alice):
    marker = f"body-{uuid.uuid4().hex}"  # every message body below carries it
    wrong_password = f"wrong-{uuid.uuid4().hex}"
    bodies = [f"{marker}-{n}" for n in range(6)]

    def issue() -> dict:
        return rest(proxy, "/api/realtime/tickets/", alice, body={})

    failed = await asyncio.to_thread(login, proxy, alice.username, wrong_password)
    cookies = await asyncio.to_thread(login, proxy, alice.username, PASSWORD)
    assert "sessionid" in cookies and "sessionid" not in failed, (cookies, failed)
    issued = [await asyncio.to_thread(issue) for _ in range(4)]
    tickets = [answer["ticket"] for answer in issued]
    unused = tickets.pop()  # minted, never shown to a server again: must appear nowhere

    document = await asyncio.to_thread(
        rest, proxy, "/api/collab/documents/", alice, {"title": "S10", "content": ""}
    )
    await asyncio.to_thread(
        rest, proxy, "/api/comments/threads/", alice,
        {"target_kind": "document", "target_id": document["id"], "body": bodies[0],
         "client_msg_id": uuid.uuid4().hex},
    )  # fmt: skip

    room = f"lobby.s10-{uuid.uuid4().hex[:12]}"
    by_ticket = await RealtimeClient.connect(proxy.ws_url("/ws/presence/"), ticket=tickets[0])
    session = f"sessionid={cookies['sessionid']}; csrftoken={cookies['csrftoken']}"
    by_cookie = await RealtimeClient.connect(
        proxy.ws_url("/ws/presence/"), headers={"Cookie": session}
    )
    editor = await RealtimeClient.connect(
        proxy.ws_url(f"/ws/collab/documents/{document['id']}/"), ticket=tickets[1]
    )
    try:
        for client, body in ((by_ticket, bodies[1]), (by_cookie, bodies[2])):
            await client.ack("presence.room.join", {"room": room})
            await client.ack("presence.signal.send", {"room": room, "data": {"text": body}})
        snapshot = await editor.next_event("collab.document.snapshot")
        await editor.ack(
            "collab.op.submit",
            {"version": snapshot["data"]["version"], "op": [bodies[3]], "client_id": "s10",
             "seq": 1},
        )  # fmt: skip
        # Refused frames: not JSON, and a type no handler has. Both answered, neither logged.
        await by_ticket.send_raw('{"type": "presence.signal.send", "data": "' + bodies[4])
        await by_ticket.next_frame("error")
        assert (await by_ticket.request(bodies[5]))["error"]["code"] in {
            "unknown_type",
            "bad_frame",
        }
        # A spent ticket again: refused, and the refusal recorded as a system event.
        reused = await attempt_handshake(ws_url(proxy.ws_url("/ws/presence/"), tickets[0]))
        assert reused.close_code == CLOSE_UNAUTHENTICATED, reused
    finally:
        for client in (by_ticket, by_cookie, editor):
            await client.close()
    secrets = {
        "password": PASSWORD,
        "wrong password": wrong_password,
        "DRF token": alice.token,
        "session id": cookies["sessionid"],
        "CSRF token": cookies["csrftoken"],
        "unused ticket": unused,
        **{f"body {n}": body for n, body in enumerate(bodies)},
        "marker": marker,
    }
    nginx_logs = {
        f"nginx {name}": (proxy.prefix / name).read_text(errors="replace")
        for name in ("access.log", "error.log")
    }
    # The handshake's query string, in nginx's lines about it (and Daphne's, were it there).
    logged_tickets = set(TICKET_IN_QUERY.findall("\n".join(nginx_logs.values())))
    for ticket in logged_tickets:  # spent: a second handshake with it is refused
        again = await attempt_handshake(ws_url(leak_workers[0].ws_url("/ws/presence/"), ticket))
        assert again.close_code == CLOSE_UNAUTHENTICATED, again
    # Every refusal stored as an event before the search (and before the flush after the test).
    await wait_for_events(EventKind.WS_DENIED, 1 + len(logged_tickets))
    events = await sync_to_async(
        lambda: [json.dumps([e.kind, e.ip, e.details]) for e in SystemEvent.objects.order_by("id")]
    )()
    logs = {
        **{f"daphne :{w.port}": w.log() for w in leak_workers},
        **nginx_logs,
        "system events": "\n".join(events),
    }

    found = {
        (what, where)
        for where, text in logs.items()
        for what, secret in secrets.items()
        if secret in text
    }
    assert found == set(), found
    assert all(logs.values()), "a log searched was empty: is it the right file?"
    # Tickets may be logged (nginx logs request lines), but only the ones used, each spent
    # (above) and valid for at most 30 s when issued; none in what the app itself logs.
    assert logged_tickets == set(tickets[:2]), (logged_tickets, tickets)
    assert all(answer["expires_in"] <= TICKET_TTL_MAX for answer in issued), issued
    app_logs = [text for where, text in logs.items() if not where.startswith("nginx")]
    stray = [line for text in app_logs for line in text.splitlines() if "ticket=" in line]
    assert stray == [], stray
    shared = {
        (what, f"daphne :{w.port}")
        for w in workers
        for what, pattern in GENERIC.items()
        if pattern.search(w.log())
    }
    assert shared == set(), shared
    record(
        "S10",
        searched_bytes={where: len(text) for where, text in logs.items()},
        secrets=len(secrets),
        found=0,
        tickets_logged_spent=len(logged_tickets),
        shared_worker_log_bytes=sum(len(w.log()) for w in workers),
    )


async def wait_for_events(kind: str, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    stored = sync_to_async(lambda: SystemEvent.objects.filter(kind=kind).count())
    while await stored() < count:
        assert time.monotonic() < deadline, f"fewer than {count} {kind} events in {timeout}s"
        await asyncio.sleep(0.1)
