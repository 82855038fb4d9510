"""What the fault tests share: a document edited by the project's client on both workers, the
typing, the probe, and the oracles of RELIABILITY.md section 1, checked after each fault.

    document = await shared_document(accounts, "F3")
    sessions = [editor(worker, account, document, f"e{i}") for ...]
    ...fault...
    await probe(sessions)                # one more edit must reach every editor
    await assert_oracles(document, sessions)
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from collab import ot
from collab.client import DocumentSession
from collab.models import Document, Operation, Role
from collab.services import document_create, member_set
from config.client.connection import CONNECTING, OFFLINE, OPEN
from monitoring.loadtest.workers import Worker
from tests.system.client import ORIGIN, fetch_ticket
from tests.system.conftest import Account


def document_shared_by(accounts: list[Account], title: str, role: str = Role.EDITOR) -> Document:
    """A document the first account owns and the others have ``role`` on, committed."""
    owner = get_user_model().objects.get(pk=accounts[0].user_id)
    document = document_create(owner=owner, title=title, content="")
    for account in accounts[1:]:
        member_set(user=owner, document_id=document.pk, member_id=account.user_id, role=role)
    return document


@sync_to_async
def shared_document(accounts: list[Account], title: str) -> Document:
    """A document the first account owns and the others may edit, committed for the workers."""
    return document_shared_by(accounts, title)


def editor(
    workers: list[Worker], account: Account, document: Document, name: str, **options
) -> DocumentSession:
    """An editor on the first worker given; with more, it moves to the next when one fails,
    and its tickets come from whichever answers, starting with the worker its next socket
    goes to (as a load balancer would send both to a live worker: asking a stopping or hung
    worker first cost each reconnect the HTTP timeout, F2 and F12)."""
    path = f"/ws/collab/documents/{document.pk}/"
    urls = [worker.ws_url(path) for worker in workers]

    async def ticket() -> str:
        next_url = session.client.url
        for worker in sorted(workers, key=lambda worker: worker.ws_url(path) != next_url):
            try:
                return await fetch_ticket(worker.http_url(), account.token)
            except OSError:
                continue
        raise ConnectionError("no worker answers")

    session = DocumentSession(urls, client_id=name, ticket=ticket, origin=ORIGIN,
                              **{"backoff_cap": 2.0, **options})  # fmt: skip
    return session


async def type_for(
    session: DocumentSession,
    seconds: float,
    rng: random.Random,
    pause: tuple[float, float] = (0.05, 0.15),
) -> None:
    """Random one-character edits every ``pause`` seconds (50-150 ms), online or not."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until:
        position = rng.randint(0, len(session.text))
        session.edit([position, rng.choice("abcxyz")] if position else ["q"])
        await asyncio.sleep(rng.uniform(*pause))


async def document_editors(
    workers: list[Worker],
    make_account: Callable[[], Account],
    label: str,
    documents: int,
    typists: int,
) -> tuple[list[Document], dict[int, list[DocumentSession]], dict[int, DocumentSession]]:
    """Documents, each with typists split over the workers (one each, no failover) and a quiet
    editor on the first, who makes one edit after a fault to time how soon it reaches everyone.
    An account per session: tickets are rate limited per user."""
    made, by_document, quiet = [], {}, {}
    for n in range(documents):
        accounts = [await sync_to_async(make_account)() for _ in range(typists + 1)]
        document = await shared_document(accounts, f"{label} {n}")
        name = f"{label}-d{document.pk}"
        made.append(document)
        by_document[document.pk] = [
            editor([workers[i % len(workers)]], account, document, f"{name}-e{i}")
            for i, account in enumerate(accounts[1:])
        ]
        quiet[document.pk] = editor([workers[0]], accounts[0], document, f"{name}-q")
    return made, by_document, quiet


