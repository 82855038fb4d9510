"""``/ws/monitoring/events/``: the system events live, for staff only (DESIGN sections 4, 8).

On join: the events after ``?since=<id>`` (oldest first, at most MAX_REPLAY), or the latest
LATEST, as ``monitoring.event.recorded`` frames (no ``stream``/``seq``: see monitoring/events.py),
then ``monitoring.events.ready`` ``{"last_id", "kinds", "severities"}``. Then every new
event that passes the socket's filters. ``?kind=login_failed,security_alert`` and
``?severity=warning,critical`` filter from the start; ``monitoring.events.filter``
``{"kinds": [...], "severities": [...]}`` changes them (empty lists: everything).
"""

from __future__ import annotations

import json
from typing import Any

from config.errors import AppError, ErrorCode
from config.realtime.consumer import RealtimeConsumer, command
from config.realtime.envelope import encode_event
from config.realtime.ordered import query_param, since_param
from config.realtime.orm import database_sync_to_async
from monitoring.events import EVENT_RECORDED, STAFF_GROUP, event_payload
from monitoring.models import EventKind, Severity
from monitoring.selectors import events_filtered

LATEST = 50
MAX_REPLAY = 500


def _choices(value: object, allowed: list[str], name: str) -> frozenset[str]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part]
    if not isinstance(value, list) or not all(v in allowed for v in value):
        raise AppError(ErrorCode.INVALID, f"'{name}' must be a list of: {', '.join(allowed)}.")
    return frozenset(value)


class StaffEventsConsumer(RealtimeConsumer):
    app = "monitoring"

    async def authorize(self) -> None:
        if not self.user.is_staff:
            raise AppError(ErrorCode.FORBIDDEN, "The system events are for staff.")

    async def on_connect(self) -> None:
        try:
            kinds, severities = (query_param(self.scope, n) or "" for n in ("kind", "severity"))
            self.kinds = _choices(kinds, EventKind.values, "kind")
            self.severities = _choices(severities, Severity.values, "severity")
        except AppError:
            self.kinds = self.severities = frozenset()  # unreadable filters: everything
        # Ids are not in commit order across workers, so no "highest seen" rule: the ones sent
        # at join are remembered, and only those are dropped when they also arrive live.
        self.replayed: set[int] = set()
        await self.join_group(STAFF_GROUP)
        events = await database_sync_to_async(self._opening)(since_param(self.scope))
        for payload in events:
            await self._send_event(payload)
        ready = {
            "last_id": events[-1]["id"] if events else None,
            "kinds": sorted(self.kinds),
            "severities": sorted(self.severities),
        }
        await self.send_frame("event", encode_event("monitoring.events.ready", ready))

    def _opening(self, since: int | None) -> list[dict[str, Any]]:
        events = events_filtered(kinds=self.kinds, severities=self.severities, since=since)
        if since is None:
            return [event_payload(e) for e in reversed(events[:LATEST])]
        return [event_payload(e) for e in events.order_by("id")[:MAX_REPLAY]]

    async def _send_event(self, payload: dict[str, Any]) -> None:
        self.replayed.add(payload["id"])  # a live copy of these is not sent again
        frame = encode_event(EVENT_RECORDED, payload)  # no seq: ids are not in commit order
        await self.send_frame("event", frame)

    @command("monitoring.events.filter")
    async def on_filter(self, data: dict[str, Any]) -> dict[str, Any]:
        self.kinds = _choices(data.get("kinds", []), EventKind.values, "kinds")
        self.severities = _choices(data.get("severities", []), Severity.values, "severities")
        return {"kinds": sorted(self.kinds), "severities": sorted(self.severities)}

    async def realtime_frame(self, message: dict[str, Any]) -> None:
        event = json.loads(message["frame"])  # staff sockets are few; events are not many
        if event.get("type") == EVENT_RECORDED:
            data = event["data"]
            if data["id"] in self.replayed:
                self.replayed.discard(data["id"])
                return
            if (self.kinds and data["kind"] not in self.kinds) or (
                self.severities and data["severity"] not in self.severities
            ):
                return
        await super().realtime_frame(message)
