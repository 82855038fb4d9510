"""Security alert rules over a sliding window. Pure: times are seconds passed in as ``now``.

A rule counts events of one kind for one key (a user or an IP address) over the last
``window_seconds`` and fires when that count reaches ``threshold``; after firing it stays quiet
for that key for one window, so a burst raises one alert, not one per further failure:

    rule = Rule(name="failed_logins_per_user", kind="login_failed", key="user",
                threshold=5, window_seconds=300, severity="critical")
    rule.fires([10.0, 20.0, 30.0, 40.0, 50.0], now=50.0, last_fired=None)   # True
    rule.fires([10.0, 20.0, 30.0, 40.0, 50.0, 60.0], now=60.0, last_fired=50.0)  # False

A window is the half-open interval ``(now - window_seconds, now]``. Rules come from settings as
dicts (``parse_rules``); ``firings`` replays a series of event times as the recorder sees them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KEYS = frozenset({"user", "ip"})
SEVERITIES = frozenset({"info", "warning", "error", "critical"})


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    kind: str
    key: str  # what events are grouped by: "user" or "ip"
    threshold: int
    window_seconds: float
    severity: str = "warning"

    def __post_init__(self) -> None:
        if self.key not in KEYS:
            raise ValueError(f"rule {self.name!r}: key must be one of {sorted(KEYS)}")
        if self.threshold < 1 or self.window_seconds <= 0:
            raise ValueError(f"rule {self.name!r}: threshold and window must be positive")
        if self.severity not in SEVERITIES:
            raise ValueError(f"rule {self.name!r}: severity must be one of {sorted(SEVERITIES)}")

    def count(self, timestamps: Iterable[float], now: float) -> int:
        """Events of this key within the window that ends at ``now``."""
        start = now - self.window_seconds
        return sum(1 for t in timestamps if start < t <= now)

    def fires(
        self, timestamps: Iterable[float], now: float, last_fired: float | None = None
    ) -> bool:
        """Whether an alert is due at ``now``, given this key's event times and its last alert."""
        if last_fired is not None and now - last_fired < self.window_seconds:
            return False
        return self.count(timestamps, now) >= self.threshold


def firings(rule: Rule, timestamps: Sequence[float]) -> list[float]:
    """The times at which ``rule`` fires when one key's events arrive at ``timestamps`` (sorted),
    each evaluated as it arrives: the recorder's behaviour, replayed."""
    fired: list[float] = []
    for index, now in enumerate(timestamps):
        if rule.fires(timestamps[: index + 1], now, fired[-1] if fired else None):
            fired.append(now)
    return fired


def parse_rules(configs: Iterable[Mapping[str, Any]]) -> tuple[Rule, ...]:
    """Rules from settings; raises ValueError (naming the rule) on a bad one."""
    rules = tuple(_rule(config) for config in configs)
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise ValueError("alert rule names must be unique")
    return rules


def _rule(config: Mapping[str, Any]) -> Rule:
    try:
        return Rule(
            name=str(config["name"]),
            kind=str(config["kind"]),
            key=str(config["key"]),
            threshold=int(config["threshold"]),
            window_seconds=float(config["window_seconds"]),
            severity=str(config.get("severity", "warning")),
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"rule {config.get('name')!r}: missing or bad {error}") from None
