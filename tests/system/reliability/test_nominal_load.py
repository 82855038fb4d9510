"""L1 and L2 of RELIABILITY.md section 2: L-nominal held on two workers, alone (L1) and with idle
presence sockets ramping in beside it (L2).

L-nominal (tests/system/reliability/nominal.py): editors on documents at about one op/s each
with one op in flight, chat users in comments threads posting 0.2 comments/s and 0.1
reactions/s each, every client beating the 15 s presence heartbeat. Full scale (``make
reliability``): 200 editors on 20 documents and 100 chat users in 10 rooms for 10 minutes; ci:
2 x 3 editors and 2 x 3 chat users for 15 s. L2 adds ``manage.py loadtest hold`` as a separate
process against the same two workers: 1,800 sockets (ci: 20) on ``/ws/presence/``, each joining
a lobby room of 10 and then sending only its heartbeat (presence-only, idle), connecting at 50/s
while the load runs and held until it ends.

Always asserted: section 1's oracles on every document (replicas = snapshot = replay, nothing
acked lost, nothing applied twice, a probe reaches everyone), every chat item delivered exactly
once to every member and stored once, no client reconnected (no unexpected close), every idle
socket connected and held without a failure, and nothing in the workers' logs: no traceback,
no ERROR line, no "over capacity", no 5xx in the access log. The latency bounds (op ack p50 <
50 ms, p95 < 150, p99 < 400; fan-out and chat delivery p95 < 250; for L2 also all idle sockets
connected within 60 s, handshake p95 < 500 ms) only at full scale; the figures are recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from monitoring.loadtest.workers import PROJECT_DIR, Worker, daphne_workers
from tests.system.client import ORIGIN
from tests.system.conftest import Account, worker_env
from tests.system.faults.scale import FULL, record, scaled
from tests.system.faults.serverside import ServerWindow
from tests.system.reliability.nominal import NominalLoad, log_problems, nominal_load

pytestmark = [
    pytest.mark.system,
    pytest.mark.full_scale,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(scaled(ci=150, full=1500)),
]

DOCUMENTS = scaled(ci=2, full=20)
EDITORS_PER_DOCUMENT = scaled(ci=3, full=10)
ROOMS = scaled(ci=2, full=10)
MEMBERS_PER_ROOM = scaled(ci=3, full=10)
LOAD_SECONDS = scaled(ci=15.0, full=600.0)
IDLE_SOCKETS = scaled(ci=20, full=1800)
IDLE_ROOMS = scaled(ci=2, full=180)
CONNECT_RATE = 50.0  # idle sockets per second, over both generator processes
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # 300 accounts, made here


@pytest.fixture(scope="module")
def nominal_env(django_db_setup: None) -> dict[str, str]:
    """The workers' environment, which the loadtest process shares (database, Redis, prefix)."""
    return worker_env()


@pytest.fixture(scope="module")
def nominal_workers(nominal_env: dict[str, str], tmp_path_factory) -> Iterator[list[Worker]]:
    with daphne_workers(2, nominal_env, log_dir=tmp_path_factory.mktemp("l1-daphne")) as workers:
        yield workers


@pytest.fixture
def accounts(settings, make_account: Callable[[], Account]) -> Callable[[], Account]:
    settings.PASSWORD_HASHERS = FAST_HASHER  # workers authenticate by token: no password used
    return make_account


async def build(workers: list[Worker], accounts: Callable[[], Account], label: str) -> NominalLoad:
    return await nominal_load(workers, accounts, label, documents=DOCUMENTS,
                              editors=EDITORS_PER_DOCUMENT, rooms=ROOMS,
                              members=MEMBERS_PER_ROOM)  # fmt: skip


def assert_clean(load: NominalLoad, workers: list[Worker], problems: dict[str, Any]) -> None:
    assert all(worker.alive() for worker in workers)
    counts = {key: value for key, value in problems.items() if key != "examples"}
    assert set(counts.values()) == {0}, problems
    assert load.reconnects == 0, "a socket closed unexpectedly"


