"""The ``comments`` scenario (DESIGN sections 5 and 9), run from the parent process.

    result = run_comments(target, CommentsOptions(threads=20, users=10, rate=100, duration=20))

It reuses ``scenarios.Run`` (generator processes, phases, measurement windows, the JSON line)
with the children of comments.py. Before any window, in the workers' database: ``threads``
documents, each with ``users`` load users (the first owns it, the others are editors) and one
thread on it (``comments.services.thread_create``: events 1 and 2). Socket i is load user
i + 1, in thread i // users, and talks to URL i mod N.

Every socket connects and takes its snapshot; then the sockets write ``rate`` comments and
reactions per second in total for ``duration`` seconds; then the run waits until every write
is answered and every socket has its thread's last seq. The "write" window covers all of it,
so its server CPU is all the work for the writes acked in it (and for their deliveries).

A delivery is a thread event reaching a socket; every event committed after a socket's
snapshot is due to it, the writer's own socket included. Its latency runs from the send of the
write that made the event (matched by thread and seq from the ack) to its arrival, both on
``time.monotonic()``. Afterwards, in PostgreSQL: every acked comment is stored exactly once
(by ``client_msg_id``), every acked reaction is stored, each thread's events are 1..last_seq
without a gap, its events after setup equal its acked writes, and each socket ended at its
thread's last seq. ``ok`` is false on any loss, duplicate, reordering, gap or mismatch.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from collab.services import document_create, member_set
from comments.models import Comment, Reaction, Thread, ThreadEvent
from comments.services import thread_create, thread_group
from monitoring.loadtest import measure
from monitoring.loadtest.comments import (
    COMMENT,
    NO_SEQ,
    WS_PATH,
    CommentsPlan,
    SocketSpec,
    comment_key,
    comments_generator_main,
)
from monitoring.loadtest.scenarios import MARGIN_SECONDS, Run, Target, merged
from monitoring.loadtest.users import load_user_ids

SETTLE_SECONDS = 0.5  # after the last snapshot, before the write window
MAX_PROBLEMS = 20


@dataclass
class CommentsOptions:
    threads: int = 20
    users: int = 10  # per thread, one socket each
    rate: float = 100.0  # writes/s in total
    duration: float = 20.0
    reaction_share: float = 0.2  # of the writes; the rest are comments
    settle: float = 15.0  # bound on the wait for acks, and then for every socket's last seq
    seed: int = 0


@dataclass(frozen=True)
class Setup:
    thread_ids: list[int]
    initial_seqs: list[int]  # each thread's last_seq before the run
    user_ids: list[int]  # socket i's user


def create_threads(options: CommentsOptions) -> Setup:
    """A document per thread with all its users as members, and one thread on it."""
    user_ids = load_user_ids(options.threads * options.users)
    users = get_user_model().objects.in_bulk(user_ids)
    run_key = secrets.token_hex(4)  # load users are reused: thread keys must be new each run
    thread_ids = []
    with transaction.atomic():
        for t in range(options.threads):
            members = [users[pk] for pk in user_ids[t * options.users : (t + 1) * options.users]]
            owner = members[0]
            document = document_create(owner=owner, title=f"load comments {t}")
            for user in members[1:]:
                member_set(user=owner, document_id=document.pk, member_id=user.pk, role="editor")
            created = thread_create(
                user=owner,
                target_kind="document",
                target_id=document.pk,
                body=f"load thread {t}",
                client_msg_id=f"load-{run_key}-{t}",
            )
            thread_ids.append(created.thread["id"])
    seqs = thread_last_seqs(thread_ids)
    return Setup(thread_ids, [seqs[t] for t in range(len(thread_ids))], user_ids)


def thread_last_seqs(thread_ids: list[int]) -> dict[int, int]:
    """Thread index -> the thread's last seq, as committed now."""
    last = dict(Thread.objects.filter(pk__in=thread_ids).values_list("pk", "last_seq"))
    return {t: last[pk] for t, pk in enumerate(thread_ids)}


