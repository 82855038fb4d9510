"""Security alert rules over a sliding window (monitoring/alerts.py)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.alerts import Rule, firings, parse_rules

RULE = Rule(name="r", kind="login_failed", key="user", threshold=5, window_seconds=300)

rules = st.builds(
    Rule,
    name=st.just("r"),
    kind=st.just("login_failed"),
    key=st.sampled_from(["user", "ip"]),
    threshold=st.integers(1, 8),
    window_seconds=st.integers(1, 100).map(float),
)
times = st.lists(st.integers(0, 400).map(float), max_size=40).map(sorted)


def test_five_failures_within_five_minutes_fire():
    assert RULE.fires([0.0, 60.0, 120.0, 180.0, 240.0], now=240.0)


def test_four_failures_or_five_spread_wider_do_not():
    assert not RULE.fires([0.0, 60.0, 120.0, 180.0], now=180.0)
    assert not RULE.fires([0.0, 60.0, 120.0, 180.0, 300.0], now=300.0)  # 0.0 is out: (0, 300]


def test_quiet_for_one_window_after_firing():
    stamps = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert not RULE.fires(stamps, now=6.0, last_fired=4.0)
    assert RULE.fires([*stamps, 301.0, 302.0, 303.0, 304.0], now=304.0, last_fired=4.0)


def test_a_burst_fires_once_and_a_long_attack_once_per_window():
    assert firings(RULE, [float(t) for t in range(20)]) == [4.0]
    assert firings(RULE, [float(t) for t in range(0, 1000, 10)]) == [40.0, 340.0, 640.0, 940.0]


@given(rules, times)
def test_fires_exactly_when_the_window_count_reaches_the_threshold(rule, stamps):
    for now in stamps:
        in_window = [t for t in stamps if now - rule.window_seconds < t <= now]
        assert rule.fires(stamps, now) == (len(in_window) >= rule.threshold)


@given(rules, times)
def test_at_most_once_per_window(rule, stamps):
    assert all(b - a >= rule.window_seconds for a, b in pairwise(firings(rule, stamps)))


@given(rules, times)
def test_the_first_time_the_count_reaches_the_threshold_fires(rule, stamps):
    reached = [now for i, now in enumerate(stamps) if rule.fires(stamps[: i + 1], now)]
    fired = firings(rule, stamps)
    assert fired[:1] == reached[:1]
    # And every moment the count is at the threshold is covered by a firing within one window.
    assert all(any(0 <= now - f < rule.window_seconds for f in fired) for now in reached)


@given(rules, times, st.floats(0, 400))
def test_events_after_now_do_not_count(rule, stamps, now):
    assert rule.count(stamps, now) == rule.count([t for t in stamps if t <= now], now)


def test_rules_parse_from_settings_and_bad_ones_are_named():
    (rule,) = parse_rules(
        [{"name": "x", "kind": "ws_denied", "key": "ip", "threshold": 3, "window_seconds": 60}]
    )
    assert rule == Rule("x", "ws_denied", "ip", 3, 60.0, "warning")
    with pytest.raises(ValueError, match="'y'"):
        parse_rules(
            [{"name": "y", "kind": "k", "key": "host", "threshold": 1, "window_seconds": 1}]
        )
    with pytest.raises(ValueError, match="'w': missing or bad 'threshold'"):
        parse_rules([{"name": "w", "kind": "k", "key": "ip", "window_seconds": 1}])
    with pytest.raises(ValueError, match="unique"):
        parse_rules(
            [{"name": "z", "kind": "k", "key": "ip", "threshold": 1, "window_seconds": 1}] * 2
        )
