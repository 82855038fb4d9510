"""The collaborative-editing scenarios (DESIGN sections 6 and 9), run from the parent process.

    result = run_ot(target, OtOptions(documents=1, editors=20, duration=20))     # ot-hot
    result = run_ot(target, OtOptions(documents=100, editors=1, duration=20))    # ot-many
    result = run_join(target, JoinOptions(size_kb=100, joins=200))               # join

They reuse ``scenarios.Run`` (generator processes, phases, measurement windows, the JSON line)
with the children of ot.py. Documents and members are created here, in the workers' database,
before any window. Editor i is load user i + 1 and talks to URL i mod N.

**ot-hot / ot-many.** Every editor connects and takes its snapshot; then all edit for
``duration`` seconds (ot.py: one op in flight each); then they stop and the run waits until
every editor is settled and at its document's final version. The "edit" window covers all of
it, so its server CPU is all the work for the ops acked in it. Afterwards, per document:
every editor's text equals ``Document.content``, replaying every ``Operation`` from "" gives it
too, versions are 1..N without a gap, and the ops acked equal the ops committed. ``ok`` is false
otherwise (the command then exits non-zero).

**join.** One document of ``size_kb`` KiB, joined ``joins`` times (``concurrency`` at a time, a
fresh ticket each) from one generator process: TCP connect -> ``collab.document.snapshot``. The
first ``warmup`` joins are not measured. Every snapshot's content must equal the database's.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

import collab.ot as ot
from collab.models import Document, Operation
from collab.services import document_create, member_set
from monitoring.loadtest import measure
from monitoring.loadtest.ot import (
    WS_PATH,
    EditorSpec,
    JoinPlan,
    OtPlan,
    ot_generator_main,
    text_digest,
)
from monitoring.loadtest.scenarios import MARGIN_SECONDS, ORPHAN_SECONDS, Run, Target, merged
from monitoring.loadtest.users import load_user_ids, mint_tickets

INITIAL_CHARS = 1000  # an edited document's starting text
SETTLE_SECONDS = 0.5  # after the last snapshot, before the edit window
JOIN_USERS = 100  # joins cycle over this many load users (a ticket is single-use, a user not)


@dataclass
class OtOptions:
    documents: int
    editors: int  # per document
    duration: float
    settle: float = 15.0  # bound on the wait for editors to settle and converge
    type_interval: float = 0.02  # seconds between keystrokes into a busy editor's buffer
    seed: int = 0


@dataclass
class JoinOptions:
    size_kb: float
    joins: int
    concurrency: int = 1
    warmup: int = 10


def _content(chars: int, seed: int) -> str:
    rng = random.Random(seed)  # noqa: S311 - filler text
    words = []
    length = 0
    while length < chars:
        word = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:chars]


def _users(count: int) -> list[Any]:
    ids = load_user_ids(count)
    users = get_user_model().objects.in_bulk(ids)
    return [users[pk] for pk in ids]


def _base_urls(target: Target) -> list[str]:
    return [url.rstrip("/") for url in target.urls]


# --- ot-hot / ot-many --------------------------------------------------------------------------
def create_documents(options: OtOptions) -> list[int]:
    """``documents`` documents with ``editors`` editors each."""
    users = _users(options.documents * options.editors)
    groups = [
        users[d * options.editors : (d + 1) * options.editors] for d in range(options.documents)
    ]
    return create_shared_documents(groups, title="load", seed=options.seed)


def create_shared_documents(
    groups: list[list[Any]], *, title: str, seed: int, chars: int = INITIAL_CHARS
) -> list[int]:
    """One document per group of users: document d belongs to its group's first user, the
    others are added as editors; each starts with ``chars`` characters of seeded text."""
    ids = []
    with transaction.atomic():
        for d, members in enumerate(groups):
            document = document_create(
                owner=members[0],
                title=f"{title} {d}",
                content=_content(chars, seed=seed + d),
            )
            for user in members[1:]:
                member_set(
                    user=members[0], document_id=document.pk, member_id=user.pk, role="editor"
                )
            ids.append(document.pk)
    return ids


class OtRun(Run):
    entry = staticmethod(ot_generator_main)

    def __init__(self, target: Target, options: OtOptions, document_ids: list[int]) -> None:
        super().__init__(target, options.documents * options.editors, options.editors)
        self.options = options
        self.document_ids = document_ids

    def _plan(self, proc: int, specs: list[EditorSpec], common: dict[str, Any]) -> OtPlan:
        return OtPlan(
            proc,
            editors=specs,
            type_interval=self.options.type_interval,
            seed=self.options.seed,
            **common,
        )

    def _spec(self, i: int, url: str, ticket: str) -> EditorSpec:
        document = i // self.members
        return EditorSpec(
            i, f"{url}{WS_PATH.format(self.document_ids[document])}?ticket={ticket}", document
        )

    def edit(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        options = self.options
        t0 = time.monotonic() + 0.5
        for _, conn in self.children:
            conn.send(("edit", t0, options.duration, options.settle))
        measure.wait_until(t0)
        with self.window("edit", unit="op") as window:
            edited = self._gather("edited", timeout=options.duration + options.settle + 30)
            # Every editor at its document's final version: the last broadcasts are delivered
            # inside the window too.
            finals = dict(
                Document.objects.filter(pk__in=self.document_ids).values_list("pk", "version")
            )
            versions = {d: finals[pk] for d, pk in enumerate(self.document_ids)}
            for _, conn in self.children:
                conn.send(("converge", versions, options.settle))
            converged = self._gather("converged", timeout=options.settle + MARGIN_SECONDS)
            window["units"] = sum(r["acks"] for r in edited)
        acks = sum(r["acks"] for r in edited)
        last_ack = max((r["last_ack"] for r in edited if r["last_ack"]), default=t0)
        return (
            {
                "submits": sum(r["submits"] for r in edited),
                "acked": acks,
                "ops_per_s": round(acks / window["seconds"], 1) if window.get("seconds") else None,
                "ops_per_s_to_last_ack": round(acks / max(last_ack - t0, 1e-9), 1),
                "ack_ms": measure.percentiles([v for r in edited for v in r["latencies_ms"]]),
                "unsettled": sum(r["unsettled"] for r in edited),
                "failed_editors": sum(r["failed_editors"] for r in edited),
                "error_frames": merged(edited, "errors"),
                "generator_loop_cpu_s": round(sum(r["cpu_seconds"] for r in edited), 3),
                "remote_ops_received": sum(r["remote_ops"] for r in converged),
            },
            [editor for r in converged for editor in r["editors"]],
        )


def check_documents(
    document_ids: list[int], initial_versions: list[int], editors: list[dict[str, Any]]
) -> dict[str, Any]:
    """Every editor's text is the snapshot; replaying the stored ops gives the snapshot."""
    by_document: dict[int, list[dict[str, Any]]] = {}
    for editor in editors:
        by_document.setdefault(editor["document"], []).append(editor)
    problems: list[str] = []
    committed = 0
    replayed_ok = editors_ok = 0
    lengths = []
    for d, pk in enumerate(document_ids):
        document = Document.objects.get(pk=pk)
        digest = text_digest(document.content)
        lengths.append(len(document.content))
        text, expected = "", 1
        gap = False
        for version, op in (
            Operation.objects.filter(document_id=pk)
            .order_by("version")
            .values_list("version", "op")
        ):
            gap |= version != expected
            expected = version + 1
            text = ot.apply(text, op)
        ops = expected - 1
        committed += document.version - initial_versions[d]
        if gap or ops != document.version:
            problems.append(
                f"document {pk}: ops 1..{ops} with gaps={gap}, version {document.version}"
            )
        if text == document.content:
            replayed_ok += 1
        else:
            problems.append(f"document {pk}: replaying {ops} ops does not give the snapshot")
        for editor in by_document.get(d, []):
            if editor["sha256"] == digest and editor["version"] == document.version:
                editors_ok += 1
            else:
                problems.append(
                    f"document {pk}: editor {editor['index']} at v{editor['version']} "
                    f"({editor['length']} chars) vs v{document.version} ({len(document.content)})"
                )
    return {
        "ops_committed": committed,
        "documents_replayed_ok": replayed_ok,
        "editors_converged": editors_ok,
        "document_chars": {"min": min(lengths, default=0), "max": max(lengths, default=0)},
        "problems": problems[:20],
    }


