"""F4 of RELIABILITY.md: Redis stalls for 5 s (``DEBUG SLEEP 5``, and separately ``CLIENT PAUSE
5000 ALL``) while editors type.

Two workers on a private redis-server (the shared one other tests use is never stalled), the
editors split over both, on the project's client. Redis keeps every connection and answers
nothing for 5 s, then answers everything queued. Acks come from the PostgreSQL commit, so the
op ack latency must stay low (p99 < 400 ms, asserted at full scale); no socket may drop; once
the stall ends an edit made by a quiet editor must reach every other editor within 2 s (asserted
at full scale), and afterwards every oracle holds: replicas = snapshot = replay of the stored
ops, each acknowledged op stored once, a probe reaches everyone.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from monitoring.loadtest.measure import percentiles
from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.conftest import worker_env
from tests.system.faults.oracles import (
    ReconnectTimer,
    arrivals,
    assert_oracles,
    document_editors,
    logged_errors,
    probe,
    time_submits,
    type_for,
)
from tests.system.faults.scale import FULL, record, scaled
from tests.system.faults.serverside import LoopLag, handler_histogram, handler_quantiles
from tests.system.services import PrivateRedis

pytestmark = [
    pytest.mark.system,
    pytest.mark.full_scale,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(scaled(ci=120, full=900)),
]

EDITORS_PER_DOCUMENT = scaled(ci=6, full=10)
DOCUMENTS = scaled(ci=1, full=20)
STALL_SECONDS = 5.0
TYPE_BEFORE_SECONDS = scaled(ci=2.0, full=15.0)
TYPE_AFTER_SECONDS = scaled(ci=3.0, full=15.0)
# Between one editor's edits: a busy document in CI, L-nominal's ~1 op/s at full.
PAUSE_SECONDS = scaled(ci=(0.05, 0.15), full=(0.5, 1.5))
SUBMIT = "collab.op.submit"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[PrivateRedis]:
    # DEBUG is off by default since Redis 7; "local" allows it from 127.0.0.1 (this test).
    server = PrivateRedis(tmp_path_factory.mktemp("f4-redis"), "--enable-debug-command", "local")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def f4_workers(django_db_setup: None, redis_server, tmp_path_factory) -> Iterator[list[Worker]]:
    env = worker_env() | {"REDIS_URL": redis_server.url}
    with daphne_workers(2, env, log_dir=tmp_path_factory.mktemp("f4-daphne")) as workers:
        yield workers


def stall(server: PrivateRedis, how: str) -> threading.Thread:
    """Stall Redis for STALL_SECONDS from now; the thread ends when it answers again."""

    def debug_sleep() -> None:
        with redis.Redis(port=server.port, socket_timeout=STALL_SECONDS + 10) as client:
            client.execute_command("DEBUG", "SLEEP", STALL_SECONDS)

    def client_pause() -> None:
        with server.client() as client:
            client.execute_command("CLIENT", "PAUSE", int(STALL_SECONDS * 1000), "ALL")
        time.sleep(STALL_SECONDS)

    thread = threading.Thread(target=debug_sleep if how == "debug-sleep" else client_pause)
    thread.start()
    return thread


@pytest.mark.parametrize("how", ["debug-sleep", "client-pause"])
async def test_a_redis_stall_delays_no_ack_and_drops_no_socket(
    f4_workers, redis_server, make_account, how
):
    log_starts = [len(worker.log()) for worker in f4_workers]
    documents, by_document, quiet = await document_editors(
        f4_workers, make_account, f"f4-{how}", DOCUMENTS, EDITORS_PER_DOCUMENT
    )
    typists = [session for group in by_document.values() for session in group]
    everyone = typists + list(quiet.values())
    submits: list[tuple[float, float, bool]] = []
    rng = random.Random(19)
    try:
        for session in everyone:
            await session.start(timeout=60)
            time_submits(session, submits)
        seen = {id(session): arrivals(session) for session in typists}
        timer = ReconnectTimer(everyone)
        lag = LoopLag()
        handled_before = await asyncio.to_thread(handler_histogram, f4_workers[0], SUBMIT)
        seconds = TYPE_BEFORE_SECONDS + STALL_SECONDS + TYPE_AFTER_SECONDS
        typing = [
            asyncio.create_task(type_for(s, seconds, random.Random(rng.random()), PAUSE_SECONDS))
            for s in typists
        ]
        await asyncio.sleep(TYPE_BEFORE_SECONDS)
        stall_began = time.monotonic()
        stalled = stall(redis_server, how)
        await asyncio.to_thread(stalled.join, STALL_SECONDS + 10)
        stall_ended = time.monotonic()
        for session in quiet.values():
            session.edit([len(session.text), "#"])
        for session in quiet.values():
            await session.settled(timeout=60)
        marks = {pk: session.version for pk, session in quiet.items()}
        await asyncio.gather(*typing)
        lag.stop()
        handled = await asyncio.to_thread(handler_histogram, f4_workers[0], SUBMIT)
        for document_pk, group in by_document.items():
            await probe([quiet[document_pk], *group], timeout=60)
    finally:
        for session in everyone:
            await session.close()

    for document in documents:
        await assert_oracles(document, [quiet[document.pk], *by_document[document.pk]])
    assert all(worker.alive() for worker in f4_workers)
    for worker, start in zip(f4_workers, log_starts, strict=True):
        assert logged_errors(worker, start) == []
    assert timer.gaps_ms == [] and timer.still_away == 0, "a socket dropped during the stall"
    assert [s.client.connections for s in everyone] == [1] * len(everyone)

    # Sent while Redis stalled (and just before: answers queued behind the stall), or not.
    acks = [(at, ms) for at, ms, acked in submits if acked]
    ack_ms = percentiles([ms for _, ms in acks])
    during_ms = percentiles([ms for at, ms in acks if stall_began - 1 <= at <= stall_ended])
    outside_ms = percentiles([ms for at, ms in acks if not stall_began - 1 <= at <= stall_ended])
    # Fan-out resumed: the quiet editor's edit after the stall, at every typist of its document.
    resumed_s = max(
        min(t for version, t in seen[id(s)].items() if version >= marks[pk]) - stall_ended
        for pk, group in by_document.items()
        for s in group
    )
    record(
        "F4",
        stall=how,
        editors=len(typists),
        documents=DOCUMENTS,
        stall_s=round(stall_ended - stall_began, 2),
        ack_ms=ack_ms,
        ack_during_stall_ms=during_ms,
        ack_outside_stall_ms=outside_ms,
        acked_ops=len(acks),
        # Answered with a retryable error (the client sent them again): a Redis write on the
        # op's path timed out (assert_oracles fails on any other error).
        retried_ops=len(submits) - len(acks),
        fanout_resumed_s=round(resumed_s, 3),
        server_ack_ms=(server_ack_ms := handler_quantiles(handled_before, handled)),
        client_loop_lag_ms=lag.percentiles(),
    )
    # The ack path avoids Redis (config/realtime/outbox.py; the rate limit and the presence
    # write wait on it at most a quarter second): acks sent during the stall take about as
    # long as the others. Before the outbox they waited out the stall (ci: p99 5.0 s against
    # 133 ms outside). Relative, because at full scale this machine is saturated and every
    # ack takes seconds (docs/reliability.md, F4).
    assert during_ms["p95"] < outside_ms["p95"] + STALL_SECONDS * 1000 / 2, (during_ms, outside_ms)
    if FULL:  # RELIABILITY.md's bounds, at its scale (timings are not asserted in CI)
        # As the workers measured it (receipt to ack): at 200 editors this test's own loop lags
        # by seconds on a 2-core machine (client_loop_lag_ms), and the clients' figure with it.
        assert server_ack_ms["p99"] is not None and server_ack_ms["p99"] < 400, server_ack_ms
        assert resumed_s < 2.0, resumed_s
