"""Rate-limit arithmetic (config/realtime/ratelimit.py), simulated against an in-memory counter.

The simulation counts every hit, refused ones included, exactly as the shared store does (one
INCR per hit), then asks ``decide`` about it.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from config.realtime.ratelimit import (
    Decision,
    Rate,
    Window,
    WindowCounter,
    decide,
    estimate,
    parse_rate,
    window_at,
)

# --- parse_rate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "period"),
    [
        ("120/min", 120, 60.0),
        ("5/10s", 5, 10.0),
        ("1000/h", 1000, 3600.0),
        ("1/day", 1, 86400.0),
        ("30/sec", 30, 1.0),
        ("7/second", 7, 1.0),
        ("2/5min", 2, 300.0),
        ("3/m", 3, 60.0),
        ("4/hour", 4, 3600.0),
        ("9/d", 9, 86400.0),
        (" 3 / 2 min ", 3, 120.0),
        ("600/MIN", 600, 60.0),
    ],
)
def test_parse_rate_reads_count_and_period(text, limit, period):
    assert parse_rate(text) == Rate(limit=limit, period=period)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "120",
        "/min",
        "120/",
        "120/fortnight",
        "-1/min",
        "1.5/min",
        "5/0s",
        "0/min",
        "5/-1s",
        "120/min/x",
        "120 min",
        "120/1.5s",
        "0x10/min",
        "120/ms",
    ],
)
def test_parse_rate_refuses_malformed_rates_with_value_error(text):
    with pytest.raises(ValueError, match="Not a rate"):
        parse_rate(text)


# --- window_at and estimate -----------------------------------------------------------------


def test_window_at_splits_time_into_index_and_elapsed():
    assert window_at(now=1000.5, period=60.0) == Window(index=16, elapsed=40.5)
    assert window_at(now=120.0, period=60.0) == Window(index=2, elapsed=0.0)
    assert window_at(now=0.0, period=10.0) == Window(index=0, elapsed=0.0)


periods = st.sampled_from([1.0, 3.0, 10.0, 60.0, 120.0, 3600.0, 86400.0])
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)


@given(times, periods)
@example(now=8191.200000000001, period=0.30000000000000004)  # now / period rounds up
@example(now=179.99999999999997, period=60.0)
def test_window_at_elapsed_is_within_the_window(now, period):
    window = window_at(now, period)

    assert 0.0 <= window.elapsed < period
    assert window.index * period + window.elapsed == pytest.approx(now, rel=1e-12, abs=1e-9)


def test_estimate_weights_the_previous_window_by_its_overlap():
    assert estimate(previous=80, current=30, elapsed=40.5, period=60.0) == pytest.approx(56.0)
    assert estimate(previous=80, current=30, elapsed=0.0, period=60.0) == 110
    assert estimate(previous=80, current=30, elapsed=60.0, period=60.0) == 30


counts = st.integers(min_value=0, max_value=10_000)


@given(counts, counts, st.floats(min_value=0, max_value=1), periods)
def test_estimate_lies_between_current_and_previous_plus_current(previous, current, share, period):
    value = estimate(previous, current, share * period, period)

    assert current <= value <= previous + current


@given(counts, counts, st.floats(0, 1), st.floats(0, 1), periods)
def test_estimate_never_grows_as_the_window_slides(previous, current, a, b, period):
    early, late = sorted((a * period, b * period))

    assert estimate(previous, current, late, period) <= estimate(previous, current, early, period)


# --- decide ---------------------------------------------------------------------------------


def test_decide_allows_the_docstring_example():
    rate = parse_rate("120/min")

    decision = decide(rate, window_at(1000.5, rate.period), previous=80, current=30)

    assert decision == Decision(allowed=True, retry_after=0.0)


def test_decide_refuses_a_full_window_and_says_when_to_retry():
    rate = parse_rate("10/min")

    decision = decide(rate, Window(index=5, elapsed=30.0), previous=0, current=12)

    assert not decision.allowed
    assert decision.retry_after > 0


def test_decide_lets_a_fresh_client_burst_exactly_the_limit():
    rate = parse_rate("10/min")
    window = Window(index=5, elapsed=1.0)

    allowed = [decide(rate, window, previous=0, current=n).allowed for n in range(1, 20)]

    assert allowed == [True] * 10 + [False] * 9


def test_decide_allows_steady_traffic_one_hit_over_the_even_spread_estimate():
    # 30/min paced every 2 s: at 60 s the previous window holds 30 hits and the estimate, this
    # hit included, is 31. Regression: this was refused, and every hit after it too.
    rate = parse_rate("30/min")

    assert decide(rate, window_at(60.0, rate.period), previous=30, current=1).allowed
    assert decide(rate, window_at(90.0, rate.period), previous=30, current=16).allowed
    assert not decide(rate, window_at(90.0, rate.period), previous=30, current=17).allowed


def test_decide_refuses_more_than_the_limit_in_one_window_after_a_quiet_one():
    rate = parse_rate("10/min")
    window = Window(index=5, elapsed=59.0)

    assert decide(rate, window, previous=1, current=10).allowed
    assert not decide(rate, window, previous=1, current=11).allowed


# --- simulation against an in-memory counter ------------------------------------------------


@dataclass
class Counter:
    """The shared store's hit counting: one increment per hit, allowed or not."""

    rate: Rate
    windows: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    allowed_at: list[float] = field(default_factory=list)

    def hit(self, now: float) -> Decision:
        window = window_at(now, self.rate.period)
        self.windows[window.index] += 1
        decision = decide(
            self.rate,
            window,
            previous=self.windows.get(window.index - 1, 0),
            current=self.windows[window.index],
        )
        if decision.allowed:
            self.allowed_at.append(now)
        return decision


