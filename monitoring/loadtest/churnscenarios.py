"""The ``churn`` scenario (issue 9), run from the parent process: reconnects, on the project's
own Python client, with the server's memory sampled.

    result = run_churn(target, ChurnOptions(clients=200, duration=300))

N clients (churn.py), ``editors`` of them ``DocumentSession``\\ s on ``documents`` shared
documents and the rest ``RealtimeClient``\\ s on ``/ws/presence/`` in rooms of about ten, are
cut again and again for ``duration`` seconds (``drop()`` or a clean close and start), with small
backoff. Client i is load user i + 1, talks to worker URL i mod N and gets its tickets from that
worker's ``POST /api/realtime/tickets/`` with its DRF token.

Measured: reconnects per second, reconnect latency (drop -> open again; start -> open after a
clean close), connection attempts that failed by reason, and server CPU per reconnect (the
"churn" window); every ``sample_interval`` seconds the workers' RSS and open file descriptors
(psutil), Redis ``used_memory`` and clients, and the workers' own connection gauges
(``/metrics``). Memory: start (all connected), baseline (after ``warmup`` seconds of churn),
peak, end, growth from the baseline in per cent and its slope per 1,000 reconnects (least
squares over the samples after the warm-up).

Checked (``ok`` false, with ``problems``, otherwise): every client connected; every command
acked, the ones issued while cut included, each ack listing the client's own user; every client
open and settled after the churn; each room's last member list is exactly its clients' users;
every editor at its document's final version with its text equal to ``Document.content``;
replaying the stored ops gives the content; every op an editor submitted (seq 1..n) acked and
stored exactly once under its ``(client_id, seq)``; ops committed = ops acked; no socket closed
by the server; the workers' connection gauges equal the clients after the churn and come back
to where they were after the stop; no traceback or error in the worker logs; memory growth
within ``max_growth_pct``.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
import urllib.request
from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil
import redis
from django.conf import settings
from django.db.models import Count
from rest_framework.authtoken.models import Token

from collab.models import Document, Operation
from config.client.backoff import BASE_SECONDS, CAP_SECONDS, Breaker
from monitoring.loadtest import measure
from monitoring.loadtest.churn import (
    CUT_FINISH_SECONDS,
    EDITOR,
    PRESENCE,
    ChurnPlan,
    ChurnSpec,
    churn_generator_main,
)
from monitoring.loadtest.otscenarios import _users, check_documents, create_shared_documents
from monitoring.loadtest.scenarios import MARGIN_SECONDS, ORPHAN_SECONDS, Run, Target, merged

PRESENCE_PATH = "/ws/presence/"
DOCUMENT_PATH = "/ws/collab/documents/{}/"
TICKET_PATH = "/api/realtime/tickets/"
ROOM_FORMAT = "lobby.churn-{:04d}"
ROOM_SIZE = 10  # presence clients per room, by default
INITIAL_CHARS = 200
GAUGE_WAIT_SECONDS = 10.0  # for the connection gauges to reach what they must be
STEADY_SECONDS = 2.0  # ...unless they stay where they are this long
# Daphne (autobahn) raises this when a consumer sends to a socket whose close handshake is under
# way; uncaught, it ends the consumer before its websocket.disconnect, whose cleanup never runs.
SEND_ON_CLOSED = "Exception inside application: Attempt to send on a closed protocol"
METRICS_LINE = re.compile(
    r"^(collab_ws_connections|collab_presence_connections)(\{[^}]*\})? (\S+)$"
)


@dataclass
class ChurnOptions:
    clients: int
    duration: float
    editors: int | None = None  # default: clients // 20, at least 2 (at most clients)
    documents: int | None = None  # default: editors // 5, at least 1
    rooms: int | None = None  # default: one per ROOM_SIZE presence clients
    cut_min: float = 1.0  # seconds a client stays open before its next cut, from...
    cut_max: float = 5.0  # ...to
    clean_share: float = 0.2  # of the cuts: close() + start(); the rest are drop()
    command_interval: float = 5.0  # mean seconds between a presence client's commands
    type_interval: float = 0.5  # mean seconds between an editor's keystrokes
    backoff_base: float = 0.1
    backoff_cap: float = 1.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 2.0
    sample_interval: float = 5.0
    warmup: float | None = None  # seconds of churn before the memory baseline (default below)
    max_growth_pct: float = 5.0  # DESIGN section 9: 30 min of churn, memory flat (<= 5 %)
    settle: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.editors is None:
            self.editors = max(2, self.clients // 20)
        self.editors = min(self.editors, self.clients)
        if self.documents is None:
            self.documents = max(1, self.editors // 5)
        self.documents = max(1, min(self.documents, self.editors)) if self.editors else 0
        presence = self.clients - self.editors
        if self.rooms is None:
            self.rooms = max(1, -(-presence // ROOM_SIZE))
        self.rooms = max(1, min(self.rooms, presence)) if presence else 0
        if self.warmup is None:
            self.warmup = min(60.0, self.duration / 4)


# --- setup -------------------------------------------------------------------------------------
def tokens_for(user_ids: list[int]) -> list[str]:
    """Each load user's DRF token, created when missing: clients ask for tickets as apps do."""
    existing = dict(Token.objects.filter(user_id__in=user_ids).values_list("user_id", "key"))
    missing = [Token(user_id=pk, key=Token.generate_key()) for pk in user_ids if pk not in existing]
    if missing:
        Token.objects.bulk_create(missing, ignore_conflicts=True)
        existing = dict(Token.objects.filter(user_id__in=user_ids).values_list("user_id", "key"))
    return [existing[pk] for pk in user_ids]


