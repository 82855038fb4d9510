"""Delete system events older than the retention (MONITORING_EVENT_RETENTION_DAYS).

python manage.py prune_events            # run daily, e.g. from a systemd timer or cron
python manage.py prune_events --days 30
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from monitoring.events import events_prune


class Command(BaseCommand):
    help = "Delete system events older than MONITORING_EVENT_RETENTION_DAYS (or --days)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="Retention in days.")

    def handle(self, *args: Any, days: int | None = None, **options: Any) -> None:
        retention = settings.MONITORING_EVENT_RETENTION_DAYS if days is None else days
        if retention < 0:
            self.stderr.write("--days must not be negative.")
            raise SystemExit(2)
        deleted = events_prune(older_than_days=retention)
        self.stdout.write(f"Deleted {deleted} events older than {retention} days.")