limits = st.integers(min_value=1, max_value=60)
starts = st.floats(min_value=0, max_value=2e9, allow_nan=False)
TICK = 2.0**-20
# Epoch-sized start times on a 2**-20 s grid: start + k * gap below 2**32 is then an exact float.
grid_starts = st.integers(min_value=0, max_value=2**51).map(lambda n: n * TICK)


def exact_gap(period: float, limit: int, load: float = 1.0) -> float:
    """period / (limit * load) rounded up onto the grid: hits are never closer than the rate
    allows, and float rounding never moves one across a window boundary. (With plain floats,
    60 / 11 * 11 is 59.99999999999999: a twelfth hit in the first minute, rightly refused.)"""
    return math.ceil(period / (limit * load) / TICK) * TICK


@given(limits, periods, grid_starts)
@example(limit=30, period=60.0, start=0.0)  # every hit lands on the window grid
@example(limit=11, period=60.0, start=0.0)
@example(limit=1, period=1.0, start=0.0)
@example(limit=60, period=3600.0, start=1_700_000_000.0)
def test_a_client_at_exactly_the_allowed_rate_is_never_refused(limit, period, start):
    counter = Counter(Rate(limit=limit, period=period))
    gap = exact_gap(period, limit)

    decisions = [counter.hit(start + k * gap) for k in range(4 * limit + 3)]

    assert all(decision.allowed for decision in decisions)


@given(limits, periods, grid_starts, st.floats(min_value=0.5, max_value=0.99))
@example(limit=1, period=1.0, start=0.0, load=0.75)  # refused before the fix
def test_a_client_under_the_rate_is_never_refused(limit, period, start, load):
    counter = Counter(Rate(limit=limit, period=period))
    gap = exact_gap(period, limit, load)

    assert all(counter.hit(start + k * gap).allowed for k in range(3 * limit + 3))


def hit_times(period: float) -> st.SearchStrategy[list[float]]:
    """Sorted hit times over a few periods, with bursts (repeated instants) and silences."""
    offsets = st.lists(st.floats(min_value=0, max_value=4 * period), min_size=1, max_size=120)
    return st.tuples(starts, offsets).map(lambda pair: sorted(pair[0] + o for o in pair[1]))


@st.composite
def schedules(draw):  # type: ignore[no-untyped-def]
    rate = Rate(limit=draw(limits), period=draw(periods))
    return rate, draw(hit_times(rate.period))


@given(schedules())
def test_no_fixed_window_allows_more_than_limit_plus_one(schedule):
    rate, times = schedule
    counter = Counter(rate)
    for now in times:
        counter.hit(now)

    per_window: defaultdict[int, int] = defaultdict(int)
    for now in counter.allowed_at:
        per_window[window_at(now, rate.period).index] += 1
    assert max(per_window.values(), default=0) <= rate.limit + 1