def create_documents(users: list[Any], options: ChurnOptions) -> list[int]:
    """Document d belongs to its first editor's user; the document's other editors are added."""
    editors, documents = options.editors or 0, options.documents or 0
    groups = [[users[e] for e in range(editors) if e % documents == d] for d in range(documents)]
    return create_shared_documents(groups, title="churn", seed=options.seed, chars=INITIAL_CHARS)


# --- the server's side: memory, descriptors, connection gauges ---------------------------------
def http_base(ws_url: str) -> str:
    return "http" + ws_url.rstrip("/").removeprefix("ws")


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class ServerSampler:
    """Every ``interval`` seconds, in a thread: the workers' RSS and descriptors, Redis memory
    and clients, and the connection gauges of the workers' /metrics."""

    pids: list[int]
    http_urls: list[str]
    interval: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    progress_every: float = 60.0  # seconds between progress lines on stderr
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        self.processes = {}
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                self.processes[pid] = psutil.Process(pid)

    def start(self) -> ServerSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="churn-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.interval):
            sample = self.sample()
            if sample["t"] - last >= self.progress_every:
                last = sample["t"]
                say(
                    f"workers {sum(sample['rss_kib'].values()) / 1024:.1f} MiB RSS, "
                    f"{sum(sample['fds'].values())} fds, "
                    f"{sample['server_connections']} connections"
                )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.sample()

    def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        rss: dict[int, int] = {}
        fds: dict[int, int] = {}
        for pid, process in self.processes.items():
            with contextlib.suppress(psutil.Error):
                rss[pid] = process.memory_info().rss // 1024
                fds[pid] = process.num_fds()
        sample: dict[str, Any] = {"t": now, "rss_kib": rss, "fds": fds, **self.redis_figures()}
        sample.update(self.gauges())
        self.samples.append(sample)
        return sample

    def redis_figures(self) -> dict[str, int | None]:
        try:
            memory = self.redis.info("memory")
            clients = self.redis.info("clients")
        except redis.RedisError:
            return {"redis_used_kib": None, "redis_clients": None}
        return {
            "redis_used_kib": int(memory["used_memory"]) // 1024,
            "redis_clients": int(clients["connected_clients"]),
        }

    def gauges(self) -> dict[str, int | None]:
        """Open connections as the workers count them (all apps) and as presence does. With a
        shared PROMETHEUS_MULTIPROC_DIR (``--spawn``) any worker's /metrics covers all."""
        totals = {"server_connections": 0, "presence_connections": 0}
        for base in self.http_urls:
            try:
                with _NO_PROXY.open(base + "/metrics", timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                return {"server_connections": None, "presence_connections": None}
            workers_seen = text.count("collab_worker_start_time_seconds{")
            for line in text.splitlines():
                match = METRICS_LINE.match(line)
                if match is None or "pid=" in (match.group(2) or ""):
                    continue
                key = (
                    "server_connections"
                    if match.group(1) == "collab_ws_connections"
                    else "presence_connections"
                )
                totals[key] += round(float(match.group(3)))
            if workers_seen >= len(self.http_urls):
                break  # one registry for all of them
        return totals

    def wait_for_connections(self, expected: int, timeout: float) -> dict[str, int | None]:
        """Poll the gauges until both equal ``expected``, the time is up, or they have not moved
        for STEADY_SECONDS (connections left behind do not go away); the last reading."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while True:
            gauges = self.gauges()
            now = time.monotonic()
            if gauges["server_connections"] == gauges["presence_connections"] == expected:
                return gauges
            if gauges != last:
                last, since = gauges, now
            if now >= deadline or now - since >= STEADY_SECONDS:
                return gauges
            time.sleep(0.25)

    def keys(self) -> int | None:
        """Redis keys under this deployment's prefix (tickets, presence, groups...)."""
        try:
            return sum(
                1 for _ in self.redis.scan_iter(f"{settings.REALTIME_KEY_PREFIX}*", count=1000)
            )
        except redis.RedisError:
            return None


def memory_report(
    samples: list[dict[str, Any]],
    reopens: list[float],
    *,
    t0: float,
    ended: float,
    warmup: float,
    max_growth_pct: float,
) -> dict[str, Any]:
    """Start (the last sample before the churn: all connected), baseline (the first after the
    warm-up), peak and end (the last in the churn window) of the workers' total RSS; growth
    from the baseline, and its slope per 1,000 reconnects (least squares over the samples from
    the baseline on)."""
    reopens = sorted(reopens)
    samples = sorted(samples, key=lambda sample: sample["t"])  # two threads append

    def total(sample: dict[str, Any]) -> int:
        return sum(sample["rss_kib"].values())

    before = [s for s in samples if s["t"] <= t0]
    during = [s for s in samples if t0 <= s["t"] <= ended]
    if not before or not during:
        return {"samples": len(samples), "problem": "too few samples"}
    start = before[-1]
    baseline = next((s for s in during if s["t"] >= t0 + warmup), during[-1])
    end = during[-1]
    peak = max(during, key=total)
    after = [s for s in during if s["t"] >= baseline["t"]]
    xs = [bisect_right(reopens, s["t"]) for s in after]
    ys = [total(s) for s in after]
    slope = _slope(xs, ys)
    growth_pct = 100 * (total(end) - total(baseline)) / total(baseline) if total(baseline) else 0
    pids = sorted(start["rss_kib"])

    def mib(kib: float) -> float:
        return round(kib / 1024, 1)

    def redis_mib(sample: dict[str, Any]) -> float | None:
        used = sample.get("redis_used_kib")
        return mib(used) if used is not None else None

    return {
        "samples": len(samples),
        "sample_interval_s": round(during[1]["t"] - during[0]["t"], 2) if len(during) > 1 else None,
        "workers_rss_mib": {
            "start": mib(total(start)),
            "baseline": mib(total(baseline)),
            "peak": mib(total(peak)),
            "end": mib(total(end)),
        },
        "per_worker_rss_mib": {
            str(pid): {
                "start": mib(start["rss_kib"].get(pid, 0)),
                "baseline": mib(baseline["rss_kib"].get(pid, 0)),
                "peak": mib(max(s["rss_kib"].get(pid, 0) for s in during)),
                "end": mib(end["rss_kib"].get(pid, 0)),
            }
            for pid in pids
        },
        "baseline_after_s": round(baseline["t"] - t0, 1),
        "reconnects_at_baseline": xs[0] if xs else 0,
        "reconnects_at_end": xs[-1] if xs else 0,
        "growth_pct": round(growth_pct, 2),
        "growth_from_start_pct": round(100 * (total(end) - total(start)) / total(start), 2)
        if total(start)
        else None,
        "slope_kib_per_1000_reconnects": round(slope * 1000, 1) if slope is not None else None,
        "max_growth_pct": max_growth_pct,
        "workers_fds": {
            "start": sum(start["fds"].values()),
            "peak": max(sum(s["fds"].values()) for s in during),
            "end": sum(end["fds"].values()),
        },
        "redis_used_mib": {
            "start": redis_mib(start),
            "peak": max((redis_mib(s) or 0 for s in during), default=None),
            "end": redis_mib(end),
        },
        "redis_clients": {
            "start": start.get("redis_clients"),
            "peak": max((s.get("redis_clients") or 0 for s in during), default=None),
            "end": end.get("redis_clients"),
        },
        "series": [
            {
                "s": round(s["t"] - t0, 1),
                "reconnects": bisect_right(reopens, s["t"]),
                "rss_mib": mib(total(s)),
                "fds": sum(s["fds"].values()),
                "connections": s.get("server_connections"),
            }
            for s in _thin(samples, 60)
        ],
    }


def _slope(xs: list[int], ys: list[int]) -> float | None:
    """Least-squares slope of ys over xs; None with fewer than 2 distinct xs."""
    if len(set(xs)) < 2:
        return None
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    var = sum((x - mean_x) ** 2 for x in xs)
    return cov / var


def _thin(samples: list[dict[str, Any]], at_most: int) -> list[dict[str, Any]]:
    """At most ``at_most`` samples, evenly spread, the first and last included."""
    if len(samples) <= at_most:
        return samples
    step = (len(samples) - 1) / (at_most - 1)
    return [samples[round(i * step)] for i in range(at_most)]


# --- the run -----------------------------------------------------------------------------------
class ChurnRun(Run):
    entry = staticmethod(churn_generator_main)

    def __init__(
        self,
        target: Target,
        options: ChurnOptions,
        user_ids: list[int],
        tokens: list[str],
        document_ids: list[int],
    ) -> None:
        super().__init__(target, options.clients, 1)
        self.options = options
        self.user_ids = user_ids
        self.tokens = tokens
        self.document_ids = document_ids

    def _tickets(self) -> list[str]:
        return self.tokens  # each client asks its worker for a ticket per connection

    def _plans(self, tokens: list[str]) -> list[ChurnPlan]:
        options = self.options
        per_proc = self._assign(tokens, self._churn_spec)
        deadline = time.monotonic() + self.connect_bound + options.duration + ORPHAN_SECONDS
        return [
            ChurnPlan(
                proc=p,
                procs=self.procs,
                clients=specs,
                origin=self.target.origin,
                handshake_timeout=self.target.handshake_timeout,
                deadline=deadline,
                connect_rate=self.target.connect_rate * len(specs) / self.clients,
                cut_min=options.cut_min,
                cut_max=options.cut_max,
                clean_share=options.clean_share,
                command_interval=options.command_interval,
                type_interval=options.type_interval,
                command_timeout=options.duration + options.settle + 60,
                backoff_base=options.backoff_base,
                backoff_cap=options.backoff_cap,
                breaker_threshold=options.breaker_threshold,
                breaker_cooldown=options.breaker_cooldown,
                seed=options.seed,
            )
            for p, specs in enumerate(per_proc)
        ]

    def _churn_spec(self, i: int, url: str, token: str) -> ChurnSpec:
        editors = self.options.editors or 0
        common = {
            "index": i,
            "ticket_url": http_base(url) + TICKET_PATH,
            "token": token,
            "user_id": self.user_ids[i],
        }
        if i < editors:
            d = i % (self.options.documents or 1)
            path = DOCUMENT_PATH.format(self.document_ids[d])
            return ChurnSpec(kind=EDITOR, url=url + path, document=d, **common)
        room = ROOM_FORMAT.format((i - editors) % (self.options.rooms or 1))
        return ChurnSpec(kind=PRESENCE, url=url + PRESENCE_PATH, room=room, **common)

    def room_of(self, i: int) -> str:
        editors = self.options.editors or 0
        return ROOM_FORMAT.format((i - editors) % (self.options.rooms or 1))

    def connect_all(self) -> dict[str, Any]:
        with self.window("connect", unit="connection") as window:
            for _, conn in self.children:
                conn.send(("connect",))
            reports = self._gather("connected", timeout=self.connect_bound)
        window["units"] = established = sum(r["established"] for r in reports)
        return {
            "attempted": sum(r["attempted"] for r in reports),
            "established": established,
            "first_failures": merged(reports, "failures"),
            "first_connect_seconds": round(max(r["connect_seconds"] for r in reports), 3),
            "first_connect_ms": measure.percentiles(
                [v for r in reports for v in r["first_connect_ms"]]
            ),
        }

    def churn(self) -> tuple[float, list[dict[str, Any]]]:
        options = self.options
        t0 = time.monotonic() + 0.5
        for _, conn in self.children:
            conn.send(("churn", t0, options.duration))
        measure.wait_until(t0)
        with self.window("churn", unit="reconnect") as window:
            reports = self._gather(
                "churned", timeout=options.duration + CUT_FINISH_SECONDS + MARGIN_SECONDS
            )
            window["units"] = sum(len(r["reopens"]) for r in reports)
        return t0, reports

    def phase(self, message: tuple[Any, ...], reply: str, timeout: float) -> list[dict[str, Any]]:
        for _, conn in self.children:
            conn.send(message)
        return self._gather(reply, timeout=timeout)


STARTED = time.monotonic()


def say(line: str) -> None:
    """A progress line on stderr (stdout is the JSON line)."""
    sys.stderr.write(f"[churn {time.monotonic() - STARTED:7.1f} s] {line}\n")
    sys.stderr.flush()


def _sum(reports: list[dict[str, Any]], key: str) -> int:
    return sum(r[key] for r in reports)


def run_churn(target: Target, options: ChurnOptions) -> dict[str, Any]:
    users = _users(options.clients)
    user_ids = [user.pk for user in users]
    tokens = tokens_for(user_ids)
    document_ids = create_documents(users, options)
    initial = dict(Document.objects.filter(pk__in=document_ids).values_list("pk", "version"))
    initial_versions = [initial[pk] for pk in document_ids]
    sampler = ServerSampler(
        pids=list(target.pids),
        http_urls=[http_base(url) for url in target.urls],
        interval=options.sample_interval,
    )
    gauges_before = sampler.gauges()
    keys_before = sampler.keys()
    say(
        f"{options.clients} clients ({options.editors} editors on {options.documents} documents, "
        f"the rest in {options.rooms} rooms), {options.duration:g} s of churn"
    )
    with ChurnRun(target, options, user_ids, tokens, document_ids) as run:
        sampler.start()
        try:
            connected = run.connect_all()
            say(f"{connected['established']} connected; churning")
            sampler.sample()  # the start: everyone connected, no cut yet
            t0, churned = run.churn()
            say(f"{sum(len(r['reopens']) for r in churned)} reconnects; settling")
            settled = run.phase(("settle", options.settle), "settled", options.settle + 30)
            expected = (gauges_before["server_connections"] or 0) + options.clients
            gauges_settled = sampler.wait_for_connections(expected, GAUGE_WAIT_SECONDS)
            keys_settled = sampler.keys()
            finals = dict(Document.objects.filter(pk__in=document_ids).values_list("pk", "version"))
            versions = {d: finals[pk] for d, pk in enumerate(document_ids)}
            converged = run.phase(
                ("converge", versions, options.settle), "converged", options.settle + 30
            )
            say("converged; stopping")
            stopped = run.stop()
        finally:
            sampler.stop()
        gauges_after = sampler.wait_for_connections(
            gauges_before["server_connections"] or 0, GAUGE_WAIT_SECONDS
        )
        keys_after = sampler.keys()
        say("stopped; checking")
    editors = [e for r in converged for e in r["editors"]]
    ended = max(r["ended"] for r in churned)
    reopens = [t for r in churned for t in r["reopens"]]
    memory = memory_report(
        sampler.samples,
        reopens,
        t0=t0,
        ended=ended,
        warmup=options.warmup or 0.0,
        max_growth_pct=options.max_growth_pct,
    )
    documents = check_documents(document_ids, initial_versions, editors)
    stored = check_stored_ops(document_ids, editors)
    rooms = check_rooms(run, settled)

    seconds = ended - t0
    reconnects = len(reopens)
    commands = {
        key: _sum(settled, key)
        for key in ("issued", "issued_offline", "acked", "acked_offline", "acks_without_self")
    }
    commands["errors"] = merged(settled, "command_errors")
    commands["lost"] = commands["issued"] - commands["acked"]
    commands["ack_ms"] = measure.percentiles([v for r in settled for v in r["command_ms"]])
    edits = {
        "made": _sum(settled, "edits"),
        "made_offline": _sum(settled, "edits_offline"),
        "ops_submitted": sum(e["seq"] for e in editors),
        "ops_acked": sum(e["acked"] for e in editors),
        "session_errors": merged(settled, "session_errors"),
    }
    closed_by_server = merged(settled, "unplanned")
    actor_errors = merged(settled, "actor_errors")
    results: dict[str, Any] = {
        **connected,
        "reconnects": reconnects,
        "reconnects_per_s": round(reconnects / seconds, 2) if seconds > 0 else None,
        "churn_seconds": round(seconds, 1),
        "cuts": {
            "drops": _sum(churned, "drops"),
            "clean_closes": _sum(churned, "cleans"),
            "clean_fallbacks_to_drop": _sum(churned, "clean_fallbacks"),
            "skipped": _sum(churned, "skipped_cuts"),
            "still_cut_at_end": _sum(churned, "still_cut"),
        },
        "reconnect_ms": measure.percentiles([v for r in churned for v in r["drop_ms"]]),
        "restart_ms": measure.percentiles([v for r in churned for v in r["clean_ms"]]),
        "close_ms": measure.percentiles([v for r in churned for v in r["close_ms"]]),
        "connect_ms": measure.percentiles([v for r in churned for v in r["connect_ms"]]),
        "ticket_ms": measure.percentiles([v for r in churned for v in r["ticket_ms"]]),
        "attempts": _sum(settled, "attempts"),
        "failed_attempts": _sum(settled, "failed_attempts"),
        "handshake_failures": merged(settled, "failures"),
        "tickets": _sum(settled, "tickets"),
        "closed_by_server": closed_by_server,
        "commands": commands,
        "edits": edits,
        "resent_on_open": _sum(settled, "sent_on_open"),
        "client_handler_errors": _sum(settled, "client_handler_errors"),
        "generator_errors": actor_errors,
        "settle": {
            "seconds": round(max(r["settled_seconds"] for r in settled), 3),
            "not_open": _sum(settled, "not_open"),
            "unsettled": _sum(settled, "unsettled"),
        },
        "documents": {**documents, **stored},
        "rooms": rooms,
        "server_connections": {
            "before": gauges_before,
            "settled": gauges_settled,
            "expected_settled": (gauges_before["server_connections"] or 0) + options.clients,
            "after_stop": gauges_after,
        },
        "redis_keys": {"before": keys_before, "settled": keys_settled, "after_stop": keys_after},
        "memory": memory,
        "generator_loop_cpu_s": round(sum(r["cpu_seconds"] for r in churned), 3),
        "held_to_end": stopped["open"],
        "client": client_description(options),
    }
    logs = target.logs() if target.logs else None
    results["consumers_crashed_sending_to_closing_socket"] = (
        sum(text.count(SEND_ON_CLOSED) for text in logs) if logs is not None else None
    )
    result = run.result("churn", asdict(options), results)
    problems = find_problems(result, options)
    results["ok"] = not problems
    results["problems"] = problems[:30]
    return result


def client_description(options: ChurnOptions) -> dict[str, Any]:
    library = Breaker()
    return {
        "library": "config.client.RealtimeClient (presence), collab.client.DocumentSession",
        "backoff_base_s": options.backoff_base,
        "backoff_cap_s": options.backoff_cap,
        "breaker": {"threshold": options.breaker_threshold, "cooldown_s": options.breaker_cooldown},
        "note": (
            "backoff and breaker kept small for the load test; the library's defaults are "
            f"{BASE_SECONDS} s base, {CAP_SECONDS} s cap, breaker open for "
            f"{library.cooldown} s after {library.threshold} failures in a row"
        ),
        "tickets": "POST /api/realtime/tickets/ with the load user's token, one per connection",
    }


def check_stored_ops(document_ids: list[int], editors: list[dict[str, Any]]) -> dict[str, Any]:
    """Each editor's ops (seq 1..n) acked once each and stored exactly once under its
    ``(client_id, seq)``; no (client_id, seq) stored twice in any of the documents."""
    problems = []
    ids = [e["client_id"] for e in editors]
    stored: dict[str, list[int]] = {}
    for client_id, seq in Operation.objects.filter(
        document_id__in=document_ids, client_id__in=ids
    ).values_list("client_id", "seq"):
        stored.setdefault(client_id, []).append(seq)
    exact = 0
    for editor in editors:
        seqs = sorted(stored.get(editor["client_id"], []))
        expected = list(range(1, editor["seq"] + 1))
        acked_ok = editor["acked"] == editor["acked_unique"] == editor["seq"]
        if seqs == expected and acked_ok:
            exact += 1
        else:
            problems.append(
                f"editor {editor['index']}: submitted 1..{editor['seq']}, acked "
                f"{editor['acked']} ({editor['acked_unique']} distinct), stored {len(seqs)} "
                f"({len(set(seqs))} distinct)"
            )
    duplicates = (
        Operation.objects.filter(document_id__in=document_ids)
        .values("document_id", "client_id", "seq")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    if duplicates:
        problems.append(f"{duplicates} (client_id, seq) stored more than once")
    return {
        "editors_stored_exactly": exact,
        "duplicate_client_seq": duplicates,
        "stored_problems": problems[:20],
    }


def check_rooms(run: ChurnRun, settled: list[dict[str, Any]]) -> dict[str, Any]:
    """Each room's last member list (every presence client joins once more after the churn) is
    exactly the users of its clients: none missing, no stranger."""
    expected: dict[str, set[int]] = {}
    editors = run.options.editors or 0
    for i in range(editors, run.options.clients):
        expected.setdefault(run.room_of(i), set()).add(run.user_ids[i])
    finals = {int(i): members for r in settled for i, members in r["final_members"].items()}
    matching = missing = 0
    problems = []
    for i, members in sorted(finals.items()):
        want = expected[run.room_of(i)]
        if members is None:
            missing += 1
            problems.append(f"client {i}: no answer to its last join")
        elif set(members) == want:
            matching += 1
        else:
            problems.append(
                f"client {i} in {run.room_of(i)}: {len(set(members) - want)} unexpected, "
                f"{len(want - set(members))} missing of {len(want)}"
            )
    return {
        "rooms": len(expected),
        "clients_with_exact_members": matching,
        "clients_without_answer": missing,
        "room_problems": problems[:20],
    }


def find_problems(result: dict[str, Any], options: ChurnOptions) -> list[str]:
    r = result["results"]
    problems: list[str] = []
    if r["established"] != options.clients:
        problems.append(f"{options.clients - r['established']} clients never connected")
    commands = r["commands"]
    if commands["lost"] or commands["errors"]:
        problems.append(
            f"commands: {commands['issued']} issued, {commands['acked']} acked, "
            f"errors {commands['errors']}"
        )
    if commands["issued_offline"] != commands["acked_offline"]:
        problems.append(
            f"commands issued while cut: {commands['issued_offline']}, acked after the "
            f"reconnect: {commands['acked_offline']}"
        )
    if commands["acks_without_self"]:
        problems.append(f"{commands['acks_without_self']} join acks without the client's user")
    if r["edits"]["session_errors"]:
        problems.append(f"editor errors: {r['edits']['session_errors']}")
    settle = r["settle"]
    if settle["not_open"] or settle["unsettled"]:
        problems.append(
            f"after {settle['seconds']} s of settling: {settle['not_open']} not open, "
            f"{settle['unsettled']} with commands or edits unanswered"
        )
    if r["cuts"]["still_cut_at_end"]:
        problems.append(f"{r['cuts']['still_cut_at_end']} clients did not reconnect in time")
    if r["generator_errors"] or r["client_handler_errors"]:
        problems.append(
            f"load generator: {r['generator_errors']}, {r['client_handler_errors']} errors "
            "in the client's event handlers"
        )
    if r["closed_by_server"]:
        problems.append(f"sockets closed without a cut of ours: {r['closed_by_server']}")
    documents = r["documents"]
    problems += documents["problems"] + documents["stored_problems"]
    if documents["ops_committed"] != r["edits"]["ops_acked"]:
        problems.append(
            f"ops committed {documents['ops_committed']} != ops acked {r['edits']['ops_acked']}"
        )
    problems += r["rooms"]["room_problems"]
    connections = r["server_connections"]
    settled = connections["settled"]["server_connections"]
    if settled is not None and not (
        settled == connections["settled"]["presence_connections"] == connections["expected_settled"]
    ):
        problems.append(
            f"server connection gauges after the churn: {connections['settled']}, "
            f"expected {connections['expected_settled']}"
        )
    before, after = connections["before"], connections["after_stop"]
    if after["server_connections"] is not None and after != before:
        problems.append(f"server connection gauges after the stop: {after}, before: {before}")
    memory = r["memory"]
    if "problem" in memory:
        problems.append(f"memory: {memory['problem']}")
    elif memory["growth_pct"] > options.max_growth_pct:
        problems.append(
            f"worker memory grew {memory['growth_pct']} % after the warm-up "
            f"(bound {options.max_growth_pct} %)"
        )
    if r["consumers_crashed_sending_to_closing_socket"]:
        problems.append(
            "consumers ended by an exception sending to a socket that was closing: "
            f"{r['consumers_crashed_sending_to_closing_socket']} (their disconnect cleanup never "
            "ran: each connection stays counted, present and in its groups)"
        )
    log = result["server_log"]
    if log is not None and (log["traceback"] or log["error"]):
        problems.append(f"worker logs: {log['traceback']} tracebacks, {log['error']} errors")
    return problems
