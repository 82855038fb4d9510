"""Smoke test of the embedded default: no DATABASE_URL, no REDIS_URL, one Daphne process.

What ``make run`` gives a newcomer must serve a real demo (DESIGN section 2): SQLite, the
in-memory channel layer, local-memory cache and shared state, set up with the project's own
management commands, then REST tickets and the presence socket end to end.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitoring.loadtest.workers import PROJECT_DIR, Worker, daphne_workers
from tests.system.client import RealtimeClient, fetch_ticket, http_request

pytestmark = [pytest.mark.system, pytest.mark.timeout(90)]

# The origin a browser sends for the demo served on the default port (the default allow list).
DEMO_ORIGIN = "http://localhost:8000"
COMMAND_TIMEOUT = 60


@dataclass(frozen=True)
class Embedded:
    worker: Worker
    token: str


def embedded_env(sqlite_path: Path) -> dict[str, str | None]:
    """This process's environment with every project setting removed, as on a fresh machine."""
    removed: dict[str, str | None] = {
        name: None
        for name in os.environ
        if name in {"DATABASE_URL", "REDIS_URL"} or name.startswith(("DJANGO_", "REALTIME_"))
    }
    return {
        **removed,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "1",
        "SQLITE_PATH": str(sqlite_path),
    }


def manage(env: dict[str, str | None], *args: str) -> str:
    full_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    home = tmp_path_factory.mktemp("embedded")
    env = embedded_env(home / "db.sqlite3")
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(
        {**env, "DJANGO_SUPERUSER_PASSWORD": uuid.uuid4().hex},
        "createsuperuser",
        "--noinput",
        "--username",
        "demo",
        "--email",
        "demo@example.com",
    )
    match = re.search(
        r"Generated token (\w+) for user demo", manage(env, "drf_create_token", "demo")
    )
    assert match, "drf_create_token printed no token"
    with daphne_workers(1, env, log_dir=home) as (worker,):
        yield Embedded(worker, match.group(1))


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/api/schema/", "/metrics", "/admin/login/", "/api/docs/"]
)
def test_embedded_default_serves_public_pages(embedded: Embedded, path: str) -> None:
    # What a browser sends: the docs page is HTML, the rest answer any Accept.
    status, body, _ = http_request(embedded.worker.http_url(path), accept="text/html,*/*;q=0.8")

    assert status == 200, f"GET {path} -> {status}: {body[:500]!r}"


def test_embedded_default_is_ready_without_redis(embedded: Embedded) -> None:
    status, body, _ = http_request(embedded.worker.http_url("/readyz"))

    checks = json.loads(body)["checks"]
    assert status == 200
    assert set(checks) == {"database", "channel_layer"}, checks
    assert all(check["ok"] for check in checks.values()), checks


async def test_embedded_default_presence_round_trip(embedded: Embedded) -> None:
    ticket = await fetch_ticket(embedded.worker.http_url(), embedded.token)
    client = await RealtimeClient.connect(
        embedded.worker.ws_url("/ws/presence/"), ticket=ticket, origin=DEMO_ORIGIN
    )
    try:
        assert client.welcome["user"]["username"] == "demo"
        assert client.welcome["epoch"]
        await client.ack("presence.room.join", {"room": "lobby.main"})
        await client.ack("presence.signal.send", {"room": "lobby.main", "data": {"hi": 1}})

        event = await client.next_event("presence.signal.received", timeout=5)
        assert event["data"]["room"] == "lobby.main"
        assert event["data"]["from"]["username"] == "demo"
        assert event["data"]["data"] == {"hi": 1}
    finally:
        await client.close()


async def test_embedded_default_collab_round_trip(embedded: Embedded) -> None:
    base = embedded.worker.http_url()
    status, body, _ = await asyncio.to_thread(
        http_request,
        base + "api/collab/documents/",
        method="POST",
        token=embedded.token,
        json_body={"title": "Demo", "content": "hello"},
    )
    assert status == 201, body[:500]
    document_id = json.loads(body)["id"]
    ticket = await fetch_ticket(base, embedded.token)
    client = await RealtimeClient.connect(
        embedded.worker.ws_url(f"/ws/collab/documents/{document_id}/"),
        ticket=ticket,
        origin=DEMO_ORIGIN,
    )
    try:
        snapshot = await client.next_event("collab.document.snapshot", timeout=5)
        assert (snapshot["data"]["content"], snapshot["data"]["version"]) == ("hello", 1)
        assert [m["user"]["username"] for m in snapshot["data"]["members"]] == ["demo"]
        ack = await client.ack(
            "collab.op.submit", {"version": 1, "op": [5, " world"], "client_id": "c", "seq": 1}
        )
        assert ack == {"version": 2}
    finally:
        await client.close()

    status, body, _ = await asyncio.to_thread(
        http_request, base + f"api/collab/documents/{document_id}/", token=embedded.token
    )
    assert status == 200
    assert json.loads(body)["content"] == "hello world"


async def test_embedded_default_comments_round_trip(embedded: Embedded) -> None:
    base = embedded.worker.http_url()
    status, body, _ = await asyncio.to_thread(
        http_request,
        base + "api/collab/documents/",
        method="POST",
        token=embedded.token,
        json_body={"title": "Reviewed", "content": "hello"},
    )
    assert status == 201, body[:500]
    document_id = json.loads(body)["id"]
    thread_body = {
        "target_kind": "document",
        "target_id": document_id,
        "anchor": {"start": 0, "end": 5, "version": 1},
        "body": "Why hello?",
        "client_msg_id": "t1",
    }
    status, body, _ = await asyncio.to_thread(
        http_request,
        base + "api/comments/threads/",
        method="POST",
        token=embedded.token,
        json_body=thread_body,
    )
    assert status == 201, body[:500]
    thread_id = json.loads(body)["thread"]["id"]
    ticket = await fetch_ticket(base, embedded.token)
    client = await RealtimeClient.connect(
        embedded.worker.ws_url(f"/ws/comments/threads/{thread_id}/"),
        ticket=ticket,
        origin=DEMO_ORIGIN,
    )
    try:
        snapshot = await client.next_event("comments.thread.snapshot", timeout=5)
        assert [c["body"] for c in snapshot["data"]["comments"]] == ["Why hello?"]
        ack = await client.ack(
            "comments.comment.create", {"body": "Because.", "client_msg_id": "c1"}
        )
        event = await client.next_event("comments.comment.created", timeout=5)
        assert (ack["seq"], event["seq"]) == (3, 3)
        await client.ack("comments.typing.start")
        await client.next_event("comments.typing.started", timeout=5)
    finally:
        await client.close()
