"""deploy/nginx/collab.conf, run by a real nginx in front of two real Daphne workers.

The config is the one in deploy/, with only its addresses rewritten (each rewrite must find its
text, so an edit of the file that breaks these tests fails them rather than slipping past). It
must pass ``nginx -t``; REST, static files and WebSockets must work through it, sockets must be
spread over both workers and reach each other; and a rolling restart of the workers behind it
must lose no keystroke of two editors typing through it.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from collab.client import DocumentSession
from collab.models import Document, Role
from collab.services import document_create, member_set
from config.client import RealtimeClient
from config.errors import CLOSE_SERVICE_RESTART
from monitoring.loadtest.workers import (
    PROJECT_DIR,
    Worker,
    daphne_workers,
    free_port,
    restart_worker,
)
from tests.system.client import ORIGIN, fetch_ticket, http_request
from tests.system.conftest import Account, worker_env

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

DEPLOY = PROJECT_DIR / "deploy" / "nginx"
WAIT = 10.0


class Nginx:
    def __init__(self, prefix: Path, port: int) -> None:
        self.prefix = prefix
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def http_url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return "\n".join(
            (self.prefix / name).read_text(errors="replace")[-3000:]
            for name in ("error.log", "access.log")
            if (self.prefix / name).exists()
        )


def rewrite(text: str, old: str, new: str) -> str:
    assert old in text, f"deploy/nginx/collab.conf no longer has {old!r}: update this test"
    return text.replace(old, new)


def render_site(workers: list[Worker], port: int) -> str:
    site = (DEPLOY / "collab.conf").read_text()
    upstreams = "".join(f"    server 127.0.0.1:{w.port} max_fails=0;\n" for w in workers)
    site = rewrite(
        site,
        "    server 127.0.0.1:8001 max_fails=0;\n    server 127.0.0.1:8002 max_fails=0;\n",
        upstreams,
    )
    site = rewrite(site, "    listen 80;\n    listen [::]:80;\n", f"    listen 127.0.0.1:{port};\n")
    site = rewrite(site, "/etc/nginx/collab-proxy.conf", str(DEPLOY / "collab-proxy.conf"))
    static = PROJECT_DIR / "config" / "realtime" / "static"
    return rewrite(site, "alias /srv/collab/staticfiles/;", f"alias {static}/;")


def render_main(prefix: Path) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""  # its workers must read our temp files
    temp = "".join(
        f"    {name}_temp_path {prefix / name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} info;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log {prefix / 'access.log'};\n{temp}"
        f"    include {prefix / 'collab.conf'};\n}}\n"
    )


@pytest.fixture(scope="module")
def nginx_workers(django_db_setup: None, tmp_path_factory) -> Iterator[list[Worker]]:
    """Workers of this module only: the restart test stops and starts them."""
    with daphne_workers(2, worker_env(), log_dir=tmp_path_factory.mktemp("nginx-daphne")) as w:
        yield w


@pytest.fixture(scope="module")
def nginx(nginx_workers: list[Worker], tmp_path_factory) -> Iterator[Nginx]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(binary).exists(), "nginx is needed (.ci/services installs it)"
    prefix = tmp_path_factory.mktemp("nginx")
    server = Nginx(prefix, free_port())
    (prefix / "collab.conf").write_text(render_site(nginx_workers, server.port))
    (prefix / "nginx.conf").write_text(render_main(prefix))
    command = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    server.process = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + WAIT
        while not answers(server.http_url("/healthz")):
            assert server.process.poll() is None, server.process.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        yield server
    finally:
        server.process.terminate()
        server.process.wait(WAIT)


def answers(url: str) -> bool:
    try:
        return http_request(url, timeout=1)[0] == 200
    except OSError:  # not listening yet
        return False


def ticket_via(nginx: Nginx, account: Account):
    async def ticket() -> str:
        return await fetch_ticket(nginx.http_url(), account.token)

    return ticket


async def eventually(condition, timeout: float = WAIT) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - polled: plain state, no event to wait on
            await asyncio.sleep(0.05)


def test_rest_and_static_files_go_through(nginx, alice):
    health = http_request(nginx.http_url("/healthz"))
    ticket = http_request(
        nginx.http_url("/api/realtime/tickets/"), method="POST", token=alice.token
    )
    with urllib.request.urlopen(nginx.http_url("/static/realtime/client.js")) as response:  # noqa: S310
        static = (response.status, response.headers["Server"], response.read())

    assert health[0] == 200
    assert ticket[0] == 201
    assert static[0] == 200 and static[1].startswith("nginx")
    assert b"export class RealtimeClient" in static[2]


async def test_sockets_are_spread_over_both_workers_and_reach_each_other(
    nginx, nginx_workers, alice, bob
):
    before = [w.log().count("WSCONNECT /ws/presence/") for w in nginx_workers]
    listener = RealtimeClient(
        nginx.ws_url("/ws/presence/"), ticket=ticket_via(nginx, alice), origin=ORIGIN
    )
    speaker = RealtimeClient(
        nginx.ws_url("/ws/presence/"), ticket=ticket_via(nginx, bob), origin=ORIGIN
    )
    heard: list[dict] = []
    listener.on("presence.signal.received", heard.append)
    try:
        for client in (listener, speaker):
            await client.start()
            await client.wait_open()
            await client.command("presence.room.join", {"room": "lobby.nginx"})
        await speaker.command("presence.signal.send", {"room": "lobby.nginx", "data": {"n": 1}})
        await eventually(lambda: bool(heard))
    finally:
        for client in (listener, speaker):
            await client.close()
    after = [w.log().count("WSCONNECT /ws/presence/") for w in nginx_workers]

    assert heard[0]["data"]["data"] == {"n": 1}
    # least_conn: the second socket goes to the worker that holds none.
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1]


@sync_to_async
def shared_document(owner: Account, editor: Account) -> Document:
    user = get_user_model().objects.get(pk=owner.user_id)
    document = document_create(owner=user, title="Behind nginx")
    member_set(user=user, document_id=document.pk, member_id=editor.user_id, role=Role.EDITOR)
    return document


async def test_a_rolling_restart_behind_nginx_loses_no_keystroke(nginx, nginx_workers, alice, bob):
    document = await shared_document(alice, bob)
    path = f"/ws/collab/documents/{document.pk}/"
    sessions = [
        DocumentSession(nginx.ws_url(path), client_id=name, ticket=ticket_via(nginx, account),
                        origin=ORIGIN, backoff_cap=0.5)
        for name, account in (("alice", alice), ("bob", bob))
    ]  # fmt: skip
    closes: list[list[int | None]] = [[], []]
    for session, seen in zip(sessions, closes, strict=True):
        session.client.on_state(
            lambda state, c=session.client, s=seen: (
                s.append(c.close_code) if state == "offline" else None
            )
        )
        await session.start()
    keys = ["abcdefghijklmnopqrst", "ABCDEFGHIJKLMNOPQRST"]
    rng = random.Random(3)

    async def type_into(session: DocumentSession, text: str) -> None:
        for key in text:
            position = rng.randint(0, len(session.text))
            session.edit([position, key] if position else [key])
            await asyncio.sleep(0.1)

    typing = [asyncio.create_task(type_into(s, k)) for s, k in zip(sessions, keys, strict=True)]
    for index, worker in enumerate(list(nginx_workers)):  # one at a time, as operators do
        nginx_workers[index] = await asyncio.to_thread(restart_worker, worker)
    await asyncio.gather(*typing)
    for session in sessions:
        await session.settled(timeout=30)
    await eventually(lambda: sessions[0].version == sessions[1].version)
    stored = await sync_to_async(Document.objects.get)(pk=document.pk)
    for session in sessions:
        await session.close()

    assert [s.errors for s in sessions] == [[], []]
    assert [s.text for s in sessions] == [stored.content, stored.content]
    assert sorted(stored.content) == sorted(keys[0] + keys[1])  # each keystroke once
    # Each stopping worker said so (4012, service restart) rather than vanishing (1006).
    codes = [code for seen in closes for code in seen]
    assert codes and set(codes) == {CLOSE_SERVICE_RESTART}, closes
