"""L4 of RELIABILITY.md: 20 members of one busy room stop reading, the others must not notice.

Two workers; one presence room with 20 members that stop reading (their sockets' reading is
paused and their receive buffers are small, so the TCP window fills and the worker's writes to
them queue up), a few members that keep reading, and two senders putting signals of ~3.5 KB
into the room (full: 25/s for 120 s of pause; ci: 20/s for 30 s). Measured: when the workers
drop the silent members (others hear ``presence.member.left``), the workers' RSS growth and the
bytes queued in their kernel send buffers meanwhile, and the readers' delivery latency.

What stops the growth here is not a per-connection outbound cap -- the project has none (the
pub/sub layer queues without bound, Daphne's transport buffers every write, docs/benchmarks.md)
-- but Daphne's keepalive: a socket that does not read does not answer its ping, and is dropped
``--ping-interval`` + ``--ping-timeout`` (10 s + 10 s on the rig) after its last pong. So what
is asserted at every scale is what holds: every reader gets every acknowledged signal, the
silent members are dropped within 30 s, no worker dies or logs a traceback; RELIABILITY's RSS
(< 100 MB) and fan-out latency (p95 < 250 ms) bounds at full scale only.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect

from monitoring.loadtest.measure import percentiles, process_rss_kib
from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.client import ORIGIN, RealtimeClient, fetch_ticket, ws_url
from tests.system.conftest import Account, worker_env
from tests.system.faults.scale import FULL, record, scaled

pytestmark = [
    pytest.mark.system,
    pytest.mark.full_scale,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(scaled(ci=150, full=400)),
]

SILENT = 20
READERS = scaled(ci=4, full=10)
RATE = scaled(ci=20, full=25)  # signals per second into the room, from two senders
PAUSE_SECONDS = scaled(ci=30.0, full=120.0)
BASELINE_SECONDS = scaled(ci=3.0, full=10.0)
PAD = "x" * 3500  # a signal is capped at 4 KiB (presence.services.MAX_SIGNAL_BYTES)
DROPPED_WITHIN = 30.0  # ping interval + ping timeout + Daphne's once-a-second check, with room
RECEIVE_BUFFER = 4096
PRESENCE = "/ws/presence/"


@pytest.fixture(scope="module")
def busy_workers(django_db_setup: None, tmp_path_factory) -> Iterator[list[Worker]]:
    env = worker_env() | {"REALTIME_RATE_SIGNAL": "100000/min"}
    with daphne_workers(2, env, log_dir=tmp_path_factory.mktemp("l4-daphne")) as workers:
        yield workers


async def member(
    worker: Worker, account: Account, room: str, *, silent: bool = False
) -> RealtimeClient:
    ticket = await fetch_ticket(worker.http_url(), account.token)
    if not silent:
        client = await RealtimeClient.connect(worker.ws_url(PRESENCE), ticket=ticket)
    else:
        # A small receive buffer fills in a few frames; no client pings, whose unanswered
        # pongs would make the client close first.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (worker.host, worker.port))
        ws = await connect(
            ws_url(worker.ws_url(PRESENCE), ticket), sock=sock, origin=ORIGIN,  # type: ignore[arg-type]
            ping_interval=None, open_timeout=10, close_timeout=2,
        )  # fmt: skip
        welcome = json.loads(await ws.recv())
        client = RealtimeClient(ws, welcome["data"])
    await client.ack("presence.room.join", {"room": room})
    return client


def kernel_send_queue(worker: Worker, peer_ports: set[int]) -> int:
    """Bytes the kernel holds unsent from any worker to these client ports (tx_queue of
    /proc/net/tcp, which lists every socket of the network namespace)."""
    total = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{worker.pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) in peer_ports:
                total += int(fields[4].split(":")[0], 16)
    return total


async def send_for(client: RealtimeClient, name: str, seconds: float, acked: set[str]) -> None:
    """Signals at RATE / 2 per second, each stamped with its send time."""
    loop = asyncio.get_running_loop()
    until, interval, k = loop.time() + seconds, 2 / RATE, 0
    while (now := loop.time()) < until:
        data = {"n": f"{name}.{k}", "t": time.time(), "pad": PAD}
        await client.ack("presence.signal.send", {"room": client.room, "data": data})
        acked.add(data["n"])
        k += 1
        await asyncio.sleep(max(0.0, now + interval - loop.time()))


async def heartbeat(client: RealtimeClient) -> None:
    """What a client that only listens must send (silence past REALTIME_HEARTBEAT_TIMEOUT_SECONDS
    closes it with 4408)."""
    while True:
        await asyncio.sleep(10)
        await client.ack("session.heartbeat", {})


async def listen(client: RealtimeClient, received: list[tuple[str, float]]) -> None:
    """Every signal this reader gets, with its delivery latency in ms, until cancelled."""
    while True:
        frame = await client.next_frame("presence.signal.received", timeout=3600)
        data = frame["data"]["data"]
        received.append((data["n"], (time.time() - data["t"]) * 1000))


def left_users(client: RealtimeClient) -> dict[int, float]:
    """User id -> when a ``presence.member.left`` for them arrived (stamped by the watcher)."""
    return client.left  # type: ignore[attr-defined]


async def watch_leaves(client: RealtimeClient) -> None:
    client.left = {}  # type: ignore[attr-defined]
    while True:
        frame = await client.next_frame("presence.member.left", timeout=3600)
        user = frame["data"]["user"]
        client.left[user["id"] if isinstance(user, dict) else user] = time.monotonic()  # type: ignore[attr-defined]


async def test_silent_members_are_dropped_and_the_others_keep_receiving(busy_workers, make_account):
    make = sync_to_async(make_account)
    silent_accounts = [await make(password=None) for _ in range(SILENT)]
    reader_accounts = [await make(password=None) for _ in range(READERS)]
    sender_accounts = [await make(password=None) for _ in range(2)]
    room = f"lobby.l4-{uuid.uuid4().hex[:12]}"
    on = lambda n: busy_workers[n % 2]  # noqa: E731 - half the members on each worker

    readers = [await member(on(n), a, room) for n, a in enumerate(reader_accounts)]
    senders = [await member(on(n), a, room) for n, a in enumerate(sender_accounts)]
    silent = [await member(on(n), a, room, silent=True) for n, a in enumerate(silent_accounts)]
    for client in senders:
        client.room = room  # type: ignore[attr-defined]
    received: list[list[tuple[str, float]]] = [[] for _ in readers]
    tasks = [asyncio.create_task(listen(r, got)) for r, got in zip(readers, received, strict=True)]
    tasks.append(asyncio.create_task(watch_leaves(readers[0])))
    tasks += [asyncio.create_task(heartbeat(r)) for r in readers]
    acked: set[str] = set()
    silent_ports = {client.ws.transport.get_extra_info("sockname")[1] for client in silent}
    pids = [w.pid for w in busy_workers]
    try:
        await asyncio.gather(*(send_for(s, f"s{i}b", BASELINE_SECONDS, acked)
                               for i, s in enumerate(senders)))  # fmt: skip
        baseline_latency = [ms for got in received for _, ms in got]
        rss_before = {pid: process_rss_kib(pid) for pid in pids}

        for client in silent:
            client.ws.transport.pause_reading()
        paused_at = time.monotonic()
        samples: list[tuple[float, dict[int, int | None], int]] = []

        async def sample() -> None:
            while True:
                queued = await asyncio.to_thread(kernel_send_queue, busy_workers[0], silent_ports)
                rss = {pid: process_rss_kib(pid) for pid in pids}
                samples.append((time.monotonic() - paused_at, rss, queued))
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample())
        marks = [len(got) for got in received]  # what arrived before the pause
        await asyncio.gather(*(send_for(s, f"s{i}p", PAUSE_SECONDS, acked)
                               for i, s in enumerate(senders)))  # fmt: skip
        sampler.cancel()
        # The readers' last signal, then the tally.
        closed = [(r.close_code, r.ws.close_reason) for r in readers if r.close_code is not None]
        assert closed == [], f"readers closed: {closed} at {time.monotonic() - paused_at:.1f}s"
        for got in received:
            await wait_for(lambda got=got: {n for n, _ in got} >= acked, timeout=15,
                           missing=lambda got=got: sorted(acked - {n for n, _ in got}))  # fmt: skip
        pause_latency = [
            ms for got, mark in zip(received, marks, strict=True) for _, ms in got[mark:]
        ]
        dropped_after = {user: at - paused_at for user, at in left_users(readers[0]).items()}
        for client in silent:
            client.ws.transport.resume_reading()
        # Each reads what its kernel buffer held, then finds the connection gone.
        closes = [await client.wait_closed(timeout=15) for client in silent]
    finally:
        for task in tasks:
            task.cancel()
        for client in [*readers, *senders, *silent]:
            await client.close()

    silent_ids = {a.user_id for a in silent_accounts}
    logs = "".join(w.log() for w in busy_workers)
    for got in received:
        names = [n for n, _ in got]
        assert sorted(names) == sorted(acked), "a reader missed or repeated a signal"
    assert all(w.alive() for w in busy_workers)
    assert "Traceback" not in logs, logs[-3000:]
    assert set(dropped_after) >= silent_ids, sorted(silent_ids - set(dropped_after))
    assert max(dropped_after[u] for u in silent_ids) < DROPPED_WITHIN, dropped_after

    peak_rss = {pid: max(s[1][pid] or 0 for s in samples) for pid in pids}
    growth_mb = {pid: round((peak_rss[pid] - (rss_before[pid] or 0)) / 1024, 1) for pid in pids}
    latency = percentiles(pause_latency)
    record(
        "L4",
        silent=SILENT,
        readers=READERS,
        rate_per_s=RATE,
        signal_bytes=len(PAD),
        pause_s=PAUSE_SECONDS,
        delivered_per_reader=len(acked),
        dropped_after_s=percentiles(list(dropped_after.values())),
        rss_growth_mb=growth_mb,
        peak_kernel_send_queue_kb=round(max(s[2] for s in samples) / 1024, 1),
        latency_ms_baseline=percentiles(baseline_latency),
        latency_ms_paused=latency,
        close_codes=sorted(set(closes), key=str),
    )
    if FULL:  # RELIABILITY.md's bounds, at its scale
        assert max(growth_mb.values()) < 100, growth_mb
        assert latency["p95"] < 250, latency


async def wait_for(condition, timeout: float, missing) -> None:  # type: ignore[no-untyped-def]  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not condition():
        gone = missing()
        assert time.monotonic() < deadline, f"{len(gone)} never arrived: {gone[:20]}"
        await asyncio.sleep(0.05)
