"""Health alerts from samples, with hysteresis (monitoring/sampling.py)."""

from __future__ import annotations

from itertools import groupby, pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.sampling import (
    ALERT,
    RECOVERED,
    Limit,
    State,
    Thresholds,
    Transition,
    evaluate,
    parse_thresholds,
)

LIMIT = Limit(warning=100.0, critical=200.0)
OK, SLOW, VERY_SLOW, DOWN = 10.0, 150.0, 250.0, None


def thresholds(n: int = 3, m: int = 3) -> Thresholds:
    return Thresholds({"database_ms": LIMIT}, breaches_to_alert=n, oks_to_recover=m)


def run(values, rules: Thresholds | None = None, metric: str = "database_ms"):
    """Every transition raised by one metric's values, as (index, transition)."""
    rules = rules or thresholds()
    state, raised = State(), []
    for index, value in enumerate(values):
        state, transitions = evaluate(state, {metric: value}, rules)
        raised += [(index, t) for t in transitions]
    return raised


def runs(values, breached: bool) -> list[int]:
    """Lengths of the runs of breached (or of OK) samples."""
    return [len(list(group)) for key, group in groupby(values, LIMIT.breached) if key == breached]


value = st.one_of(st.sampled_from([OK, SLOW, VERY_SLOW, DOWN]), st.floats(0, 300))
values = st.lists(value, max_size=60)
maybe = st.lists(value, max_size=1)  # a value, or the metric left out of the sample
counts = st.integers(1, 5)


# --- examples ------------------------------------------------------------------------------------
def test_three_slow_samples_raise_one_warning_and_three_good_ones_one_recovery():
    raised = run([SLOW, SLOW, SLOW, SLOW, SLOW, OK, OK, OK, OK])

    assert raised == [
        (2, Transition("database_ms", ALERT, "warning", SLOW, 100.0)),
        (7, Transition("database_ms", RECOVERED, "info", OK, 100.0)),
    ]


def test_a_good_sample_resets_the_breach_count():
    assert run([SLOW, SLOW, OK, SLOW, SLOW, OK, SLOW]) == []


def test_a_breach_resets_the_recovery_count():
    raised = run([SLOW, SLOW, SLOW, OK, OK, SLOW, OK, OK])

    assert [t.state for _, t in raised] == [ALERT]


def test_a_dependency_down_is_critical_and_reported_against_the_warning_threshold():
    ((index, alert),) = run([DOWN, SLOW, SLOW])

    assert index == 2
    assert (alert.severity, alert.value, alert.threshold) == ("critical", SLOW, 100.0)
    ((_, alert),) = run([SLOW, SLOW, DOWN])
    assert (alert.severity, alert.value, alert.threshold) == ("critical", None, 100.0)


def test_a_value_past_the_critical_level_is_critical_and_names_that_level():
    ((_, alert),) = run([SLOW, SLOW, VERY_SLOW])

    assert (alert.severity, alert.threshold) == ("critical", 200.0)


def test_a_value_at_the_threshold_is_a_breach():
    assert [t.state for _, t in run([100.0, 100.0, 100.0])] == [ALERT]
    assert run([99.99] * 10) == []


def test_metrics_without_a_threshold_or_left_out_of_a_sample_are_not_judged():
    rules = thresholds(n=1)
    state, raised = evaluate(State(), {"cpu_percent": 100.0, "database_ms": OK}, rules)
    assert raised == []
    state, raised = evaluate(state, {"cpu_percent": 100.0}, rules)
    assert (raised, state.alerting()) == ([], [])


def test_each_metric_has_its_own_hysteresis():
    rules = Thresholds(
        {"cpu_percent": Limit(90.0), "redis_ms": Limit(100.0)},
        breaches_to_alert=2,
        oks_to_recover=2,
    )
    state = State()
    samples = [
        {"cpu_percent": 95.0, "redis_ms": None},
        {"cpu_percent": 10.0, "redis_ms": None},
        {"cpu_percent": 95.0, "redis_ms": 1.0},
    ]
    raised = []
    for sample in samples:
        state, transitions = evaluate(state, sample, rules)
        raised.append([(t.metric, t.state, t.severity) for t in transitions])

    assert raised == [[], [("redis_ms", ALERT, "critical")], []]
    assert state.alerting() == ["redis_ms"]


def test_the_state_is_an_immutable_value():
    state = State()
    after, _ = evaluate(state, {"database_ms": DOWN}, thresholds(n=1))

    assert state == State()
    assert after.alerting() == ["database_ms"]
    with pytest.raises(AttributeError):
        after.metrics = ()  # type: ignore[misc]


