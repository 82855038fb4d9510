"""F2 of RELIABILITY.md: a rolling restart (SIGTERM worker A, wait until it is healthy again,
then B) while editors type.

Editors on documents, half starting on A and half on B, each with the project's client given
both workers' URLs (standing in for the load balancer). Every socket a stopping worker closes
must close with our restart code, 4012 (``CLOSE_SERVICE_RESTART``): RELIABILITY.md asks for
1001/1012, but Daphne's WebSocket library lets an application close only with 1000 or 3000-4999
(config/errors.py, docs/operations.md). No editor may be forced to reconnect more than once per
restart, and afterwards the oracles of section 1 hold: nothing acknowledged lost, nothing
applied twice, every replica = snapshot = replay. At full scale (``make reliability``: 200
editors on 20 documents) the reconnect gaps must have p95 < 3 s.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async

from config.client.connection import CLOSED, OPEN
from config.errors import CLOSE_SERVICE_RESTART
from monitoring.loadtest.measure import percentiles
from monitoring.loadtest.workers import (
    Worker,
    daphne_workers,
    start_worker,
    stop_worker,
    wait_healthy,
)
from tests.system.conftest import worker_env
from tests.system.faults.oracles import (
    ReconnectTimer,
    assert_oracles,
    editor,
    probe,
    shared_document,
    type_for,
)
from tests.system.faults.scale import FULL, record, scaled

pytestmark = [
    pytest.mark.system,
    pytest.mark.full_scale,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(scaled(ci=120, full=900)),
]

EDITORS_PER_DOCUMENT = scaled(ci=4, full=10)
DOCUMENTS = scaled(ci=2, full=20)
SETTLE_SECONDS = scaled(ci=1.0, full=10.0)  # typing before, between and after the restarts


@pytest.fixture(scope="module")
def f2_workers(django_db_setup: None, tmp_path_factory) -> Iterator[list[Worker]]:
    """Workers of this module only: the test stops and starts them."""
    env = worker_env() | {"API_RATE_TICKET": "1000/min"}
    with daphne_workers(2, env, log_dir=tmp_path_factory.mktemp("f2-daphne")) as workers:
        yield workers


def restart(worker: Worker) -> tuple[Worker, str]:
    """Stop (SIGTERM, the drain) and start again on the same port; the new worker, healthy,
    and the log of the old one (the new one starts its log file afresh)."""
    stop_worker(worker)
    log = worker.log()
    restarted = start_worker(worker.env, log_dir=worker.log_path.parent, port=worker.port)
    wait_healthy(restarted)
    return restarted, log


class Drops:
    """Every time a session's open socket closed under it: (when, close code), per session."""

    def __init__(self, sessions) -> None:  # type: ignore[no-untyped-def]
        self.seen: list[list[tuple[float, int | None]]] = [[] for _ in sessions]
        for session, seen in zip(sessions, self.seen, strict=True):
            state = {"was": session.client.state}

            def changed(new: str, client=session.client, seen=seen, state=state) -> None:  # type: ignore[no-untyped-def]
                if state["was"] == OPEN and new not in (OPEN, CLOSED):  # CLOSED: close()
                    seen.append((time.monotonic(), client.close_code))
                state["was"] = new

            session.client.on_state(changed)

    def between(self, start: float, end: float) -> list[int]:
        """How many drops each session had in [start, end)."""
        return [sum(start <= at < end for at, _ in seen) for seen in self.seen]

    @property
    def codes(self) -> set[int | None]:
        return {code for seen in self.seen for _, code in seen}


async def test_a_rolling_restart_closes_with_4012_and_loses_nothing(f2_workers, make_account):
    accounts = [await sync_to_async(make_account)() for _ in range(EDITORS_PER_DOCUMENT)]
    documents = [await shared_document(accounts, f"F2 {n}") for n in range(DOCUMENTS)]
    by_document = {
        document.pk: [
            # Half start on A, half on B; a socket closed by its worker moves to the other.
            editor(
                f2_workers[i % 2 :] + f2_workers[: i % 2],
                account,
                document,
                f"f2-d{document.pk}-e{i}",
                backoff_cap=1.0,
            )
            for i, account in enumerate(accounts)
        ]
        for document in documents
    }
    sessions = [session for group in by_document.values() for session in group]
    log_starts = [len(worker.log()) for worker in f2_workers]
    logs: list[str] = []
    rng = random.Random(2)
    try:
        for session in sessions:
            await session.start(timeout=60)
        timer, drops = ReconnectTimer(sessions), Drops(sessions)
        restarts: list[tuple[float, float]] = []  # (SIGTERM sent, healthy again) per worker
        stop_typing = asyncio.Event()

        async def keep_typing(session, seed: float) -> None:  # type: ignore[no-untyped-def]
            while not stop_typing.is_set():
                await type_for(session, 0.5, random.Random(seed))
                seed += 1

        typing = [asyncio.create_task(keep_typing(s, rng.random())) for s in sessions]
        await asyncio.sleep(SETTLE_SECONDS)
        for index, worker in enumerate(list(f2_workers)):  # one at a time, as operators do
            sent = time.monotonic()
            f2_workers[index], log = await asyncio.to_thread(restart, worker)
            logs.append(log[log_starts[index] :])
            restarts.append((sent, time.monotonic()))
            await asyncio.sleep(SETTLE_SECONDS)
        stop_typing.set()
        await asyncio.gather(*typing)
        for group in by_document.values():
            await probe(group, timeout=60)
    finally:
        for session in sessions:
            await session.close()

    for document in documents:
        await assert_oracles(document, by_document[document.pk])
    # Each restart moved exactly its worker's editors, each once...
    (a_sent, _), (b_sent, _) = restarts
    during_a, during_b = drops.between(a_sent, b_sent), drops.between(b_sent, float("inf"))
    assert max(during_a) == max(during_b) == 1, (during_a, during_b)
    assert sum(during_a) == len(sessions) // 2  # A's half; then B holds everyone
    assert sum(during_b) == len(sessions)
    assert drops.between(0, a_sent) == [0] * len(sessions)
    # ...and told them why: the restart code, never an abnormal 1006 or an error code.
    assert drops.codes == {CLOSE_SERVICE_RESTART}, drops.seen
    for log in [*logs, *(worker.log() for worker in f2_workers)]:
        assert "Traceback" not in log, log[-3000:]
    reconnect_ms = percentiles(timer.gaps_ms)
    record(
        "F2",
        editors=len(sessions),
        documents=DOCUMENTS,
        reconnect_ms=reconnect_ms,
        forced_reconnects=sum(during_a) + sum(during_b),
        restart_s=[round(back - sent, 2) for sent, back in restarts],
        close_codes=sorted(drops.codes),  # type: ignore[type-var]
        acked_ops=sum(len(s.editor.acked) for s in sessions),  # type: ignore[union-attr]
    )
    assert timer.still_away == 0
    if FULL:
        assert reconnect_ms["p95"] < 3000, reconnect_ms
