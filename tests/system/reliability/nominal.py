"""L-nominal of RELIABILITY.md section 1, driven from one process with the project's own clients,
for L1 and L2 (test_nominal_load.py).

Editors are ``collab.client.DocumentSession`` (one op in flight, the rest buffered), at about one
op/s each; chat users are ``config.client.RealtimeClient`` on a comments thread (a room), each
posting about 0.2 comments/s and 0.1 reactions/s; both beat the presence heartbeat the welcome
names (15 s). Timed on the client side with ``time.monotonic`` (every client is in this process):
op ack (send -> ack), remote-op fan-out (the author's send -> each other editor's receipt) and
chat delivery (send -> each other member's receipt).

    load = await nominal_load(workers, make_account, "L1", documents=2, editors=3, rooms=2,
                              members=3)
    await load.start()
    await load.run(seconds=15)
    await load.settle()           # a probe edit in each document, every chat item delivered
    await load.close()
    await load.assert_correct()   # section 1's oracles, every chat item once everywhere
"""

from __future__ import annotations

import asyncio
import functools
import random
import re
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async

from collab.client import DocumentSession
from collab.models import Document, Role
from comments.models import Comment, Reaction
from comments.services import thread_create
from comments.services.events import thread_group
from config.client import RealtimeClient
from monitoring.loadtest.logs import scan_logs
from monitoring.loadtest.measure import percentiles
from monitoring.loadtest.workers import Worker
from tests.system.client import ORIGIN, fetch_ticket
from tests.system.conftest import Account
from tests.system.faults.oracles import (
    assert_oracles,
    document_shared_by,
    editor,
    probe,
    shared_document,
    type_for,
)

EDIT_PAUSE_SECONDS = (0.5, 1.5)  # between one editor's edits: 1 op/s on average
COMMENTS_PER_SECOND = 0.2  # per chat user
REACTIONS_PER_SECOND = 0.1
REACTION_KINDS = ("like", "love", "laugh", "wow", "sad", "angry")
SETTLE_SECONDS = 60.0
# Daphne's access log (stdout, as the workers run): host ident user [date] "request" status size.
SERVER_ERROR = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "[^"]*" 5\d\d ', re.M)


def ticket_source(workers: list[Worker], account: Account) -> Callable[[], Any]:
    """A fresh ticket for every connection, from the first worker that answers."""

    async def ticket() -> str:
        for worker in workers:
            try:
                return await fetch_ticket(worker.http_url(), account.token)
            except OSError:
                continue
        raise ConnectionError("no worker answers")

    return ticket


@dataclass
class OpClock:
    """Ack and fan-out times of the ops of the sessions it watches. It wraps each session's
    ``client.command``, as ``oracles.time_submits`` does, to see the submit (its ``client_id``
    and ``seq``) as it goes and its ack as it is read; DocumentSession stays as it is."""

    sent: dict[tuple[str, int], float] = field(default_factory=dict)  # first send of each op
    ack_ms: array[float] = field(default_factory=lambda: array("d"))
    fanout_ms: array[float] = field(default_factory=lambda: array("d"))

    def watch(self, session: DocumentSession) -> None:
        command = session.client.command

        async def timed(message_type: str, data=None, *, on_reply=None, **options):  # type: ignore[no-untyped-def]
            if message_type != "collab.op.submit":
                return await command(message_type, data, on_reply=on_reply, **options)
            started = time.monotonic()
            self.sent.setdefault((data["client_id"], data["seq"]), started)

            def answered(frame: dict[str, Any]) -> None:
                if frame["type"] == "ack":
                    self.ack_ms.append((time.monotonic() - started) * 1000)
                if on_reply is not None:
                    on_reply(frame)

            return await command(message_type, data, on_reply=answered, **options)

        session.client.command = timed  # type: ignore[method-assign]
        session.client.on("collab.op.applied", functools.partial(self._applied, session.client_id))

    def _applied(self, receiver: str, frame: dict[str, Any]) -> None:
        data = frame["data"]
        sent = self.sent.get((data.get("client_id"), data.get("seq")))
        if sent is not None and data.get("client_id") != receiver:
            self.fanout_ms.append((time.monotonic() - sent) * 1000)


@dataclass
class ChatRoom:
    """A comments thread and what was posted in it: ``c:<client_msg_id>`` for a comment,
    ``r:<user>:<comment>:<kind>`` for a reaction."""

    thread_id: int
    users: list[ChatUser] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    delivery_ms: array[float] = field(default_factory=lambda: array("d"))

    def delivered(self) -> bool:
        return all(user.received.keys() >= self.acked for user in self.users)


