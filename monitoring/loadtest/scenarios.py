"""The load scenarios, run from the parent process that owns the measurements.

    target = Target(urls=["ws://127.0.0.1:8001", "ws://127.0.0.1:8002"], pids=[4100, 4101])
    result = run_hold(target, HoldOptions(connections=2000, rooms=100, hold=30))
    result = run_fanout(target, FanoutOptions(rooms=100, members=10, rate=1000, duration=20))

``hold`` connects N clients (each joins a room) and keeps them open: established, failures,
connect rate and latency, server RSS per connection, server CPU per connection. ``fanout`` fills
rooms x members, sends a fixed aggregate rate of room signals (every member, sender included,
receives each) and counts sent, expected, delivered, lost and latency. Both return one dict,
printed by the command as one JSON line.

Clients are numbered 0..N-1: client i is in room i // members and talks to URL i % len(urls), so
the members of a room are spread over the workers as a load balancer would spread them; runs of
len(urls) consecutive clients share a generator process, so each process talks to every worker.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from django.conf import settings

from monitoring.loadtest import measure
from monitoring.loadtest.clients import ClientSpec, Plan, bare_generator_main, generator_main
from monitoring.loadtest.logs import scan_logs
from monitoring.loadtest.profile import Profiles, worker_profiles
from monitoring.loadtest.users import load_user_ids, mint_tickets

WS_PATH = "/ws/presence/"
ROOM_FORMAT = "lobby.load-{:04d}"
RELAYS = ("bare", "lean")  # /ws/bench/<relay>/, served only with REALTIME_BARE_BASELINE on
BARE_ROOM_FORMAT = "load{:04d}"
SETTLE_SECONDS = 1.0  # after the last join, before a send window: subscriptions reach Redis
MARGIN_SECONDS = 30.0  # added to every phase's bound before the parent gives up on a child
CLOSE_SECONDS = 20.0  # for a child to close its sockets and exit after "stop"
ORPHAN_SECONDS = 3 * 3600.0  # a child whose parent never says "stop" exits after this
QUIET_SAMPLE_SECONDS = 1.0
STEAL_LIMIT_PCT = 15.0  # DESIGN section 9: a window with more steal is run again
S = TypeVar("S")  # what a child is told about one of its sockets


@dataclass
class Target:
    urls: list[str]
    pids: list[int] = field(default_factory=list)
    redis_pid: int | None = None
    pg_pid: int | None = None
    origin: str = ""
    procs: int = 2
    handshake_timeout: float = 30.0
    connect_rate: float = 0.0  # attempts per second over all processes; 0 = all at once
    # Worker log texts, read after the run (given with --spawn or --worker-log).
    logs: Callable[[], list[str]] | None = None
    # py-spy profiles of the workers during the send window are written here (profile.py).
    profile_dir: str | None = None


@dataclass
class HoldOptions:
    connections: int
    rooms: int
    hold: float


@dataclass
class FanoutOptions:
    rooms: int
    members: int
    rate: float
    duration: float
    drain: float = 3.0
    # After the last join, before the send window: subscriptions reach Redis, and the joins'
    # own presence events (each join tells every member) are delivered first. A big room's
    # join storm needs far more than the default (docs/benchmarks.md, big-room).
    settle: float = SETTLE_SECONDS


# --- scenarios ---------------------------------------------------------------------------------
def run_hold(target: Target, options: HoldOptions) -> dict[str, Any]:
    members = math.ceil(options.connections / options.rooms)
    with Run(target, options.connections, members) as run:
        connected = run.connect()
        with run.window("hold"):
            measure.wait_until(time.monotonic() + options.hold)
            rss_held = run.servers.rss_kib()
        stopped = run.stop()
    growth = sum(rss_held.values()) - sum(run.rss_before.values())
    established = connected["established"]
    results = {
        **connected,
        "held_to_end": stopped["open"],
        "closed_by_server": stopped["closed_by_server"],
        "error_frames": stopped["errors"],
        "rss_kib": {"before": run.rss_before, "held": rss_held},
        "rss_per_connection_kib": (
            round(growth / established, 2) if target.pids and established else None
        ),
    }
    return run.result("hold", asdict(options), results)


def run_fanout(
    target: Target, options: FanoutOptions, relay: str | None = None, name: str = "fanout"
) -> dict[str, Any]:
    """``relay``: the same clients and rates against a bare Channels relay instead of ours,
    "bare" (stock) or "lean" (BareRun, monitoring/baseline.py). ``name``: the scenario's name in
    the JSON line ("big-room" is one room of many)."""
    run = (
        BareRun(target, options, relay)
        if relay
        else Run(target, options.rooms * options.members, options.members)
    )
    with run:
        connected = run.connect()
        time.sleep(options.settle)
        sent = run.send(options.duration, options.rate, options.drain)
        stopped = run.stop()
    delivery = count_deliveries(sent, run.room_members)
    run.windows["send"]["units"] = delivery["delivered"]
    results = {
        **connected,
        **delivery,
        "scheduled": sent["scheduled"],
        "unsent": sent["unsent"],
        "send_failures": sent["send_failures"],
        "error_frames": sent["errors"],
        "rate_in": round(delivery["sent"] / sent["send_seconds"], 1),
        "rate_out": round(delivery["delivered"] / run.windows["send"]["seconds"], 1),
        "send_lag_max_ms": round(sent["send_lag_max_ms"], 2),
        "generator_loop_cpu_s": round(sent["generator_cpu_seconds"], 3),
        "held_to_end": stopped["open"],
        "closed_by_server": stopped["closed_by_server"],
    }
    return run.result(f"{name}-{relay}" if relay else name, asdict(options), results)


def run_fanout_with_baseline(
    target: Target, options: FanoutOptions, relays: list[str], name: str = "fanout"
) -> dict[str, Any]:
    """Each bare relay first, then ours, on the same workers: our result, with the relays' under
    ``baselines`` and our/relay ratios under ``versus``."""
    baselines = {relay: run_fanout(target, options, relay=relay, name=name) for relay in relays}
    ours = run_fanout(target, options, name=name)
    ours["baselines"] = baselines
    ours["versus"] = {relay: versus_bare(ours, bare) for relay, bare in baselines.items()}
    return ours


def versus_bare(ours: dict[str, Any], bare: dict[str, Any]) -> dict[str, float | None]:
    """Our figure over the bare relay's, for the ones issue 9 compares: deliveries/s (higher
    is better), latency percentiles and server CPU per delivery (lower is better)."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    mine, theirs = ours["results"], bare["results"]
    cpu = [
        run["windows"]["send"].get("us_per_unit", {}).get("server_total") for run in (ours, bare)
    ]
    return {
        "throughput": ratio(mine["rate_out"], theirs["rate_out"]),
        **{
            key: ratio(mine["latency_ms"].get(key), theirs["latency_ms"].get(key))
            for key in ("p50", "p95", "p99")
        },
        "server_us_per_delivery": ratio(*cpu),
    }


