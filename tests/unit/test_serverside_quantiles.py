"""handler_quantiles (tests/system/faults/serverside.py): quantiles of a Prometheus histogram
between two readings, as histogram_quantile interpolates them."""

from __future__ import annotations

import math

from tests.system.faults.serverside import handler_quantiles

INF = math.inf


def test_only_what_was_observed_between_the_readings_counts():
    before = {0.01: 50.0, 0.1: 50.0, 1.0: 50.0, INF: 50.0}
    # Since then: 100 observations, 90 of them at most 10 ms, 10 between 10 and 100 ms.
    after = {0.01: 140.0, 0.1: 150.0, 1.0: 150.0, INF: 150.0}

    result = handler_quantiles(before, after)

    assert result["count"] == 100
    assert math.isclose(result["p50"], 50 / 90 * 10, rel_tol=1e-2)  # inside the first bucket
    assert math.isclose(result["p95"], 10 + 90 * 5 / 10, rel_tol=1e-2)  # half into the second
    assert math.isclose(result["p99"], 10 + 90 * 9 / 10, rel_tol=1e-2)


def test_past_the_last_finite_bound_the_bound_is_reported():
    after = {0.1: 1.0, 2.5: 1.0, INF: 100.0}

    assert handler_quantiles({}, after)["p99"] == 2500.0


def test_nothing_observed_gives_no_quantile():
    assert handler_quantiles({0.1: 5.0, INF: 5.0}, {0.1: 5.0, INF: 5.0})["p50"] is None
