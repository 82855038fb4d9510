"""Health alerts from periodic samples, with hysteresis. Pure: no clock, no I/O.

A sample maps a metric to its value; ``None`` means the dependency failed outright, and a
metric left out (Redis when REDIS_URL is unset) is not judged at all:

    {"cpu_percent": 37.5, "memory_percent": 61.0, "database_ms": 0.9,
     "redis_ms": None, "channel_layer_ms": 1.4}

A metric is breached when its value reaches its threshold (``>=``, as alert rules fire when a
count reaches theirs) or is ``None``. ``breaches_to_alert`` breached samples in a row raise one
alert; while the metric stays breached nothing more is raised; ``oks_to_recover`` OK samples in a
row then raise one "recovered". An alert is critical when a sample of the breach run that raised
it was ``None`` or reached the metric's critical level; otherwise a warning:

    thresholds = parse_thresholds({"cpu_percent": 90, "database_ms": {"warning": 250,
                                   "critical": 1000}}, breaches_to_alert=3, oks_to_recover=3)
    state = State()
    for sample in samples:
        state, transitions = evaluate(state, sample, thresholds)
    # transitions: [Transition(metric="database_ms", state="alert", severity="critical",
    #                          value=None, threshold=250.0)]

``State`` is an immutable value the caller keeps between samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

METRICS = ("cpu_percent", "memory_percent", "database_ms", "redis_ms", "channel_layer_ms")
ALERT = "alert"
RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class Limit:
    warning: float
    critical: float | None = None

    def __post_init__(self) -> None:
        if self.warning < 0:
            raise ValueError("a threshold must not be negative")
        if self.critical is not None and self.critical < self.warning:
            raise ValueError("the critical level must not be below the warning threshold")

    def breached(self, value: float | None) -> bool:
        return value is None or value >= self.warning

    def critical_at(self, value: float | None) -> bool:
        return value is None or (self.critical is not None and value >= self.critical)

    def passed(self, value: float | None) -> float:
        """The threshold a value is reported against: the highest one it reached."""
        if value is not None and self.critical is not None and value >= self.critical:
            return self.critical
        return self.warning


@dataclass(frozen=True, slots=True)
class Thresholds:
    limits: Mapping[str, Limit]
    breaches_to_alert: int = 3
    oks_to_recover: int = 3

    def __post_init__(self) -> None:
        if self.breaches_to_alert < 1 or self.oks_to_recover < 1:
            raise ValueError("breaches to alert and OKs to recover must be at least 1")


@dataclass(frozen=True, slots=True)
class MetricState:
    alerting: bool = False
    # Samples in a row pointing the other way: breaches while OK, OKs while alerting.
    streak: int = 0
    critical: bool = False  # a breach of the current run was critical


@dataclass(frozen=True, slots=True)
class State:
    metrics: tuple[tuple[str, MetricState], ...] = ()

    def of(self, metric: str) -> MetricState:
        return dict(self.metrics).get(metric, MetricState())

    def alerting(self) -> list[str]:
        return [metric for metric, state in self.metrics if state.alerting]


@dataclass(frozen=True, slots=True)
class Transition:
    metric: str
    state: str  # ALERT or RECOVERED
    severity: str  # "warning" or "critical" for an alert, "info" for a recovery
    value: float | None
    threshold: float


def evaluate(
    state: State, sample: Mapping[str, float | None], thresholds: Thresholds
) -> tuple[State, list[Transition]]:
    """The state after ``sample`` and the alerts and recoveries it raises, in sample order."""
    metrics = dict(state.metrics)
    transitions = []
    for metric, value in sample.items():
        limit = thresholds.limits.get(metric)
        if limit is None:
            continue
        current = metrics.get(metric, MetricState())
        metrics[metric], transition = step(metric, current, value, limit, thresholds)
        if transition is not None:
            transitions.append(transition)
    return State(tuple(sorted(metrics.items()))), transitions


def step(
    metric: str, current: MetricState, value: float | None, limit: Limit, thresholds: Thresholds
) -> tuple[MetricState, Transition | None]:
    """One metric's next state, and the transition it raises, if any."""
    breached = limit.breached(value)
    if current.alerting:
        return _while_alerting(metric, current, breached, value, limit, thresholds.oks_to_recover)
    if not breached:
        return MetricState(), None
    streak = current.streak + 1
    critical = current.critical or limit.critical_at(value)
    if streak < thresholds.breaches_to_alert:
        return MetricState(streak=streak, critical=critical), None
    severity = "critical" if critical else "warning"
    return MetricState(alerting=True), Transition(
        metric, ALERT, severity, value, limit.passed(value)
    )


def _while_alerting(
    metric: str,
    current: MetricState,
    breached: bool,
    value: float | None,
    limit: Limit,
    oks_to_recover: int,
) -> tuple[MetricState, Transition | None]:
    if breached:
        return MetricState(alerting=True), None
    streak = current.streak + 1
    if streak < oks_to_recover:
        return MetricState(alerting=True, streak=streak), None
    return MetricState(), Transition(metric, RECOVERED, "info", value, limit.warning)


def parse_thresholds(
    config: Mapping[str, Any], *, breaches_to_alert: int, oks_to_recover: int
) -> Thresholds:
    """From settings: each metric's threshold as a number, or ``{"warning": n, "critical": m}``.
    Raises ValueError naming the metric on a bad one."""
    limits = {}
    for metric, value in config.items():
        if metric not in METRICS:
            raise ValueError(f"{metric!r} is not one of {', '.join(METRICS)}")
        try:
            limits[metric] = _limit(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{metric!r}: {error}") from None
    return Thresholds(limits, breaches_to_alert, oks_to_recover)


def _limit(value: Any) -> Limit:
    if isinstance(value, Mapping):
        if "warning" not in value:
            raise ValueError("a threshold needs its 'warning' level")
        critical = value.get("critical")
        return Limit(float(value["warning"]), None if critical is None else float(critical))
    if isinstance(value, bool):
        raise TypeError("a threshold is a number")
    return Limit(float(value))
