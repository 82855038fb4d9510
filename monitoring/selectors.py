"""Reads of system events."""

from __future__ import annotations

from collections.abc import Collection

from django.db.models import QuerySet

from monitoring.models import SystemEvent


def events_filtered(
    *,
    kinds: Collection[str] = (),
    severities: Collection[str] = (),
    since: int | None = None,
) -> QuerySet[SystemEvent]:
    """Newest first; ``since`` keeps events with a larger id (what a client has not seen)."""
    events = SystemEvent.objects.select_related("actor").order_by("-id")
    if kinds:
        events = events.filter(kind__in=kinds)
    if severities:
        events = events.filter(severity__in=severities)
    if since is not None:
        events = events.filter(pk__gt=since)
    return events
