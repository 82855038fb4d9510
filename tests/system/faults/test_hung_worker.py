"""F12 of RELIABILITY.md: worker A hangs (``kill -STOP``) for a while, then goes on (``-CONT``).

A hung worker is worse than a dead one: its sockets stay open (the kernel still acknowledges
every byte), nothing answers, and when it wakes it finds frames its clients sent long ago.
Editors type throughout, half starting on A and half on B, each with both workers' URLs
(standing in for the load balancer). The clients on A must notice the silence through their
heartbeat (WebSocket pings: ``ping_interval`` + ``ping_timeout``, within 15 s at full scale),
move to B and send again what A never acknowledged. After ``-CONT`` A reads the op submits
that waited in its sockets and must not apply any of them a second time (the ``(client_id,
seq)`` key). Then A must serve again: a new editor on A hears the probe, and every oracle holds.
"""

from __future__ import annotations

import asyncio
import functools
import random
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from collab.client import DocumentSession
from collab.models import Document, Operation
from config.client.connection import OPEN
from monitoring.loadtest.measure import percentiles
from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.client import RealtimeClient, fetch_ticket
from tests.system.conftest import Account, worker_env
from tests.system.faults.oracles import (
    ReconnectTimer,
    assert_oracles,
    editor,
    logged_errors,
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

EDITORS_PER_DOCUMENT = scaled(ci=6, full=10)
DOCUMENTS = scaled(ci=1, full=20)
HUNG_SECONDS = scaled(ci=8.0, full=30.0)
TYPE_BEFORE_SECONDS = scaled(ci=2.0, full=15.0)
TYPE_AFTER_SECONDS = scaled(ci=2.0, full=15.0)
PAUSE_SECONDS = scaled(ci=(0.05, 0.15), full=(0.5, 1.5))
# The clients' heartbeat (WebSocket pings). A client gives a silent socket up ping_interval +
# ping_timeout after its last answer, plus the 2 s it waits for a closing handshake: 7 + 5 + 2
# is within the plan's 15 s at full scale. In CI shorter, so that clients move within the hang.
PINGS = scaled(ci={"ping_interval": 2.0, "ping_timeout": 2.0},
               full={"ping_interval": 7.0, "ping_timeout": 5.0})  # fmt: skip
DETECT_SECONDS = 15.0


@pytest.fixture(scope="module")
def f12_workers(django_db_setup: None, tmp_path_factory) -> Iterator[list[Worker]]:
    with daphne_workers(2, worker_env(), log_dir=tmp_path_factory.mktemp("f12-daphne")) as workers:
        yield workers


class Straggler:
    """A client whose op submit reached A just as A hung, and who sent it again to B: when A
    wakes it reads the stale frame, and must answer it with B's ack (the same version), not
    apply it a second time. On a document of its own, so the editors' oracles stay exact."""

    def __init__(self, account: Account, document: Document) -> None:
        self.account, self.document = account, document
        self.submit = {"version": 0, "op": ["late"], "client_id": "f12-straggler", "seq": 1}

    async def send(self, client: RealtimeClient) -> dict[str, Any]:
        return await client.request("collab.op.submit", self.submit, timeout=HUNG_SECONDS + 60)

    async def connect(self, worker: Worker) -> RealtimeClient:
        ticket = await fetch_ticket(worker.http_url(), self.account.token)
        path = f"/ws/collab/documents/{self.document.pk}/"
        client = await RealtimeClient.connect(worker.ws_url(path), ticket=ticket)
        await client.next_event("collab.document.snapshot")
        return client

    def stored(self) -> list[tuple[str, int, int]]:
        ops = Operation.objects.filter(document_id=self.document.pk)
        return list(ops.values_list("client_id", "seq", "version"))


class LeftOpen:
    """When each session first left ``open`` after ``since()``."""

    def __init__(self, sessions: list[DocumentSession]) -> None:
        self.since = float("inf")
        self.at: dict[int, float] = {}
        for session in sessions:
            session.client.on_state(functools.partial(self._changed, id(session)))

    def _changed(self, key: int, state: str) -> None:
        now = time.monotonic()
        if state != OPEN and now >= self.since:
            self.at.setdefault(key, now)


async def test_a_hung_worker_loses_its_clients_to_the_other_and_repeats_nothing(
    f12_workers, make_account
):
    worker_a, worker_b = f12_workers
    log_starts = [len(worker.log()) for worker in f12_workers]
    documents, by_document, newcomer_accounts = [], {}, {}
    for n in range(DOCUMENTS):
        accounts = [await sync_to_async(make_account)() for _ in range(EDITORS_PER_DOCUMENT + 1)]
        document = await shared_document(accounts, f"F12 {n}")
        documents.append(document)
        by_document[document.pk] = [
            # Half start on A, half on B; each moves to the other when its worker fails.
            editor(
                f12_workers[i % 2 :] + f12_workers[: i % 2],
                account,
                document,
                f"f12-d{document.pk}-e{i}",
                **PINGS,
            )
            for i, account in enumerate(accounts[1:])
        ]
        newcomer_accounts[document.pk] = accounts[0]  # joins A after the hang
    sessions = [session for group in by_document.values() for session in group]
    on_a = [s for s in sessions if s.client.url.startswith(worker_a.ws_url(""))]
    newcomers: dict[int, DocumentSession] = {}
    stragglers: list[RealtimeClient] = []
    owner = await sync_to_async(make_account)()
    straggler = Straggler(owner, await shared_document([owner], "F12 straggler"))
    rng = random.Random(29)
    try:
        for session in sessions:
            await session.start(timeout=60)
        late = await straggler.connect(worker_a)
        late_b = await straggler.connect(worker_b)
        stragglers = [late, late_b]
        b_answered: list[float] = []
        timer = ReconnectTimer(sessions)
        left = LeftOpen(on_a)
        seconds = TYPE_BEFORE_SECONDS + HUNG_SECONDS + TYPE_AFTER_SECONDS
        typing = [
            asyncio.create_task(type_for(s, seconds, random.Random(rng.random()), PAUSE_SECONDS))
            for s in sessions
        ]
        await asyncio.sleep(TYPE_BEFORE_SECONDS)
        worker_a.process.send_signal(signal.SIGSTOP)
        left.since = stopped_at = time.monotonic()
        unacked_at_stop = sum(1 for s in on_a if s.editor and s.editor.inflight is not None)
        # Sent to A just as it hung, and again to B: the answers must agree.
        stale = asyncio.create_task(straggler.send(late))
        again = asyncio.create_task(straggler.send(late_b))
        again.add_done_callback(lambda _: b_answered.append(time.monotonic()))
        await asyncio.sleep(HUNG_SECONDS)
        worker_a.process.send_signal(signal.SIGCONT)
        on_b = await again
        try:
            answer_from_a: dict | None = await stale
        except ConnectionError:  # A dropped the socket on waking instead: also applies nothing
            answer_from_a = None
        await asyncio.gather(*typing)
        for session in sessions:
            await session.settled(timeout=60)
        for pk, account in newcomer_accounts.items():
            document = next(d for d in documents if d.pk == pk)
            newcomers[pk] = editor([worker_a], account, document, f"f12-d{pk}-new")
            await newcomers[pk].start(timeout=30)
        for pk, group in by_document.items():
            await probe([newcomers[pk], *group], timeout=60)
    finally:
        worker_a.process.send_signal(signal.SIGCONT)  # harmless when it runs
        for session in sessions + list(newcomers.values()):
            await session.close()
        for client in stragglers:
            await client.close()

    for document in documents:  # each acknowledged op stored once, the stale ones included
        await assert_oracles(document, [newcomers[document.pk], *by_document[document.pk]])
    # The stale frame: answered by A with B's version (ShareDB's duplicate), stored once.
    assert on_b["type"] == "ack", on_b
    assert await sync_to_async(straggler.stored)() == [("f12-straggler", 1, 1)]
    if answer_from_a is not None or not FULL:
        # In CI the hang is shorter than Daphne's own ping timeout, so A keeps the socket;
        # after 30 s it may drop it at once on waking, before reading what waited in it.
        assert answer_from_a is not None and answer_from_a["type"] == "ack", answer_from_a
        assert answer_from_a["data"] == on_b["data"] == {"version": 1}, (answer_from_a, on_b)
    assert all(worker.alive() for worker in f12_workers)
    for worker, start in zip(f12_workers, log_starts, strict=True):
        assert logged_errors(worker, start) == []
    assert on_a, "nobody was on the hung worker"
    assert sorted(left.at) == sorted(id(s) for s in on_a), "a client on A never gave it up"
    moved = [s for s in on_a if s.client.url.startswith(worker_b.ws_url(""))]
    assert len(moved) == len(on_a), "a client on A did not move to B"
    assert all(s.client.connections == 1 for s in sessions if s not in on_a), "B dropped one"
    detected_s = [round(at - stopped_at, 2) for at in left.at.values()]
    record(
        "F12",
        editors=len(sessions),
        documents=DOCUMENTS,
        on_hung_worker=len(on_a),
        hung_s=HUNG_SECONDS,
        detected_s=percentiles(detected_s),
        reconnect_ms=percentiles(timer.gaps_ms),
        unacked_at_stop=unacked_at_stop,
        stale_submit_answer=answer_from_a and answer_from_a["type"],
        # How long B took to ack a submit on another document while A hung: B's one ORM
        # thread waits as long as A holds a document row lock it took just before it hung.
        other_worker_ack_s=round(b_answered[0] - stopped_at, 2),
        acked_ops=sum(len(s.editor.acked) for s in sessions),  # type: ignore[union-attr]
    )
    if FULL:  # RELIABILITY.md's bound, at its scale (timings are not asserted in CI)
        assert max(detected_s) <= DETECT_SECONDS, detected_s
