"""/metrics across two real Daphne workers in Prometheus multiprocess mode (issue 7, item 1).

The workers share one PROMETHEUS_MULTIPROC_DIR (monitoring.loadtest.workers.daphne_workers), so
the page either of them answers sums both: traffic on B shows in A's /metrics and the reverse.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring.loadtest.workers import Worker, daphne_workers, stop_worker
from tests.system.client import RealtimeClient, fetch_ticket, http_request
from tests.system.conftest import Account, worker_env

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
]

PRESENCE = "/ws/presence/"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(worker: Worker) -> Samples:
    status, body, headers = http_request(worker.http_url("/metrics"), accept="text/plain")
    assert status == 200, body[:500]
    assert headers.get("Content-Type", "").startswith("text/plain"), headers
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


async def scrape_until(
    worker: Worker, holds: Callable[[Samples], bool], within: float = 5.0
) -> Samples:
    """Per-frame counters reach the shared files up to FLUSH_SECONDS late on the other worker
    (monitoring/buffered.py; the answering worker flushes its own first): scrape until
    ``holds``, and return the last scrape either way for the assertion to show."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        samples = await asyncio.to_thread(scrape, worker)
        if holds(samples) or asyncio.get_running_loop().time() > deadline:
            return samples
        await asyncio.sleep(0.2)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def pids_of(samples: Samples, name: str) -> set[int]:
    return {int(dict(labels)["pid"]) for metric, labels in samples if metric == name}


async def open_client(worker: Worker, account: Account) -> RealtimeClient:
    ticket = await fetch_ticket(worker.http_url(), account.token)
    return await RealtimeClient.connect(worker.ws_url(PRESENCE), ticket=ticket)


async def test_traffic_on_each_worker_shows_in_the_metrics_of_both(
    worker_a: Worker, worker_b: Worker, alice: Account, bob: Account
) -> None:
    name, join = "collab_ws_messages_in_total", {"app": "presence", "type": "presence.room.join"}
    room = f"lobby.metrics-{uuid.uuid4().hex[:12]}"
    before = await asyncio.to_thread(scrape, worker_a)
    assert pids_of(before, "collab_worker_start_time_seconds") >= {worker_a.pid, worker_b.pid}

    on_b = await open_client(worker_b, bob)
    try:
        await on_b.ack("presence.room.join", {"room": room})
        # B's traffic, read from A's page.
        expected = value(before, name, **join) + 1
        after_b = await scrape_until(worker_a, lambda s: value(s, name, **join) >= expected)
        assert value(after_b, name, **join) == expected
        assert value(after_b, "collab_ws_connections", app="presence") >= 1

        on_a = await open_client(worker_a, alice)
        try:
            await on_a.ack("presence.room.join", {"room": room})
            await on_a.ack("presence.signal.send", {"room": room, "data": {"n": 1}})
            for client in (on_a, on_b):
                await client.next_event("presence.signal.received", timeout=5)
            # A's traffic, read from B's page: both joins, both sockets, both deliveries.
            after_a = await scrape_until(
                worker_b, lambda s: value(s, name, **join) >= value(before, name, **join) + 2
            )
        finally:
            await on_a.close()
    finally:
        await on_b.close()

    assert value(after_a, name, **join) == value(before, name, **join) + 2
    assert value(after_a, "collab_ws_connections", app="presence") >= 2
    delivered = "collab_broadcast_delivery_seconds_count"
    assert value(after_a, delivered, app="presence") >= value(before, delivered, app="presence") + 2
    # django-prometheus's request metrics are summed over the workers too (a ticket each).
    requests = "django_http_requests_total_by_view_transport_method_total"
    posts = [
        count
        for (metric, labels), count in after_a.items()
        if metric == requests and ("method", "POST") in labels
    ]
    assert sum(posts) >= 2, posts


@pytest.fixture
def own_pair(tmp_path: Path) -> Iterator[tuple[Worker, Worker, Path]]:
    """Two workers of this test alone, on a multiprocess directory it can look into."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {**worker_env(), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with daphne_workers(2, env, log_dir=tmp_path) as (survivor, victim):
        yield survivor, victim, metrics_dir


async def test_a_killed_worker_leaves_no_live_gauges_and_counts_as_a_crash(
    own_pair: tuple[Worker, Worker, Path], alice: Account
) -> None:
    survivor, victim, metrics_dir = own_pair
    client = await open_client(victim, alice)
    try:
        counted = await asyncio.to_thread(scrape, survivor)
        assert value(counted, "collab_ws_connections", app="presence") == 1
        os.kill(victim.pid, signal.SIGKILL)
        await asyncio.to_thread(victim.process.wait, 10)
    finally:
        await client.close()

    reaped = await asyncio.to_thread(scrape, survivor)
    assert pids_of(reaped, "collab_worker_start_time_seconds") == {survivor.pid}
    assert value(reaped, "collab_ws_connections", app="presence") == 0
    assert value(reaped, "collab_worker_crashes_total") == 1
    # A clean stop (SIGTERM) removes the worker's live gauges itself (atexit).
    await asyncio.to_thread(stop_worker, survivor)
    assert await asyncio.to_thread(lambda: list(metrics_dir.glob("gauge_live*"))) == []