def test_thresholds_parse_from_settings_and_bad_ones_are_named():
    rules = parse_thresholds(
        {"cpu_percent": 90, "database_ms": {"warning": 250, "critical": 1000}},
        breaches_to_alert=3,
        oks_to_recover=2,
    )
    assert rules.limits == {"cpu_percent": Limit(90.0), "database_ms": Limit(250.0, 1000.0)}
    assert (rules.breaches_to_alert, rules.oks_to_recover) == (3, 2)
    for config, message in [
        ({"disk_percent": 90}, "'disk_percent' is not one of"),
        ({"redis_ms": "fast"}, "'redis_ms'"),
        ({"redis_ms": -1}, "'redis_ms': a threshold must not be negative"),
        ({"redis_ms": {"critical": 5}}, "'redis_ms': a threshold needs its 'warning' level"),
        ({"redis_ms": {"warning": 10, "critical": 5}}, "critical level must not be below"),
        ({"redis_ms": True}, "'redis_ms'"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_thresholds(config, breaches_to_alert=3, oks_to_recover=3)
    with pytest.raises(ValueError, match="at least 1"):
        parse_thresholds({}, breaches_to_alert=0, oks_to_recover=3)


# --- properties ----------------------------------------------------------------------------------
@given(values, counts, counts)
def test_alerts_and_recoveries_alternate_starting_with_an_alert(samples, n, m):
    states = [t.state for _, t in run(samples, thresholds(n, m))]

    assert states[:1] in ([], [ALERT])
    assert all(a != b for a, b in pairwise(states))


@given(st.sampled_from([SLOW, VERY_SLOW, DOWN]), st.integers(1, 40), counts, counts)
def test_a_constant_breach_raises_exactly_one_alert_at_the_nth_sample(value, length, n, m):
    raised = run([value] * length, thresholds(n, m))

    assert [(i, t.state) for i, t in raised] == ([(n - 1, ALERT)] if length >= n else [])


@given(values, counts, counts)
def test_alerts_are_at_most_the_breach_runs_of_length_n(samples, n, m):
    raised = run(samples, thresholds(n, m))
    alerts = [t for _, t in raised if t.state == ALERT]
    recoveries = [t for _, t in raised if t.state == RECOVERED]

    assert len(alerts) <= sum(1 for length in runs(samples, True) if length >= n)
    assert len(recoveries) <= sum(1 for length in runs(samples, False) if length >= m)


@given(values, counts, counts)
def test_each_transition_follows_its_run_and_carries_its_severity(samples, n, m):
    for index, transition in run(samples, thresholds(n, m)):
        if transition.state == ALERT:
            window = samples[index - n + 1 : index + 1]
            assert index + 1 >= n and all(LIMIT.breached(v) for v in window)
            critical = any(LIMIT.critical_at(v) for v in window)
            assert transition.severity == ("critical" if critical else "warning")
        else:
            window = samples[index - m + 1 : index + 1]
            assert index + 1 >= m and not any(LIMIT.breached(v) for v in window)
            assert transition.severity == "info"
        assert transition.value == samples[index]


@given(values, counts, counts)
def test_no_run_long_enough_is_missed(samples, n, m):
    raised = dict(run(samples, thresholds(n, m)))
    alerting = False
    for index in range(len(samples)):
        last_n = samples[max(0, index - n + 1) : index + 1]
        last_m = samples[max(0, index - m + 1) : index + 1]
        if not alerting and len(last_n) == n and all(map(LIMIT.breached, last_n)):
            assert raised[index].state == ALERT
        if alerting and len(last_m) == m and not any(map(LIMIT.breached, last_m)):
            assert raised[index].state == RECOVERED
        if index in raised:
            alerting = raised[index].state == ALERT


@given(st.lists(st.tuples(maybe, maybe), max_size=30))
def test_metrics_are_judged_independently(pairs):
    rules = Thresholds({"database_ms": LIMIT, "redis_ms": LIMIT}, 2, 2)
    state, together = State(), []
    for index, (db, redis) in enumerate(pairs):
        sample = {"database_ms": db[0]} if db else {}
        sample |= {"redis_ms": redis[0]} if redis else {}
        state, transitions = evaluate(state, sample, rules)
        together += [(index, t) for t in transitions]

    def alone(metric, column):
        indexed = [(i, p[column][0]) for i, p in enumerate(pairs) if p[column]]
        return [(indexed[i][0], t) for i, t in run([v for _, v in indexed], rules, metric)]

    # A stable sort: within one sample, database_ms comes first, as in the sample.
    assert together == sorted(alone("database_ms", 0) + alone("redis_ms", 1), key=lambda x: x[0])
