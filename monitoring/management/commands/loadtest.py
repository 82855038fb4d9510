"""``manage.py loadtest hold|fanout``: real WebSocket clients against real Daphne workers.

    manage.py loadtest hold --connections 2000 --rooms 100 --hold 30 \\
        --url ws://127.0.0.1:8001 --url ws://127.0.0.1:8002 --pid 4100 --pid 4101
    manage.py loadtest fanout --rooms 100 --members 10 --rate 1000 --duration 20 --spawn 2

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
from monitoring.loadtest.scenarios import (
    FanoutOptions,
    HoldOptions,
    Target,
    run_fanout,
    run_hold,
)
from monitoring.loadtest.workers import daphne_workers


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
        fanout.add_argument("--duration", type=float, default=20.0, help="seconds of sending")
        fanout.add_argument(
            "--drain", type=float, default=3.0, help="seconds after the last send (default 3)"
        )
        for sub in (hold, fanout):
            self._add_target_arguments(sub)

    @staticmethod
    def _add_target_arguments(parser: Any) -> None:
        parser.add_argument("--url", action="append", default=[], help="ws://host:port (repeat)")
        parser.add_argument("--pid", action="append", type=int, default=[], help="worker PID")
        parser.add_argument("--spawn", type=int, default=0, help="start N workers for the run")
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
            with daphne_workers(options["spawn"], env={}) as workers:
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
        if options["scenario"] == "fanout":
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
        )

    def _run(self, target: Target, options: dict[str, Any]) -> dict[str, Any]:
        sys.stderr.write(f"loadtest {options['scenario']} against {', '.join(target.urls)}\n")
        if options["scenario"] == "hold":
            return run_hold(
                target, HoldOptions(options["connections"], options["rooms"], options["hold"])
            )
        return run_fanout(
            target,
            FanoutOptions(
                rooms=options["rooms"],
                members=options["members"],
                rate=options["rate"],
                duration=options["duration"],
                drain=options["drain"],
            ),
        )


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _read(path: str) -> str:
    with open(path, errors="replace") as log:
        return log.read()