class ChatUser:
    """One member of a room on the project's realtime client; posts and reacts, and counts
    every comment and reaction the thread's stream brings it."""

    def __init__(self, workers: list[Worker], account: Account, room: ChatRoom, name: str) -> None:
        self.user_id, self.room, self.name = account.user_id, room, name
        self.received: Counter[str] = Counter()
        self.comments: list[int] = []  # ids seen, to react to
        self.reacted: set[tuple[int, str]] = set()
        self.errors: list[Exception] = []
        self.posted = 0
        self._ready = asyncio.Event()
        stream = thread_group(room.thread_id)
        path = f"/ws/comments/threads/{room.thread_id}/"
        self.client = RealtimeClient(
            [worker.ws_url(path) for worker in workers],
            ticket=ticket_source(workers, account),
            origin=ORIGIN,
            resume=lambda last: {"since": last.get(stream)},  # gap-fill after a drop
            backoff_cap=2.0,
        )
        self.client.on("comments.thread.snapshot", self._on_snapshot)
        self.client.on("comments.comment.created", self._on_comment)
        self.client.on("comments.reaction.added", self._on_reaction)

    async def start(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        await self.client.start()
        async with asyncio.timeout(timeout):
            await self._ready.wait()

    async def chat_for(self, seconds: float, rng: random.Random) -> None:
        """Comments and reactions at their L-nominal rates, spaced 0.5-1.5 x their mean."""
        loop = asyncio.get_running_loop()
        until, rate = loop.time() + seconds, COMMENTS_PER_SECOND + REACTIONS_PER_SECOND
        while loop.time() + (pause := rng.uniform(0.5, 1.5) / rate) < until:
            await asyncio.sleep(pause)
            react = rng.random() < REACTIONS_PER_SECOND / rate
            target = self._reaction_target(rng) if react else None
            await (self._post() if target is None else self._react(*target))

    async def _post(self) -> None:
        self.posted += 1
        key = f"{self.name}.{self.posted}"
        data = {"body": f"hello {self.posted}", "client_msg_id": key}
        await self._write(f"c:{key}", "comments.comment.create", data)

    async def _react(self, comment_id: int, kind: str) -> None:
        data = {"comment_id": comment_id, "kind": kind}
        await self._write(f"r:{self.user_id}:{comment_id}:{kind}", "comments.reaction.add", data)

    async def _write(self, key: str, message_type: str, data: dict[str, Any]) -> None:
        self.room.sent_at[key] = time.monotonic()
        try:
            reply = await self.client.command(message_type, data, timeout=SETTLE_SECONDS)
        except Exception as error:  # an error frame, or no answer: counted, asserted empty
            self.errors.append(error)
            return
        if reply.get("duplicate") or reply.get("seq") is None:
            self.errors.append(RuntimeError(f"{key} changed nothing: {reply}"))
            return
        self.room.acked.add(key)

    def _reaction_target(self, rng: random.Random) -> tuple[int, str] | None:
        """A comment seen and a kind not yet put on it: one already there would send nothing."""
        for _ in range(4):
            choice = (rng.choice(self.comments), rng.choice(REACTION_KINDS))
            if choice not in self.reacted:
                self.reacted.add(choice)
                return choice
        return None

    def _on_snapshot(self, frame: dict[str, Any]) -> None:
        self.comments = [comment["id"] for comment in frame["data"]["comments"]]
        self._ready.set()

    def _on_comment(self, frame: dict[str, Any]) -> None:
        comment = frame["data"]["comment"]
        self.comments.append(comment["id"])
        self._received(f"c:{comment['client_msg_id']}", (comment["author"] or {}).get("id"))

    def _on_reaction(self, frame: dict[str, Any]) -> None:
        data = frame["data"]
        author = data["user"]["id"]
        self._received(f"r:{author}:{data['comment_id']}:{data['kind']}", author)

    def _received(self, key: str, author: int | None) -> None:
        now = time.monotonic()
        self.received[key] += 1
        sent = self.room.sent_at.get(key)
        if sent is not None and author != self.user_id and self.received[key] == 1:
            self.room.delivery_ms.append((now - sent) * 1000)


@dataclass
class NominalLoad:
    documents: dict[int, Document]
    editors: dict[int, list[DocumentSession]]  # by document id
    rooms: list[ChatRoom]
    clock: OpClock
    typed_s: float = 0.0

    @property
    def sessions(self) -> list[DocumentSession]:
        return [session for group in self.editors.values() for session in group]

    @property
    def chat_users(self) -> list[ChatUser]:
        return [user for room in self.rooms for user in room.users]

    async def start(self) -> None:
        for session in self.sessions:
            await session.start(timeout=60)
        for user in self.chat_users:
            await user.start()

    async def run(self, seconds: float, seed: int = 1) -> None:
        rng = random.Random(seed)
        started = time.monotonic()
        await asyncio.gather(
            *(type_for(s, seconds, random.Random(rng.random()), EDIT_PAUSE_SECONDS)
              for s in self.sessions),
            *(u.chat_for(seconds, random.Random(rng.random())) for u in self.chat_users),
        )  # fmt: skip
        self.typed_s = time.monotonic() - started

    async def settle(self) -> None:
        for group in self.editors.values():
            await probe(group, timeout=SETTLE_SECONDS)
        async with asyncio.timeout(SETTLE_SECONDS):
            while not all(room.delivered() for room in self.rooms):  # noqa: ASYNC110
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()
        for user in self.chat_users:
            await user.client.close()

    @property
    def reconnects(self) -> int:
        """Sockets opened beyond each client's first: every one followed an unexpected close."""
        clients = [s.client for s in self.sessions] + [u.client for u in self.chat_users]
        return sum(client.connections - 1 for client in clients)

    async def assert_correct(self) -> None:
        """Section 1's oracles for every document; every acked chat item reached every member
        of its room exactly once (sender included) and is stored once; no client saw an error."""
        for document_id, group in self.editors.items():
            await assert_oracles(self.documents[document_id], group)
        assert {u.name: u.errors for u in self.chat_users if u.errors} == {}
        for room in self.rooms:
            once = Counter(room.acked)
            assert [user.received for user in room.users] == [once] * len(room.users)
            assert await stored_chat(room.thread_id) == once

    def figures(self) -> dict[str, Any]:
        return {
            "editors": len(self.sessions),
            "documents": len(self.documents),
            "chat_users": len(self.chat_users),
            "rooms": len(self.rooms),
            "typed_s": round(self.typed_s, 1),
            "acked_ops": sum(len(s.editor.acked) for s in self.sessions),  # type: ignore[union-attr]
            "ops_retried": sum(s.retried for s in self.sessions),
            "chat_items": sum(len(room.acked) for room in self.rooms),
            "ack_ms": percentiles(self.clock.ack_ms),
            "fanout_ms": percentiles(self.clock.fanout_ms),
            "chat_ms": percentiles([ms for room in self.rooms for ms in room.delivery_ms]),
            "reconnects": self.reconnects,
        }


async def nominal_load(
    workers: list[Worker],
    make_account: Callable[[], Account],
    label: str,
    *,
    documents: int,
    editors: int,
    rooms: int,
    members: int,
) -> NominalLoad:
    """Documents with ``editors`` each and rooms with ``members`` each, an account per client
    (limits are per user); each client starts on one worker (alternating, as a load balancer
    would spread them) and moves to the other should it fail."""
    clock, made, by_document, chat = OpClock(), {}, {}, []
    for n in range(documents):
        accounts = [await sync_to_async(make_account)() for _ in range(editors)]
        document = await shared_document(accounts, f"{label} {n}")
        made[document.pk] = document
        name = f"{label}-d{document.pk}-e"
        group = [
            editor(rotated(workers, i), account, document, f"{name}{i}")
            for i, account in enumerate(accounts)
        ]
        for session in group:
            clock.watch(session)
        by_document[document.pk] = group
    for n in range(rooms):
        accounts = [await sync_to_async(make_account)() for _ in range(members)]
        room = ChatRoom(await chat_thread(accounts, f"{label} room {n}"))
        name = f"{label}-r{room.thread_id}-u"
        room.users = [
            ChatUser(rotated(workers, i), account, room, f"{name}{i}")
            for i, account in enumerate(accounts)
        ]
        chat.append(room)
    return NominalLoad(made, by_document, chat, clock)


def rotated(workers: list[Worker], i: int) -> list[Worker]:
    """Client i's workers: the i-th first, the others after it to fail over to."""
    k = i % len(workers)
    return workers[k:] + workers[:k]


@sync_to_async
def chat_thread(accounts: list[Account], title: str) -> int:
    """A thread on a document of the first account that the others may see (and so write in)."""
    document = document_shared_by(accounts, title, Role.VIEWER)
    thread = thread_create(user=document.owner, target_kind="document", target_id=document.pk,
                           body="Room", client_msg_id="room")  # fmt: skip
    return thread.thread["id"]


@sync_to_async
def stored_chat(thread_id: int) -> Counter[str]:
    """What PostgreSQL holds of a room's posts, keyed as the clients key them."""
    comments = Comment.objects.filter(thread_id=thread_id).exclude(client_msg_id="room")
    reactions = Reaction.objects.filter(comment__thread_id=thread_id)
    return Counter(
        [f"c:{key}" for key in comments.values_list("client_msg_id", flat=True)]
        + [f"r:{u}:{c}:{k}" for u, c, k in reactions.values_list("user_id", "comment_id", "kind")]
    )


def log_problems(workers: list[Worker], starts: list[int]) -> dict[str, Any]:
    """What the workers logged from ``starts`` on that a clean run never logs: tracebacks, ERROR
    lines, "over capacity", Redis pool trouble (monitoring.loadtest.logs) and 5xx answers."""
    texts = [worker.log()[start:] for worker, start in zip(workers, starts, strict=True)]
    found = scan_logs(texts) or {}
    found["http_5xx"] = sum(len(SERVER_ERROR.findall(text)) for text in texts)
    return found
