"""config/client/backoff.py: full-jitter backoff and the circuit breaker, property-tested."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.client.backoff import CAP_SECONDS, Breaker, backoff_delay

failures = st.integers(min_value=0, max_value=10_000)
unit = st.floats(min_value=0.0, max_value=1.0)


@given(failures, unit)
def test_a_delay_stays_within_zero_and_the_capped_exponential(n, r):
    delay = backoff_delay(failures=n, random=r)

    assert 0.0 <= delay <= min(CAP_SECONDS, 0.5 * 2.0 ** min(n, 64))


@given(failures, unit)
def test_the_ceiling_never_shrinks_as_failures_add_up(n, r):
    assert backoff_delay(failures=n, random=r) <= backoff_delay(failures=n + 1, random=r)


def test_the_ceiling_doubles_from_half_a_second_to_the_cap():
    ceilings = [backoff_delay(failures=n, random=1.0) for n in range(8)]

    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


@pytest.mark.parametrize(("n", "r"), [(-1, 0.5), (0, -0.1), (0, 1.5)])
def test_nonsense_inputs_are_refused(n, r):
    with pytest.raises(ValueError):
        backoff_delay(failures=n, random=r)


@given(st.lists(st.booleans(), max_size=50))
def test_the_breaker_opens_only_after_threshold_failures_in_a_row(outcomes):
    breaker, now, run = Breaker(threshold=3, cooldown=10.0), 0.0, 0
    for ok in outcomes:
        breaker = breaker.succeeded() if ok else breaker.failed(now=now)
        run = 0 if ok else run + 1
        assert breaker.allows(now=now) == (run < 3)
        assert breaker.state(now=now) == ("closed" if run < 3 else "open")
        now += 1.0 if run < 3 else 0.0  # stay inside the cooldown once open


def test_an_open_breaker_lets_one_try_through_after_its_cooldown():
    breaker = Breaker(threshold=2, cooldown=30.0)
    breaker = breaker.failed(now=0.0).failed(now=1.0)

    assert (breaker.state(now=30.9), breaker.allows(now=30.9)) == ("open", False)
    assert (breaker.state(now=31.0), breaker.allows(now=31.0)) == ("half_open", True)
    reopened = breaker.failed(now=31.0)
    assert reopened.state(now=31.0) == "open" and reopened.open_until == 61.0
    assert breaker.succeeded().state(now=31.0) == "closed"


@pytest.mark.parametrize(("random", "until"), [(0.0, 115.0), (0.5, 130.0), (1.0, 145.0)])
def test_the_breaker_opens_for_a_jittered_cooldown(random, until):
    """Clients that failed together (a restart of every worker) must not all come back at once
    when their breakers close (RELIABILITY F11)."""
    breaker = Breaker(threshold=1, cooldown=30.0)

    assert breaker.failed(now=100.0, random=random).open_until == until