class CommentsRun(Run):
    entry = staticmethod(comments_generator_main)

    def __init__(self, target: Target, options: CommentsOptions, setup: Setup) -> None:
        super().__init__(target, options.threads * options.users, options.users)
        self.options = options
        self.setup = setup

    def _plan(self, proc: int, specs: list[SocketSpec], common: dict[str, Any]) -> CommentsPlan:
        return CommentsPlan(
            proc,
            sockets=specs,
            reaction_share=self.options.reaction_share,
            seed=self.options.seed,
            **common,
        )

    def _spec(self, i: int, url: str, ticket: str) -> SocketSpec:
        thread = i // self.members
        thread_id = self.setup.thread_ids[thread]
        url = f"{url}{WS_PATH.format(thread_id)}?ticket={ticket}"
        return SocketSpec(i, url, thread, thread_group(thread_id), i % self.members)

    def write(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The write window: each process's share of the rate in proportion to its sockets."""
        options = self.options
        total = sum(self.established) or 1
        t0 = time.monotonic() + 0.5
        for (_, conn), share in zip(self.children, self.established, strict=True):
            conn.send(("write", t0, options.duration, options.rate * share / total, options.settle))
        measure.wait_until(t0)
        with self.window("write", unit="write") as window:
            written = self._gather(
                "written", timeout=options.duration + options.settle + MARGIN_SECONDS
            )
            # Every socket at its thread's last seq: the last deliveries fall in the window too.
            # (Final only if every write was answered; the checks read it again at the end.)
            targets = thread_last_seqs(self.setup.thread_ids)
            for _, conn in self.children:
                conn.send(("converge", targets, options.settle))
            converged = self._gather("converged", timeout=options.settle + MARGIN_SECONDS)
            window["units"] = sum(
                1 for report in written for acked in report["writes"]["acked"] if acked
            )
        return written, converged


# --- what the generators saw -------------------------------------------------------------------
@dataclass
class Acked:
    """The writes acked, from every generator's rows."""

    comments: list[tuple[int, str, int]]  # (thread index, client_msg_id, comment id)
    reactions: list[tuple[int, int, str]]  # (comment id, socket index, kind), those with an event
    sent_at: dict[tuple[int, int], float]  # (thread index, seq) -> send time of its write
    ack_ms: list[float]
    noop_reactions: int  # acked with seq None: the reaction was there already


def acked_writes(written: list[dict[str, Any]]) -> Acked:
    acked = Acked([], [], {}, [], 0)
    for proc, report in enumerate(written):
        rows = report["writes"]
        for n, ack_time in enumerate(rows["acked"]):
            if not ack_time:
                continue
            thread, seq, comment = rows["thread"][n], rows["seq"][n], rows["comment"][n]
            acked.ack_ms.append((ack_time - rows["sent"][n]) * 1000)
            if seq != NO_SEQ:
                acked.sent_at[(thread, seq)] = rows["sent"][n]
            if rows["kind"][n] == COMMENT:
                acked.comments.append((thread, comment_key(proc, n), comment))
            elif seq == NO_SEQ:
                acked.noop_reactions += 1
            else:
                acked.reactions.append((comment, rows["socket"][n], rows["reaction_kind"][n]))
    return acked


def count_deliveries(
    converged: list[dict[str, Any]], acked: Acked, last_seqs: dict[int, int]
) -> dict[str, Any]:
    """Every event after a socket's snapshot is due to it; latency from the write's send."""
    sockets = [socket for report in converged for socket in report["sockets"]]
    expected = sum(last_seqs[s["thread"]] - s["first_seq"] for s in sockets)
    received = sum(s["received"] for s in sockets)
    latencies, unattributed = [], 0
    for report in converged:
        for thread, seq, arrived in zip(*report["arrivals"], strict=True):
            sent = acked.sent_at.get((thread, seq))
            if sent is None:
                unattributed += 1  # its write was never acked
            else:
                latencies.append((arrived - sent) * 1000)
    return {
        "deliveries_expected": expected,
        "deliveries_received": received,
        "lost": expected - received,
        "duplicates": sum(s["duplicates"] for s in sockets),
        "out_of_order": sum(s["out_of_order"] for s in sockets),
        "unattributed_deliveries": unattributed,
        "delivery_ms": measure.percentiles(latencies),
        "events_received_by_type": merged(converged, "event_types"),
        "sockets": sockets,
    }


# --- what PostgreSQL holds ---------------------------------------------------------------------
def check_database(
    setup: Setup, acked: Acked, sockets: list[dict[str, Any]], last_seqs: dict[int, int]
) -> dict[str, Any]:
    problems: list[str] = []
    comments = _check_comments(setup, acked, problems)
    reactions = _check_reactions(setup, acked, problems)
    _check_events(setup, acked, last_seqs, problems)
    at_last = 0
    for socket in sockets:
        thread = socket["thread"]
        if socket["last_seq"] == last_seqs[thread]:
            at_last += 1
        else:
            problems.append(
                f"thread {setup.thread_ids[thread]}: socket {socket['index']} ended at seq "
                f"{socket['last_seq']}, the thread at {last_seqs[thread]}"
            )
    return {
        "comments_stored_once": comments,
        "reactions_stored": reactions,
        "events_committed": sum(last_seqs[t] - s for t, s in enumerate(setup.initial_seqs)),
        "sockets_at_last_seq": at_last,
        "problems_total": len(problems),
        "problems": problems[:MAX_PROBLEMS],
    }


def _check_comments(setup: Setup, acked: Acked, problems: list[str]) -> int:
    """Each acked comment is exactly one row, the one its ack named."""
    rows: dict[tuple[int, str], list[int]] = {}
    for thread_id, key, pk in Comment.objects.filter(thread_id__in=setup.thread_ids).values_list(
        "thread_id", "client_msg_id", "id"
    ):
        rows.setdefault((thread_id, key), []).append(pk)
    once = 0
    for thread, key, pk in acked.comments:
        found = rows.get((setup.thread_ids[thread], key), [])
        if found == [pk]:
            once += 1
        else:
            problems.append(f"comment {key} (ack: #{pk}) stored as {found}")
    return once


def _check_reactions(setup: Setup, acked: Acked, problems: list[str]) -> int:
    stored = set(
        Reaction.objects.filter(comment__thread_id__in=setup.thread_ids).values_list(
            "comment_id", "user_id", "kind"
        )
    )
    found = 0
    for comment, socket, kind in acked.reactions:
        if (comment, setup.user_ids[socket], kind) in stored:
            found += 1
        else:
            problems.append(f"reaction {kind} of socket {socket} on #{comment} not stored")
    return found


def _check_events(
    setup: Setup, acked: Acked, last_seqs: dict[int, int], problems: list[str]
) -> None:
    """Seqs 1..last_seq without a gap; the events after setup are the acked writes'."""
    seqs: dict[int, list[int]] = {pk: [] for pk in setup.thread_ids}
    for thread_id, seq in (
        ThreadEvent.objects.filter(thread_id__in=setup.thread_ids)
        .order_by("thread_id", "seq")
        .values_list("thread_id", "seq")
    ):
        seqs[thread_id].append(seq)
    with_event = Counter(thread for thread, _ in acked.sent_at)
    for t, pk in enumerate(setup.thread_ids):
        last = last_seqs[t]
        if seqs[pk] != list(range(1, last + 1)):
            problems.append(f"thread {pk}: {len(seqs[pk])} events for seqs 1..{last}")
        if last - setup.initial_seqs[t] != with_event[t]:
            problems.append(
                f"thread {pk}: {last - setup.initial_seqs[t]} events after setup, "
                f"{with_event[t]} acked writes with an event"
            )


# --- the scenario ------------------------------------------------------------------------------
def run_comments(target: Target, options: CommentsOptions) -> dict[str, Any]:
    setup = create_threads(options)
    sockets = options.threads * options.users
    with CommentsRun(target, options, setup) as run:
        connected = run.connect()
        time.sleep(SETTLE_SECONDS)
        written, converged = run.write()
        stopped = run.stop()
    # After every socket closed: a write still queued at the end (unanswered) may have
    # committed after the window's read, and its event is due too.
    final = thread_last_seqs(setup.thread_ids)
    acked = acked_writes(written)
    delivery = count_deliveries(converged, acked, final)
    check = check_database(setup, acked, delivery.pop("sockets"), final)
    writes = _write_figures(written, acked)
    ok = (
        connected["established"] == sockets
        and writes["acked"] == writes["sent"] == writes["scheduled"]
        and writes["unanswered"] == writes["duplicate_acks"] == 0
        and not writes["error_frames"]
        and delivery["lost"] == delivery["duplicates"] == delivery["out_of_order"] == 0
        and check["comments_stored_once"] == writes["acked_comments"]
        and check["reactions_stored"] == len(acked.reactions)
        and check["sockets_at_last_seq"] == sockets
        and not check["problems"]
        and stopped["open"] == sockets
    )
    results = {
        "ok": ok,
        **connected,
        **writes,
        "rate_in": round(writes["sent"] / writes["send_seconds"], 1)
        if writes["send_seconds"]
        else None,
        "writes_per_s_to_last_ack": _to_last_ack(written, writes["acked"]),
        "ack_ms": measure.percentiles(acked.ack_ms),
        **delivery,
        "server_us_per_write": _server_us(run, writes["acked"]),
        "server_us_per_delivery": _server_us(run, delivery["deliveries_received"]),
        **check,
        "thread_ids": [setup.thread_ids[0], setup.thread_ids[-1]],
        "held_to_end": stopped["open"],
        "closed_by_server": stopped["closed_by_server"],
    }
    return run.result("comments", asdict(options), results)


def _write_figures(written: list[dict[str, Any]], acked: Acked) -> dict[str, Any]:
    sent = sum(len(r["writes"]["sent"]) - r["send_failures"] for r in written)
    return {
        "scheduled": sum(r["scheduled"] for r in written),
        "sent": sent,
        "unsent": sum(r["unsent"] for r in written),
        "send_failures": sum(r["send_failures"] for r in written),
        "send_seconds": round(max((r["send_seconds"] for r in written), default=0.0), 3),
        "send_lag_max_ms": round(max((r["send_lag_max_ms"] for r in written), default=0.0), 2),
        "acked": len(acked.ack_ms),
        "acked_comments": len(acked.comments),
        "acked_reactions": len(acked.reactions) + acked.noop_reactions,
        "reactions_already_there": acked.noop_reactions,
        "unanswered": sum(r["unanswered"] for r in written),
        "duplicate_acks": sum(r["duplicate_acks"] for r in written),
        "error_frames": merged(written, "errors"),
        "generator_loop_cpu_s": round(sum(r["cpu_seconds"] for r in written), 3),
    }


def _to_last_ack(written: list[dict[str, Any]], acked: int) -> float | None:
    """Writes acked per second from the first send to the last ack: below the rate asked when
    the server falls behind, however long it then takes to catch up."""
    last = max((max(r["writes"]["acked"], default=0.0) for r in written), default=0.0)
    t0 = min((r["t0"] for r in written), default=0.0)
    return round(acked / (last - t0), 1) if acked and last > t0 else None


def _server_us(run: Run, units: int) -> dict[str, float] | None:
    """Server CPU (µs) of the write window per ``units``: per write, or per delivery."""
    used = run.windows.get("write", {}).get("used")
    if not used or not units:
        return None
    roles = {role: used[role] for role in ("workers", "redis", "postgres")}
    roles["server_total"] = sum(roles.values())
    return {role: round(1e6 * seconds / units, 1) for role, seconds in roles.items()}