def run_ot(target: Target, options: OtOptions) -> dict[str, Any]:
    document_ids = create_documents(options)
    initial = dict(Document.objects.filter(pk__in=document_ids).values_list("pk", "version"))
    initial_versions = [initial[pk] for pk in document_ids]
    clients = options.documents * options.editors
    with OtRun(target, options, document_ids) as run:
        connected = run.connect()
        time.sleep(SETTLE_SECONDS)
        edit, editors = run.edit()
        stopped = run.stop()
    check = check_documents(document_ids, initial_versions, editors)
    converged = (
        connected["established"] == clients
        and check["editors_converged"] == clients
        and check["documents_replayed_ok"] == options.documents
        and not check["problems"]
    )
    ok = (
        converged
        and check["ops_committed"] == edit["acked"]
        and edit["unsettled"] == 0
        and edit["failed_editors"] == 0
        and not edit["error_frames"]
    )
    results = {
        "ok": ok,
        "converged": converged,
        **connected,
        **edit,
        **check,
        "document_ids": [document_ids[0], document_ids[-1]],
        "held_to_end": stopped["open"],
        "closed_by_server": stopped["closed_by_server"],
    }
    scenario = "ot-hot" if options.documents == 1 else "ot-many"
    return run.result(scenario, asdict(options), results)