class ReconnectTimer:
    """How long each session was away: from leaving ``open`` to being open again, per gap.

    timer = ReconnectTimer(sessions)      # before the fault
    ...fault, recovery...
    percentiles(timer.gaps_ms)            # measure.percentiles
    """

    def __init__(self, sessions: list[DocumentSession]) -> None:
        self.gaps_ms: list[float] = []
        self._left: dict[int, float] = {}  # session -> when it left "open"
        self._state = {id(session): session.client.state for session in sessions}
        for session in sessions:
            session.client.on_state(functools.partial(self._changed, id(session)))

    def _changed(self, key: int, state: str) -> None:
        now, before = time.monotonic(), self._state[key]
        self._state[key] = state
        if state == OPEN and key in self._left:
            self.gaps_ms.append((now - self._left.pop(key)) * 1000)
        elif before == OPEN and state in (CONNECTING, OFFLINE):
            self._left[key] = now  # a first connect is not a reconnect: only gaps after open

    @property
    def still_away(self) -> int:
        return len(self._left)


async def probe(sessions: list[DocumentSession], timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Every editor settled; then one more edit, which must reach all of them."""
    for session in sessions:
        await session.settled(timeout=timeout)
    sessions[0].edit([len(sessions[0].text), "!"])
    await sessions[0].settled(timeout=timeout)
    async with asyncio.timeout(timeout):
        while {s.version for s in sessions} != {sessions[0].version}:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def assert_oracles(document: Document, sessions: list[DocumentSession]) -> None:
    """Convergence (replicas = snapshot = replay of the stored ops), the probe arrived, no
    acknowledged op lost, none applied twice, and no editor left with an error."""
    stored = await sync_to_async(Document.objects.get)(pk=document.pk)
    ops = await sync_to_async(
        lambda: list(Operation.objects.filter(document_id=document.pk).order_by("version"))
    )()
    replayed = ""
    for operation in ops:
        replayed = ot.apply(replayed, operation.op)
    keys = [(op.client_id, op.seq) for op in ops]
    acked = sorted((s.client_id, seq) for s in sessions for seq in s.editor.acked)  # type: ignore[union-attr]

    assert [s.errors for s in sessions] == [[]] * len(sessions)
    assert [s.text for s in sessions] == [stored.content] * len(sessions)
    assert stored.content.endswith("!"), "the probe did not arrive"
    assert replayed == stored.content
    assert [op.version for op in ops] == list(range(1, stored.version + 1))
    assert len(keys) == len(set(keys)), "an op was applied twice"
    assert sorted(keys) == acked, "an acknowledged op is missing (or an unacknowledged stored)"


def logged_errors(worker: Worker, since: int = 0) -> list[str]:
    """ERROR and CRITICAL lines of a worker's log from offset ``since``: uncaught exceptions
    (Daphne's "Exception inside application") and our own ``log.exception``. Warnings about an
    outage, with their tracebacks, are what a fault test expects and are not counted, nor is
    Django's line for a 503 (the answer during an outage, by policy)."""
    return [
        line
        for line in worker.log()[since:].splitlines()
        if (" ERROR " in line or " CRITICAL " in line)
        and " ERROR django.request Service Unavailable: " not in line
    ]


def time_submits(session: DocumentSession, into: list[tuple[float, float, bool]]) -> None:
    """From now on, append ``(sent at, ms until answered, acked)`` for every op submit of this
    session: each attempt, an ack or a (retryable) error frame; an attempt left unanswered by a
    drop counts until the answer on the next socket."""
    command = session.client.command

    async def timed(message_type: str, data=None, **options):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        acked = False
        try:
            reply = await command(message_type, data, **options)
            acked = True
            return reply
        finally:
            if message_type == "collab.op.submit":
                into.append((started, (time.monotonic() - started) * 1000, acked))

    session.client.command = timed  # type: ignore[method-assign]


def arrivals(session: DocumentSession) -> dict[int, float]:
    """From now on, version -> when this session was sent that op (live or filled from the
    database), for timing how soon an edit reached everyone."""
    seen: dict[int, float] = {}
    session.client.on(
        "collab.op.applied", lambda frame: seen.setdefault(frame["seq"], time.monotonic())
    )
    return seen
