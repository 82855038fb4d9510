"""The health sampler: one sample of this host and its dependencies, judged by
monitoring/sampling.py, its alerts and recoveries stored as ``health_alert`` events.

    running = Running()
    await warm_up()
    running, line = await health_sample(running, thresholds=thresholds_from_settings())
    # line: {"time": ..., "host": "web1", "cpu_percent": 12.5, ..., "events": [...]}

CPU and memory come from psutil; dependency latencies from ``readiness()`` (the checks of
/readyz). ``Running`` is what the sampling loop (``manage.py sample_health``) keeps between
samples: the hysteresis state and any events the database could not take yet.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil
from django.conf import settings
from django.utils import timezone

from monitoring import sampling
from monitoring.events import arecord
from monitoring.health import readiness
from monitoring.models import EventKind

log = logging.getLogger(__name__)

# Events kept for a later sample when recording fails (the database may be what is down);
# beyond this, the oldest are dropped: they are also on stdout and in the log.
MAX_UNRECORDED = 100
WARM_UP_SECONDS = 0.5

Event = tuple[str, dict[str, Any]]  # severity, details


@dataclass(frozen=True, slots=True)
class Running:
    health: sampling.State = field(default_factory=sampling.State)
    unrecorded: tuple[Event, ...] = ()


def thresholds_from_settings() -> sampling.Thresholds:
    """Raises ValueError on a bad MONITORING_HEALTH_THRESHOLDS."""
    return sampling.parse_thresholds(
        settings.MONITORING_HEALTH_THRESHOLDS,
        breaches_to_alert=settings.MONITORING_HEALTH_BREACHES_TO_ALERT,
        oks_to_recover=settings.MONITORING_HEALTH_OKS_TO_RECOVER,
    )


async def warm_up(seconds: float = WARM_UP_SECONDS) -> None:
    """Before the first sample. psutil reports CPU use since its previous call (nothing on the
    first), and a process's first checks include opening connections: make both happen here,
    so that the first sample averages CPU over ``seconds`` and times warm connections."""
    psutil.cpu_percent(interval=None)
    await asyncio.gather(readiness(), asyncio.sleep(seconds))


def host_readings() -> dict[str, float]:
    """CPU use since the previous call and memory in use, both in percent of the host."""
    return {
        "cpu_percent": psutil.cpu_percent(interval=None),
        "memory_percent": psutil.virtual_memory().percent,
    }


def dependency_readings(
    checks: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, float | None], dict[str, str]]:
    """``readiness()`` results as latencies (``None`` when a check failed) and failures."""
    values: dict[str, float | None] = {}
    errors = {}
    for name, check in checks.items():
        metric = f"{name}_ms"
        values[metric] = check["ms"] if check["ok"] else None
        if not check["ok"]:
            errors[metric] = check.get("error", "failed")
    return values, errors


def event_details(
    transition: sampling.Transition, *, host: str, at: str, errors: Mapping[str, str]
) -> dict[str, Any]:
    details = {
        "metric": transition.metric,
        "value": transition.value,
        "threshold": transition.threshold,
        "state": transition.state,
        "host": host,
        # The sample's time: an event stored late (database down) still says when it happened.
        "observed_at": at,
    }
    if transition.metric in errors:
        details["error"] = errors[transition.metric]
    return details


async def record_events(events: Sequence[Event]) -> tuple[list[int], tuple[Event, ...]]:
    """Store events in order: the ids stored, and the events left for the next sample (from the
    first failure on, so that an alert is never stored after its own recovery)."""
    ids = []
    for index, (severity, details) in enumerate(events):
        try:
            event = await arecord(EventKind.HEALTH_ALERT, severity, details=details)
        except Exception as error:  # kept for the next sample: one timeout a sample, not each
            kept = len(events) - index
            log.warning("recording health events failed (%s); %d kept", type(error).__name__, kept)
            return ids, tuple(events[index:])[-MAX_UNRECORDED:]
        ids.append(event.pk)
    return ids, ()


async def health_sample(
    running: Running,
    *,
    thresholds: sampling.Thresholds,
    readings: Mapping[str, float] | None = None,
    host: str | None = None,
) -> tuple[Running, dict[str, Any]]:
    """Take one sample (``readings`` replaces psutil's CPU and memory), record its transitions,
    and return the next running state with the sample's JSON line."""
    host = host or socket.gethostname()
    latencies, errors = dependency_readings(await readiness())
    sample = {**(host_readings() if readings is None else readings), **latencies}
    health, transitions = sampling.evaluate(running.health, sample, thresholds)
    at = timezone.now().isoformat()
    new = [(t.severity, event_details(t, host=host, at=at, errors=errors)) for t in transitions]
    ids, unrecorded = await record_events([*running.unrecorded, *new])
    line = {
        "time": at,
        "host": host,
        **sample,
        "errors": errors,
        "alerting": health.alerting(),
        "events": [_summary(event) for event in new],
        "recorded": ids,
        "unrecorded": len(unrecorded),
    }
    return Running(health, unrecorded), line


def _summary(event: Event) -> dict[str, Any]:
    severity, details = event
    return {"metric": details["metric"], "state": details["state"], "severity": severity}