def assert_l1_targets(figures: dict[str, Any]) -> None:
    # As the workers measured them (receipt to ack; commit to the frame handed to the socket):
    # this test's clients share the machine's two cores with the workers, and their own
    # figures (ack_ms, fanout_ms, chat_ms, recorded) include their event loop's lag
    # (client_loop_lag_ms, recorded).
    ack, fanout = figures["server_ack_ms"], figures["server_fanout_ms"]
    chat = figures["server_chat_ms"]
    assert ack["p50"] < 50 and ack["p95"] < 150 and ack["p99"] < 400, ack
    assert fanout["p95"] < 250, fanout
    assert chat["p95"] < 250, chat


async def test_l1_nominal_load_hold(nominal_workers, accounts):
    load = await build(nominal_workers, accounts, "L1")
    starts = [len(worker.log()) for worker in nominal_workers]
    try:
        await load.start()
        window = await ServerWindow.open(nominal_workers[0])
        await load.run(LOAD_SECONDS)
        server = await window.close()
        await load.settle()
    finally:
        await load.close()

    problems = log_problems(nominal_workers, starts)
    figures = load.figures() | server
    record("L1", **figures, seconds=LOAD_SECONDS, log=problems)
    await load.assert_correct()
    assert_clean(load, nominal_workers, problems)
    if FULL:
        assert_l1_targets(figures)


async def hold_idle_sockets(workers: list[Worker], env: dict[str, str]) -> dict[str, Any]:
    """``manage.py loadtest hold`` against the workers, ramping in at CONNECT_RATE and holding
    until about when the load ends; its JSON line (monitoring/loadtest/scenarios.py)."""
    hold_seconds = max(5.0, LOAD_SECONDS - IDLE_SOCKETS / CONNECT_RATE)
    command = [
        sys.executable, "manage.py", "loadtest", "hold",
        "--connections", str(IDLE_SOCKETS), "--rooms", str(IDLE_ROOMS),
        "--connect-rate", str(CONNECT_RATE), "--hold", str(hold_seconds),
        "--procs", "2", "--origin", ORIGIN,
    ]  # fmt: skip
    for worker in workers:
        command += ["--url", worker.ws_url(""), "--pid", str(worker.pid)]
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled: SIGTERM unwinds it and its generators
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 30)
            if process.returncode is None:
                process.kill()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    return json.loads(out.decode().strip().splitlines()[-1])


async def test_l2_connection_scale(nominal_workers, nominal_env, accounts):
    load = await build(nominal_workers, accounts, "L2")
    starts = [len(worker.log()) for worker in nominal_workers]
    hold: asyncio.Task[dict[str, Any]] | None = None
    try:
        await load.start()
        # The idle sockets ramp in while the load runs: its latencies include the ramp.
        window = await ServerWindow.open(nominal_workers[0])
        hold = asyncio.create_task(hold_idle_sockets(nominal_workers, nominal_env))
        await load.run(LOAD_SECONDS)
        server = await window.close()
        held = await hold
        await load.settle()
    finally:
        if hold is not None and not hold.done():
            hold.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hold
        await load.close()

    problems = log_problems(nominal_workers, starts)
    figures, idle = load.figures() | server, held["results"]
    record(
        "L2",
        **figures,
        seconds=LOAD_SECONDS,
        idle_sockets=IDLE_SOCKETS,
        idle_established=idle["established"],
        idle_failures=idle["failures"],
        idle_connect_s=idle["connect_seconds"],
        handshake_ms=idle["connect_ms"],
        idle_held_to_end=idle["held_to_end"],
        steal_pct=held["steal_pct"],
        log=problems,
    )
    await load.assert_correct()
    assert_clean(load, nominal_workers, problems)
    assert idle["attempted"] == idle["established"] == idle["held_to_end"] == IDLE_SOCKETS, idle
    assert (idle["failures"], idle["closed_by_server"], idle["error_frames"]) == ({}, {}, {})
    if FULL:
        assert_l1_targets(figures)
        assert idle["connect_seconds"] <= 60, idle["connect_seconds"]
        assert idle["connect_ms"]["p95"] < 500, idle["connect_ms"]