def most_in_any_period(allowed_at: list[float], period: float) -> int:
    """The largest number of allowed hits in any half-open interval of ``period`` seconds."""
    best, first = 0, 0
    for last, now in enumerate(allowed_at):
        while allowed_at[first] <= now - period:
            first += 1
        best = max(best, last - first + 1)
    return best


@given(schedules())
def test_no_sliding_period_allows_more_than_twice_the_limit_plus_one(schedule):
    # The sliding-window counter assumes the previous window's hits were spread evenly; a client
    # that packs them at its very end can get close to 2x into one sliding period (never more).
    rate, times = schedule
    counter = Counter(rate)
    for now in times:
        counter.hit(now)

    assert most_in_any_period(counter.allowed_at, rate.period) <= 2 * rate.limit + 1


def test_the_sliding_counter_worst_case_is_twice_the_limit_per_sliding_period():
    # Saved from the property "never more than limit + 1 in any sliding period", which this
    # algorithm cannot give: it only knows the previous window's count, and assumes those hits
    # were spread evenly. A client that packs them at the window's end and then hits the moment
    # each next one is allowed gets 2 * limit into one sliding minute, paced, not in a burst.
    rate = parse_rate("10/min")
    counter = Counter(rate)
    for _ in range(rate.limit):
        assert counter.hit(59.9).allowed
    for k in range(rate.limit):
        assert counter.hit(60.0 + rate.period * k / rate.limit + 1e-6).allowed

    assert most_in_any_period(counter.allowed_at, rate.period) == 2 * rate.limit
    assert not counter.hit(60.0 + rate.period * (rate.limit - 0.5) / rate.limit).allowed
    in_next_window = counter.allowed_at[rate.limit :]
    gaps = [b - a for a, b in itertools.pairwise(in_next_window)]
    assert min(gaps) == pytest.approx(rate.period / rate.limit)


@given(schedules(), st.integers(min_value=1, max_value=5))
def test_waiting_retry_after_is_enough_for_the_next_hit(schedule, extra):
    rate, times = schedule
    counter = Counter(rate)
    for now in times:
        counter.hit(now)
    # Then a burst at the last instant until it is refused.
    last = times[-1]
    decision = counter.hit(last)
    for _ in range(2 * rate.limit + extra):
        if not decision.allowed:
            break
        decision = counter.hit(last)
    assume(not decision.allowed)

    assert 0 < decision.retry_after <= 2 * rate.period
    assert counter.hit(last + decision.retry_after).allowed


@given(limits, periods, st.floats(min_value=0, max_value=0.999), counts, counts)
def test_refused_hits_say_how_long_to_wait_and_allowed_ones_say_zero(
    limit, period, share, previous, current
):
    rate = Rate(limit=limit, period=period)
    assume(current >= 1)

    decision = decide(
        rate, Window(index=7, elapsed=share * period), previous=previous, current=current
    )

    if decision.allowed:
        assert decision.retry_after == 0.0
    else:
        assert decision.retry_after > 0
        assert math.isfinite(decision.retry_after)


def test_window_counter_allows_the_limit_then_refuses_until_the_window_slides():
    rate = parse_rate("3/10s")
    counter = WindowCounter()

    decisions = [counter.hit(rate, now=100.0 + n * 0.1) for n in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    later = 100.3 + decisions[3].retry_after
    assert counter.hit(rate, now=later).allowed


@given(
    gaps=st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), min_size=1, max_size=60)
)
def test_window_counter_decides_as_the_shared_counter_would(gaps):
    """In process or in Redis, one connection's hits get the same decisions."""
    rate = parse_rate("5/10s")
    counter, counts, now = WindowCounter(), {}, 1_000.0
    for gap in gaps:
        now += gap
        window = window_at(now, rate.period)
        counts[window.index] = counts.get(window.index, 0) + 1
        shared = decide(
            rate,
            window,
            previous=counts.get(window.index - 1, 0),
            current=counts[window.index],
        )
        assert counter.hit(rate, now) == shared