def count_deliveries(sent: dict[str, Any], members: dict[int, int]) -> dict[str, Any]:
    """Every signal is due to every member of its room (the sender too). Lost = due but not
    received by the end of the drain; a second copy of one delivery is a duplicate."""
    expected = delivered = duplicates = 0
    received = sent["received"]
    for message_id, room in zip(sent["sent_ids"], sent["sent_rooms"], strict=True):
        due = members.get(room, 0)
        got = received.get(message_id, 0)
        expected += due
        delivered += min(got, due)
        duplicates += max(0, got - due)
    return {
        "sent": len(sent["sent_ids"]),
        "expected": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        "duplicates": duplicates,
        "latency_ms": measure.percentiles(sent["latencies_ms"]),
    }


# --- one run: generator processes, phases, measurements ----------------------------------------
class Run:
    """Users, tickets, generator processes and the measurement windows of one scenario.

    Subclasses (otscenarios.py, commentscenarios.py) change what the children run (``entry``),
    which users get tickets (``_tickets``) and what each child is told (``_spec`` for each
    socket, ``_plan`` for each child; or all of ``_plans``).
    """

    entry: Callable[[Connection, Any], None] = staticmethod(generator_main)

    def __init__(self, target: Target, clients: int, members: int) -> None:
        if not target.urls:
            raise ValueError("Give at least one worker URL.")
        self.target = target
        self.clients = clients
        self.members = members
        self.procs = max(1, min(target.procs, clients))
        self.windows: dict[str, dict[str, Any]] = {}
        self.children: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
        self.established: list[int] = []
        self.room_members: dict[int, int] = {}
        self.servers = measure.ServerProcesses(
            workers=list(target.pids),
            redis=target.redis_pid or measure.find_redis_pid(),
            postgres=target.pg_pid or measure.find_postgres_pid(),
        )

    def __enter__(self) -> Run:
        # Whatever else keeps the machine busy competes with the run: say how much there was.
        self.machine_before = measure.sample_machine(QUIET_SAMPLE_SECONDS)
        # Users and tickets before any window: their cost is not the server's under test.
        connect_seconds = self.clients / self.target.connect_rate if self.target.connect_rate else 0
        self.connect_bound = connect_seconds + self.target.handshake_timeout + MARGIN_SECONDS
        tickets = self._tickets()
        context = multiprocessing.get_context("spawn")
        try:
            for plan in self._plans(tickets):
                parent_end, child_end = context.Pipe()
                process = context.Process(target=self.entry, args=(child_end, plan))
                process.start()
                child_end.close()
                self.children.append((process, parent_end))
            self.servers.generators = [p.pid for p, _ in self.children if p.pid is not None]
            self._gather("ready", timeout=60)
        except BaseException:
            self.__exit__()
            raise
        self.rss_before = self.servers.rss_kib()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for _, conn in self.children:
            with contextlib.suppress(OSError):
                conn.send(("stop",))  # a no-op after a clean stop; ends an aborted run
        for process, conn in self.children:
            process.join(timeout=CLOSE_SECONDS)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
            conn.close()

    def _tickets(self) -> list[str]:
        return mint_tickets(load_user_ids(self.clients), ttl=int(self.connect_bound + 60))

    def _plans(self, tickets: list[str]) -> list[Any]:
        common = self._plan_common()
        per_proc = self._assign(tickets, self._spec)
        return [self._plan(p, specs, common) for p, specs in enumerate(per_proc)]

    def _spec(self, i: int, url: str, ticket: str) -> ClientSpec:
        room = i // self.members
        url = f"{presence_url(url)}?ticket={ticket}"
        return ClientSpec(i, url, ROOM_FORMAT.format(room), room, i % self.members)

    def _plan(self, proc: int, specs: list[Any], common: dict[str, Any]) -> Any:
        rate = self.target.connect_rate * len(specs) / self.clients
        return Plan(proc, clients=specs, connect_rate=rate, **common)

    def _assign(self, tickets: list[str], spec: Callable[[int, str, str], S]) -> list[list[S]]:
        """Client i's ``spec(i, worker URL, ticket)`` in its process's list (see the top)."""
        urls = [url.rstrip("/") for url in self.target.urls]
        per_proc: list[list[S]] = [[] for _ in range(self.procs)]
        for i, ticket in enumerate(tickets):
            per_proc[(i // len(urls)) % self.procs].append(spec(i, urls[i % len(urls)], ticket))
        return per_proc

    def _plan_common(self) -> dict[str, Any]:
        """The fields every child's plan shares but ``proc`` and its sockets."""
        return {
            "procs": self.procs,
            "origin": self.target.origin,
            "handshake_timeout": self.target.handshake_timeout,
            "heartbeat_seconds": settings.REALTIME_HEARTBEAT_SECONDS,
            # Each phase has its own bound in the parent; this one only ends an orphaned child.
            "deadline": time.monotonic() + self.connect_bound + ORPHAN_SECONDS,
        }

    def _gather(self, kind: str, timeout: float) -> list[dict[str, Any]]:
        """One ``kind`` report from every child, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        replies: dict[int, dict[str, Any]] = {}
        pending = {conn: n for n, (_, conn) in enumerate(self.children)}
        while pending:
            ready = wait(list(pending), timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                raise RuntimeError(f"{len(pending)} generator process(es) sent no {kind!r} in time")
            for conn in ready:
                try:
                    message = conn.recv()  # type: ignore[union-attr]
                except EOFError:
                    raise RuntimeError(f"a generator process exited before {kind!r}") from None
                if message[0] != kind:
                    raise RuntimeError(f"expected {kind!r} from a generator, got {message[0]!r}")
                replies[pending.pop(conn)] = message[1] if len(message) > 1 else {}  # type: ignore[arg-type]
        return [replies[n] for n in sorted(replies)]

    @contextlib.contextmanager
    def window(self, name: str, unit: str | None = None) -> Iterator[dict[str, Any]]:
        """Server/generator CPU and machine steal between entering and leaving the block; CPU
        per ``unit`` once the caller has set ``info["units"]``."""
        info: dict[str, Any] = {"unit": unit, "units": 0}
        sampler = measure.StealSampler().start()
        before, started = self.servers.snapshot(), time.monotonic()
        yield info
        after, ended = self.servers.snapshot(), time.monotonic()
        info["machine"] = sampler.stop()
        info["seconds"] = ended - started
        info["used"] = measure.cpu_delta(before, after)
        info["per_worker"] = measure.per_pid_delta(before["workers"], after["workers"])
        self.windows[name] = info

    # --- phases --------------------------------------------------------------------------------
    def connect(self) -> dict[str, Any]:
        """Every client connects and joins its room."""
        with self.window("connect", unit="connection") as window:
            for _, conn in self.children:
                conn.send(("connect",))
            reports = self._gather("connected", timeout=self.connect_bound)
        self.established = [r["established"] for r in reports]
        window["units"] = established = sum(self.established)
        first = min(r["first_attempt"] for r in reports)
        lasts = [r["last_established"] for r in reports if r["last_established"] is not None]
        seconds = max(lasts) - first if lasts else None
        self.room_members = {int(room): n for room, n in merged(reports, "rooms").items()}
        return {
            "attempted": sum(r["attempted"] for r in reports),
            "established": established,
            "failures": merged(reports, "failures"),
            "connect_seconds": round(seconds, 3) if seconds else None,
            "connect_rate": round(established / seconds, 1) if seconds else None,
            "connect_ms": measure.percentiles([ms for r in reports for ms in r["connect_ms"]]),
        }

    def send(self, duration: float, rate: float, drain: float) -> dict[str, Any]:
        """A send window: ``rate`` signals/s over all processes for ``duration`` seconds, each
        process's share in proportion to its established clients, then ``drain`` seconds."""
        total = sum(self.established) or 1
        t0 = time.monotonic() + 0.5
        for (_, conn), share in zip(self.children, self.established, strict=True):
            conn.send(("send", t0, duration, rate * share / total, drain))
        measure.wait_until(t0)
        with self.profiles(duration + drain) as profiles, self.window("send", unit="delivery"):
            reports = self._gather("sent", timeout=duration + drain + MARGIN_SECONDS)
        self.profile = profiles.summaries() if profiles else None
        return {
            "scheduled": sum(r["scheduled"] for r in reports),
            "unsent": sum(r["unsent"] for r in reports),
            "send_failures": sum(r["send_failures"] for r in reports),
            "send_seconds": max(r["send_seconds"] for r in reports),
            "send_lag_max_ms": max(r["send_lag_max_ms"] for r in reports),
            "sent_ids": [i for r in reports for i in r["sent_ids"]],
            "sent_rooms": [i for r in reports for i in r["sent_rooms"]],
            "latencies_ms": [v for r in reports for v in r["latencies_ms"]],
            "received": merged(reports, "received"),
            "errors": merged(reports, "errors"),
            "generator_cpu_seconds": sum(r["cpu_seconds"] for r in reports),
        }

    @contextlib.contextmanager
    def profiles(self, seconds: float) -> Iterator[Profiles | None]:
        """py-spy on the workers for ``seconds`` when the target asks for profiles."""
        if not (self.target.profile_dir and self.target.pids):
            yield None
            return
        directory = f"{self.target.profile_dir}/{type(self).__name__.lower()}"
        with worker_profiles(self.target.pids, seconds, directory) as profiles:
            yield profiles

    def stop(self) -> dict[str, Any]:
        for _, conn in self.children:
            conn.send(("stop",))
        reports = self._gather("stopped", timeout=MARGIN_SECONDS)
        return {
            "open": sum(r["open"] for r in reports),
            "closed_by_server": merged(reports, "closed_by_server"),
            "errors": merged(reports, "errors"),
        }

    # --- the JSON line -------------------------------------------------------------------------
    def result(
        self, scenario: str, parameters: dict[str, Any], results: dict[str, Any]
    ) -> dict[str, Any]:
        windows = {}
        for name, info in self.windows.items():
            report = measure.cpu_report(
                info["used"], window=info["seconds"], units=info["units"], machine=info["machine"]
            )
            report["workers_cores_each"] = [
                round(seconds / info["seconds"], 3) for seconds in info["per_worker"].values()
            ]
            windows[name] = {"unit": info["unit"], **report, **info["machine"]}
        worst_steal = max((w["steal_pct"] for w in windows.values()), default=0.0)
        return {
            "scenario": scenario,
            "parameters": {
                **parameters,
                "urls": self.target.urls,
                "pids": self.target.pids,
                "procs": self.procs,
                "connect_rate": self.target.connect_rate,
                "origin": self.target.origin,
            },
            "layer": layer_description(),
            "results": results,
            "profile": getattr(self, "profile", None),
            "windows": windows,
            "steal_pct": worst_steal,
            "rerun_for_steal": worst_steal > STEAL_LIMIT_PCT,
            "machine_before": self.machine_before,
            "server_log": scan_logs(self.target.logs() if self.target.logs else None),
            "processes": {
                "redis": self.servers.redis,
                "postgres": self.servers.postgres,
                "generators": self.servers.generators,
            },
        }


class BareRun(Run):
    """The fan-out clients against a bare relay (monitoring/baseline.py): ``relay`` is "bare"
    (stock Channels) or "lean" (without the per-message hop to the ORM thread)."""

    entry = staticmethod(bare_generator_main)

    def __init__(self, target: Target, options: FanoutOptions, relay: str) -> None:
        if relay not in RELAYS:
            raise ValueError(f"relay must be one of {', '.join(RELAYS)}")
        super().__init__(target, options.rooms * options.members, options.members)
        self.relay_path = f"/ws/bench/{relay}/"

    def _spec(self, i: int, url: str, ticket: str) -> ClientSpec:
        room = i // self.members
        name = BARE_ROOM_FORMAT.format(room)
        url = f"{url.rstrip('/')}{self.relay_path}?ticket={ticket}&room={name}"
        return ClientSpec(i, url, name, room, i % self.members)


def merged(reports: list[dict[str, Any]], key: str) -> dict[Any, int]:
    """The sum of the children's ``key`` histograms."""
    total: Counter[Any] = Counter()
    for report in reports:
        total.update(report[key])
    return dict(total)


def presence_url(url: str) -> str:
    """``ws://host:port`` (or one with a path already) -> the presence endpoint."""
    url = url.rstrip("/")
    return url + "/" if url.endswith(WS_PATH.rstrip("/")) else url + WS_PATH


def layer_description() -> dict[str, Any]:
    layer = settings.CHANNEL_LAYERS["default"]
    config = layer.get("CONFIG", {})
    host = (config.get("hosts") or [{}])[0]
    return {
        "name": getattr(settings, "REALTIME_CHANNEL_LAYER", None),
        "backend": layer["BACKEND"].rsplit(".", 1)[-1],
        "capacity": config.get("capacity"),
        "max_connections": host.get("max_connections") if isinstance(host, dict) else None,
    }
