"""Sample this host's health periodically and record health alerts (monitoring/sampler.py).

python manage.py sample_health                     # every MONITORING_HEALTH_INTERVAL_SECONDS
python manage.py sample_health --once              # one sample, e.g. to try the thresholds
python manage.py sample_health --count 10 --interval 1

Prints one JSON line per sample on stdout. Run one per host (CPU and memory are the host's).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring import sampling
from monitoring.sampler import Running, health_sample, thresholds_from_settings, warm_up


class Command(BaseCommand):
    help = "Sample CPU, memory and dependency latencies; record health alerts; print JSON lines."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between samples (default MONITORING_HEALTH_INTERVAL_SECONDS).",
        )
        parser.add_argument("--once", action="store_true", help="Take one sample and exit.")
        parser.add_argument("--count", type=int, default=None, help="Stop after N samples.")

    def handle(
        self,
        *args: Any,
        interval: float | None = None,
        once: bool = False,
        count: int | None = None,
        **options: Any,
    ) -> None:
        interval = settings.MONITORING_HEALTH_INTERVAL_SECONDS if interval is None else interval
        if interval < 0 or (count is not None and count < 1):
            raise CommandError("--interval must not be negative and --count must be positive.")
        try:
            thresholds = thresholds_from_settings()
        except ValueError as error:
            raise CommandError(f"Bad health thresholds: {error}") from None
        try:
            asyncio.run(self.sample(thresholds, interval, 1 if once else count))
        except KeyboardInterrupt:  # Ctrl-C: asyncio.run has cancelled the loop already
            self.stderr.write("Stopped.")

    async def sample(
        self, thresholds: sampling.Thresholds, interval: float, count: int | None
    ) -> None:
        running = Running()
        await warm_up()
        taken = 0
        while count is None or taken < count:
            if taken:
                await asyncio.sleep(interval)
            running, line = await health_sample(running, thresholds=thresholds)
            self.stdout.write(json.dumps(line))
            self.stdout.flush()  # one line at a time through a pipe (journald), not a block
            taken += 1
