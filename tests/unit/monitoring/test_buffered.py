"""monitoring/buffered.py: what a flush applies equals what direct updates would have, and it
relies on prometheus_client internals that an upgrade could change: these tests pin them."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram

from monitoring import buffered

BUCKETS = (0.001, 0.01, 0.1, 1.0)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def fresh() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    counter = Counter("c_total", "c", ["app"], registry=registry)
    histogram = Histogram("h_seconds", "h", ["app"], buckets=BUCKETS, registry=registry)
    return registry, counter, histogram


values = st.floats(min_value=0, max_value=5, allow_nan=False) | st.sampled_from(BUCKETS)


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), values), max_size=40))
def test_a_flush_applies_what_direct_updates_would(updates):
    direct, direct_counter, direct_histogram = fresh()
    batched, batched_counter, batched_histogram = fresh()
    buffered._scheduled = True  # as on a loop: every update waits for the one flush below
    for app, value in updates:
        direct_counter.labels(app=app).inc()
        direct_histogram.labels(app=app).observe(value)
        buffered.count(batched_counter.labels(app=app))
        buffered.observe(batched_histogram.labels(app=app), value)
    pending = samples(batched)
    buffered.flush()

    assert all(value == 0 for value in pending.values())
    assert samples(batched) == samples(direct)


async def test_updates_wait_on_the_loop_for_one_flush():
    registry, counter, _ = fresh()
    child = counter.labels(app="a")

    for _ in range(3):
        buffered.count(child)
    before = registry.get_sample_value("c_total", {"app": "a"})
    await asyncio.sleep(buffered.FLUSH_SECONDS + 0.2)

    assert (before, registry.get_sample_value("c_total", {"app": "a"})) == (0.0, 3.0)