# --- join --------------------------------------------------------------------------------------
class JoinRun(Run):
    entry = staticmethod(ot_generator_main)

    def __init__(self, target: Target, options: JoinOptions, document_id: int, digest: str):
        super().__init__(target, options.warmup + options.joins, 1)
        self.procs = 1  # sequential (or lightly concurrent) joins: one generator is plenty
        self.options = options
        self.document_id = document_id
        self.digest = digest

    def _tickets(self) -> list[str]:
        ids = load_user_ids(min(JOIN_USERS, self.clients))
        per_join = self.target.handshake_timeout / max(1, self.options.concurrency)
        ttl = int(60 + MARGIN_SECONDS + min(self.clients * per_join, 3600))
        return mint_tickets([ids[j % len(ids)] for j in range(self.clients)], ttl=ttl)

    def _plans(self, tickets: list[str]) -> list[JoinPlan]:
        urls = _base_urls(self.target)
        path = WS_PATH.format(self.document_id)
        return [
            JoinPlan(
                proc=0,
                procs=1,
                urls=[f"{urls[j % len(urls)]}{path}?ticket={t}" for j, t in enumerate(tickets)],
                origin=self.target.origin,
                handshake_timeout=self.target.handshake_timeout,
                deadline=time.monotonic() + ORPHAN_SECONDS,
                expected_sha256=self.digest,
            )
        ]

    def join(self, start: int, stop: int) -> dict[str, Any]:
        ((_, conn),) = self.children
        conn.send(("join", self.options.concurrency, start, stop))
        rounds = math.ceil((stop - start) / max(1, self.options.concurrency))
        timeout = rounds * (self.target.handshake_timeout + 10) + MARGIN_SECONDS
        return self._gather("joined", timeout=timeout)[0]


def create_join_document(options: JoinOptions) -> Document:
    users = _users(min(JOIN_USERS, options.warmup + options.joins))
    with transaction.atomic():
        document = document_create(
            owner=users[0],
            title="load join",
            content=_content(int(options.size_kb * 1024), seed=1),
        )
        for user in users[1:]:
            member_set(user=users[0], document_id=document.pk, member_id=user.pk, role="viewer")
    return document


def run_join(target: Target, options: JoinOptions) -> dict[str, Any]:
    document = create_join_document(options)
    digest = text_digest(document.content)
    with JoinRun(target, options, document.pk, digest) as run:
        warm = run.join(0, options.warmup) if options.warmup else None
        with run.window("join", unit="join") as window:
            joined = run.join(options.warmup, options.warmup + options.joins)
            window["units"] = joined["joined"]
        run.stop()
    ok = (
        joined["joined"] == options.joins
        and joined["matching"] == options.joins
        and (warm is None or warm["joined"] == warm["joins"])
    )
    results = {
        "ok": ok,
        "document_id": document.pk,
        "content_chars": len(document.content),
        "joined": joined["joined"],
        "failures": joined["failures"],
        "snapshots_matching_db": joined["matching"],
        "join_ms": measure.percentiles(joined["join_ms"]),
        "joins_per_s": round(joined["joined"] / joined["seconds"], 1)
        if joined["seconds"]
        else None,
        "generator_loop_cpu_s": round(joined["cpu_seconds"], 3),
        "warmup": {"joins": warm["joins"], "joined": warm["joined"]} if warm else None,
    }
    return run.result("join", asdict(options), results)
