"""``manage.py loadtest hold|fanout|big-room|ot-hot|ot-many|join|comments|forms|churn``: real
WebSocket clients against real Daphne workers.

    manage.py loadtest hold --connections 2000 --rooms 100 --hold 30 \\
        --url ws://127.0.0.1:8001 --url ws://127.0.0.1:8002 --pid 4100 --pid 4101
    manage.py loadtest fanout --rooms 100 --members 10 --rate 1000 --duration 20 --spawn 2
    manage.py loadtest fanout --rooms 100 --members 10 --rate 300 --spawn 2 --baseline
    manage.py loadtest big-room --members 1000 --rate 10 --spawn 2 --baseline
    manage.py loadtest ot-hot --editors 20 --duration 20 --spawn 2
    manage.py loadtest ot-many --documents 100 --duration 20 --spawn 2
    manage.py loadtest join --size-kb 100 --joins 200 --spawn 2
    manage.py loadtest comments --threads 20 --users 10 --rate 100 --duration 20 --spawn 2
    manage.py loadtest forms --forms 10 --respondents 200 --dashboards 2 --rate 100 --spawn 2
    manage.py loadtest churn --clients 200 --duration 300 --spawn 2

``churn`` runs the project's own Python client (``config.client.RealtimeClient``, and
``collab.client.DocumentSession`` for editors) instead of the lean raw sockets of the others:
each client is cut (dropped, or closed and started again) every few seconds while it sends
commands or types, and the workers' memory is sampled (monitoring/loadtest/churnscenarios.py).

With ``--spawn`` the workers get the current environment plus every ``--worker-env KEY=VALUE``;
for ot-hot and ot-many ``REALTIME_RATE_OP``, for comments ``REALTIME_RATE_COMMENT`` and
``REALTIME_RATE_REACTION``, for forms ``REALTIME_RATE_FORM_FILL``, and for churn
``API_RATE_TICKET`` (a ticket per connection), default to 100000/min there (unless set in
the environment or by ``--worker-env``), so that the per-user limiter is not what is measured.

Prints one JSON line of results on stdout (progress goes to stderr). The command shares the
workers' database and Redis: it creates load users (``load-NNNNN``) and mints their tickets
directly. Figures and how to read them: docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.realtime.ratelimit import parse_rate
from monitoring.loadtest.churnscenarios import ChurnOptions, run_churn
from monitoring.loadtest.commentscenarios import CommentsOptions, run_comments
from monitoring.loadtest.formscenarios import FormsOptions, run_forms
from monitoring.loadtest.otscenarios import JoinOptions, OtOptions, run_join, run_ot
from monitoring.loadtest.scenarios import (
    FanoutOptions,
    HoldOptions,
    Target,
    run_fanout,
    run_fanout_with_baseline,
    run_hold,
)
from monitoring.loadtest.workers import daphne_workers

# Per user: a single editor is one load user; at the default 3000/min it could not pass 50 ops/s.
# Small comments and forms runs likewise put many writes on few users.
WORKER_RATE = "100000/min"
# What --spawn workers get per scenario, unless the environment or --worker-env sets it: the
# per-user limiter is not what is measured.
WORKER_RATES = {
    "ot-hot": {"REALTIME_RATE_OP": WORKER_RATE},
    "ot-many": {"REALTIME_RATE_OP": WORKER_RATE},
    "comments": {
        "REALTIME_RATE_COMMENT": WORKER_RATE,
        "REALTIME_RATE_REACTION": WORKER_RATE,
    },
    "forms": {"REALTIME_RATE_FORM_FILL": WORKER_RATE},
    # Every (re)connection asks POST /api/realtime/tickets/ for its ticket.
    "churn": {"API_RATE_TICKET": WORKER_RATE},
}


class Command(BaseCommand):
    help = "Drive WebSocket clients against Daphne workers; print one JSON line of results."

    def add_arguments(self, parser: CommandParser) -> None:
        scenarios = parser.add_subparsers(dest="scenario", required=True)
        hold = scenarios.add_parser("hold", help="connect N clients and hold them open")
        hold.add_argument("--connections", type=int, required=True)
        hold.add_argument("--rooms", type=int, default=100)
        hold.add_argument("--hold", type=float, default=30.0, help="seconds to hold (default 30)")
        fanout = scenarios.add_parser("fanout", help="room signals at a fixed aggregate rate")
        fanout.add_argument("--rooms", type=int, default=100)
        fanout.add_argument("--members", type=int, default=10)
        fanout.add_argument("--rate", type=float, required=True, help="signals/s in, in total")
        big_room = scenarios.add_parser(
            "big-room", help="fanout in one room of 1,000 members, 10 broadcasts/s"
        )
        big_room.add_argument("--members", type=int, default=1000)
        big_room.add_argument("--rate", type=float, default=10.0, help="signals/s in, in total")
        big_room.set_defaults(rooms=1)
        for sub in (fanout, big_room):
            sub.add_argument("--duration", type=float, default=20.0, help="seconds of sending")
            sub.add_argument(
                "--drain", type=float, default=3.0, help="seconds after the last send (default 3)"
            )
            sub.add_argument(
                "--settle",
                type=float,
                default=1.0,
                help="seconds between the last join and the first signal (default 1)",
            )
            sub.add_argument(
                "--profile",
                metavar="DIR",
                help="py-spy the workers during the send window; raw profiles go to DIR and "
                "the top frames into the JSON line (needs py-spy: pip install '.[bench]')",
            )
            sub.add_argument(
                "--baseline",
                nargs="?",
                const="bare",
                choices=["bare", "lean", "both"],
                help="first run the same load against a bare Channels relay on the same workers "
                "(stock 'bare', the default; 'lean' without the per-message ORM-thread hop; or "
                "both) and report our/relay ratios; the workers need REALTIME_BARE_BASELINE=1 "
                "(--spawn sets it)",
            )
        hot = scenarios.add_parser("ot-hot", help="K editors on one document, one op in flight")
        hot.add_argument("--editors", type=int, default=20)
        many = scenarios.add_parser("ot-many", help="D documents, one editor each")
        many.add_argument("--documents", type=int, default=100)
        for sub in (hot, many):
            sub.add_argument("--duration", type=float, default=20.0, help="seconds of editing")
            sub.add_argument(
                "--settle", type=float, default=15.0, help="bound on the wait to converge"
            )
            sub.add_argument(
                "--type-interval",
                type=float,
                default=0.02,
                help="seconds between keystrokes into a busy editor's buffer (default 0.02)",
            )
            sub.add_argument("--seed", type=int, default=0)
        join = scenarios.add_parser("join", help="timed joins of one large document")
        join.add_argument("--size-kb", type=float, default=100.0)
        join.add_argument("--joins", type=int, default=200)
        join.add_argument("--concurrency", type=int, default=1)
        join.add_argument("--warmup", type=int, default=10, help="unmeasured joins first")
        comments = scenarios.add_parser("comments", help="comments and reactions on T threads")
        comments.add_argument("--threads", type=int, default=20)
        comments.add_argument("--users", type=int, default=10, help="per thread, one socket each")
        comments.add_argument("--rate", type=float, default=100.0, help="writes/s in, in total")
        comments.add_argument("--duration", type=float, default=20.0, help="seconds of writing")
        comments.add_argument(
            "--reaction-share", type=float, default=0.2, help="of the writes (default 0.2)"
        )
        comments.add_argument(
            "--settle", type=float, default=15.0, help="bound on the waits for acks and deliveries"
        )
        comments.add_argument("--seed", type=int, default=0)
        forms = scenarios.add_parser("forms", help="respondents filling forms, dashboards watching")
        forms.add_argument("--forms", type=int, default=10)
        forms.add_argument("--respondents", type=int, default=200, help="in total, one socket each")
        forms.add_argument("--dashboards", type=int, default=2, help="per form (default 2)")
        forms.add_argument("--rate", type=float, default=100.0, help="updates/s in, in total")
        forms.add_argument(
            "--invalid-share",
            type=float,
            default=0.3,
            help="of the fields, a wrong first try that the next update puts right (default 0.3)",
        )
        forms.add_argument(
            "--settle", type=float, default=15.0, help="bound on the waits for answers and boards"
        )
        forms.add_argument("--seed", type=int, default=0)
        churn = scenarios.add_parser(
            "churn", help="clients of the Python client library cut and reconnecting"
        )
        self._add_churn_arguments(churn)
        for sub in (hold, fanout, big_room, hot, many, join, comments, forms, churn):
            self._add_target_arguments(sub)

    @staticmethod
    def _add_churn_arguments(churn: Any) -> None:
        churn.add_argument("--clients", type=int, default=200, help="in total (default 200)")
        churn.add_argument(
            "--duration", type=float, default=60.0, help="seconds of churn (default 60)"
        )
        churn.add_argument(
            "--editors", type=int, help="of the clients, document editors (default clients/20)"
        )
        churn.add_argument(
            "--documents", type=int, help="shared by the editors (default editors/5)"
        )
        churn.add_argument("--rooms", type=int, help="of the presence clients (default one per 10)")
        churn.add_argument(
            "--cut-min", type=float, default=1.0, help="seconds open before a cut, from (default 1)"
        )
        churn.add_argument("--cut-max", type=float, default=5.0, help="... to (default 5)")
        churn.add_argument(
            "--clean-share",
            type=float,
            default=0.2,
            help="of the cuts, close() and start() again; the rest drop() (default 0.2)",
        )
        churn.add_argument(
            "--command-interval",
            type=float,
            default=5.0,
            help="mean seconds between a presence client's commands (default 5)",
        )
        churn.add_argument(
            "--type-interval",
            type=float,
            default=0.5,
            help="mean seconds between an editor's keystrokes (default 0.5)",
        )
        churn.add_argument("--backoff-base", type=float, default=0.1, help="seconds (0.1)")
        churn.add_argument("--backoff-cap", type=float, default=1.0, help="seconds (1)")
        churn.add_argument("--breaker-threshold", type=int, default=5)
        churn.add_argument("--breaker-cooldown", type=float, default=2.0, help="seconds (2)")
        churn.add_argument(
            "--sample-interval", type=float, default=5.0, help="seconds between memory samples"
        )
        churn.add_argument(
            "--warmup",
            type=float,
            help="seconds of churn before the memory baseline (default duration/4, at most 60)",
        )
        churn.add_argument(
            "--max-growth-pct",
            type=float,
            default=5.0,
            help="worker RSS growth after the warm-up that fails the run (default 5)",
        )
        churn.add_argument(
            "--settle", type=float, default=30.0, help="bound on the waits after the churn"
        )
        churn.add_argument("--seed", type=int, default=0)

    @staticmethod
    def _add_target_arguments(parser: Any) -> None:
        parser.add_argument("--url", action="append", default=[], help="ws://host:port (repeat)")
        parser.add_argument("--pid", action="append", type=int, default=[], help="worker PID")
        parser.add_argument("--spawn", type=int, default=0, help="start N workers for the run")
        parser.add_argument(
            "--worker-env",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="extra environment of --spawn workers (repeat)",
        )
        parser.add_argument("--worker-log", action="append", default=[], help="worker log file")
        parser.add_argument("--redis-pid", type=int, help="default: the redis-server process")
        parser.add_argument("--pg-pid", type=int, help="default: the PostgreSQL postmaster")
        parser.add_argument(
            "--connect-rate", type=float, default=0.0, help="attempts/s in total; 0 = all at once"
        )
        parser.add_argument("--procs", type=int, default=2, help="generator processes")
        parser.add_argument("--handshake-timeout", type=float, default=30.0)
        parser.add_argument(
            "--origin", help="Origin header (default: first of DJANGO_WS_ALLOWED_ORIGINS)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self._check(options)
        # SIGTERM (timeout, CI) unwinds like Ctrl-C, so spawned workers and generator processes
        # are stopped by the context managers below instead of being orphaned.
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if main_thread else None
        try:
            self._handle(options)
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)

    def _handle(self, options: dict[str, Any]) -> None:
        if options["spawn"]:
            env = worker_env(options)
            if env:
                sys.stderr.write(f"worker env: {env}\n")
            with daphne_workers(options["spawn"], env=env) as workers:
                target = self._target(
                    options,
                    urls=[worker.ws_url("") for worker in workers],
                    pids=[worker.pid for worker in workers],
                    logs=lambda: [worker.log() for worker in workers],
                )
                result = self._run(target, options)
        else:
            paths = options["worker_log"]
            target = self._target(
                options,
                urls=options["url"],
                pids=options["pid"],
                logs=(lambda: [_read(path) for path in paths]) if paths else None,
            )
            result = self._run(target, options)
        self.stdout.write(json.dumps(result, separators=(",", ":")))
        if result["results"].get("ok") is False:
            raise CommandError(f"{options['scenario']}: not ok (see results.problems)")

    def _check(self, options: dict[str, Any]) -> None:
        if bool(options["spawn"]) == bool(options["url"]):
            raise CommandError("Give either --url (one per worker) or --spawn N.")
        if options["spawn"] and options["pid"]:
            raise CommandError("--pid is for --url workers; --spawn knows its workers' PIDs.")
        if not settings.REDIS_URL:
            # Tickets minted here must be readable by every worker.
            raise CommandError("Set REDIS_URL: tickets are minted in the workers' Redis.")
        if options["spawn"] > 1 and not os.environ.get("DATABASE_URL"):
            raise CommandError(
                "Set DATABASE_URL and REDIS_URL for a multi-worker run: workers on SQLite and "
                "in-memory layers share nothing."
            )
        for item in options["worker_env"]:
            if "=" not in item:
                raise CommandError(f"--worker-env {item!r}: expected KEY=VALUE.")
        if options["worker_env"] and not options["spawn"]:
            raise CommandError("--worker-env is for --spawn workers.")
        if options["scenario"] == "comments" and not (
            options["threads"] > 0
            and options["users"] > 0
            and options["rate"] > 0
            and 0 <= options["reaction_share"] <= 1
        ):
            raise CommandError("comments: give threads, users and rate > 0, reaction share 0..1.")
        if options["scenario"] == "forms" and not (
            options["forms"] > 0
            and options["respondents"] > 0
            and options["dashboards"] > 0
            and options["rate"] > 0
            and 0 <= options["invalid_share"] <= 1
        ):
            raise CommandError(
                "forms: give forms, respondents, dashboards and rate > 0, invalid share 0..1."
            )
        if options["scenario"] == "churn" and not (
            options["clients"] > 0
            and options["duration"] > 0
            and 0 < options["cut_min"] <= options["cut_max"]
            and 0 <= options["clean_share"] <= 1
            and options["command_interval"] > 0
            and options["type_interval"] > 0
            and options["sample_interval"] > 0
            and options["backoff_base"] >= 0
            and options["backoff_cap"] >= 0
        ):
            raise CommandError(
                "churn: give clients, duration, intervals > 0, cut-min <= cut-max, "
                "clean share 0..1."
            )
        if options["scenario"] in ("fanout", "big-room"):
            per_client = options["rate"] / (options["rooms"] * options["members"])
            limit = settings.REALTIME_RATES["presence.signal.send"]
            rate = parse_rate(limit)
            if per_client * rate.period > rate.limit:
                raise CommandError(
                    f"{per_client:.2f} signals/s per client exceeds REALTIME_RATE_SIGNAL "
                    f"({limit}): add clients or raise the limit for the workers."
                )

    def _target(self, options: dict[str, Any], **fields: Any) -> Target:
        return Target(
            **fields,
            redis_pid=options["redis_pid"],
            pg_pid=options["pg_pid"],
            origin=options["origin"] or settings.REALTIME_ALLOWED_ORIGINS[0],
            procs=options["procs"],
            handshake_timeout=options["handshake_timeout"],
            connect_rate=options["connect_rate"],
            profile_dir=options.get("profile"),
        )

    def _run(self, target: Target, options: dict[str, Any]) -> dict[str, Any]:
        sys.stderr.write(f"loadtest {options['scenario']} against {', '.join(target.urls)}\n")
        result = self._run_scenario(target, options)
        if options["scenario"] in WORKER_RATES:
            result["parameters"]["worker_env"] = worker_env(options) if options["spawn"] else None
        return result

    def _run_scenario(self, target: Target, options: dict[str, Any]) -> dict[str, Any]:
        scenario = options["scenario"]
        if scenario in ("ot-hot", "ot-many"):
            hot = scenario == "ot-hot"
            return run_ot(
                target,
                OtOptions(
                    documents=1 if hot else options["documents"],
                    editors=options["editors"] if hot else 1,
                    duration=options["duration"],
                    settle=options["settle"],
                    type_interval=options["type_interval"],
                    seed=options["seed"],
                ),
            )
        if scenario == "comments":
            return run_comments(
                target,
                CommentsOptions(
                    threads=options["threads"],
                    users=options["users"],
                    rate=options["rate"],
                    duration=options["duration"],
                    reaction_share=options["reaction_share"],
                    settle=options["settle"],
                    seed=options["seed"],
                ),
            )
        if scenario == "forms":
            return run_forms(
                target,
                FormsOptions(
                    forms=options["forms"],
                    respondents=options["respondents"],
                    dashboards=options["dashboards"],
                    rate=options["rate"],
                    invalid_share=options["invalid_share"],
                    settle=options["settle"],
                    seed=options["seed"],
                ),
            )
        if scenario == "churn":
            return run_churn(target, churn_options(options))
        if scenario == "join":
            return run_join(
                target,
                JoinOptions(
                    size_kb=options["size_kb"],
                    joins=options["joins"],
                    concurrency=options["concurrency"],
                    warmup=options["warmup"],
                ),
            )
        if scenario == "hold":
            return run_hold(
                target, HoldOptions(options["connections"], options["rooms"], options["hold"])
            )
        fanout = FanoutOptions(
            rooms=options["rooms"],
            members=options["members"],
            rate=options["rate"],
            duration=options["duration"],
            drain=options["drain"],
            settle=options["settle"],
        )
        if options["baseline"]:
            relays = ["bare", "lean"] if options["baseline"] == "both" else [options["baseline"]]
            return run_fanout_with_baseline(target, fanout, relays, name=scenario)
        return run_fanout(target, fanout, name=scenario)


def worker_env(options: dict[str, Any]) -> dict[str, str]:
    """The environment --spawn workers get on top of ours."""
    env = {
        key: value
        for key, value in WORKER_RATES.get(options["scenario"], {}).items()
        if key not in os.environ
    }
    if options.get("baseline"):
        env["REALTIME_BARE_BASELINE"] = "1"
    for item in options["worker_env"]:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def churn_options(options: dict[str, Any]) -> ChurnOptions:
    return ChurnOptions(
        clients=options["clients"],
        duration=options["duration"],
        editors=options["editors"],
        documents=options["documents"],
        rooms=options["rooms"],
        cut_min=options["cut_min"],
        cut_max=options["cut_max"],
        clean_share=options["clean_share"],
        command_interval=options["command_interval"],
        type_interval=options["type_interval"],
        backoff_base=options["backoff_base"],
        backoff_cap=options["backoff_cap"],
        breaker_threshold=options["breaker_threshold"],
        breaker_cooldown=options["breaker_cooldown"],
        sample_interval=options["sample_interval"],
        warmup=options["warmup"],
        max_growth_pct=options["max_growth_pct"],
        settle=options["settle"],
        seed=options["seed"],
    )


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _read(path: str) -> str:
    with open(path, errors="replace") as log:
        return log.read()
