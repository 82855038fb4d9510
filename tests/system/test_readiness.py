"""/readyz on a real Daphne worker while its Redis dies and comes back (issue 7's acceptance).

"`/readyz` answers 503 within 3 s when Redis is stopped and 200 again after it is back", with
each channel layer (REALTIME_CHANNEL_LAYER=pubsub, the default, and core). Each test owns a
private redis-server on a free port, so the shared Redis of the other tests is never touched:

- killed (connection refused), then started again on the same port;
- frozen with SIGSTOP (sockets open, nothing answers), then SIGCONT.

Probes come several at once, as from a load balancer and an orchestrator together: a frozen
Redis made concurrent probes exceed 3 s in ways a lone probe did not (monitoring/health.py).
The worker must outlive all of it: still running, /healthz 200.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.client import http_request
from tests.system.conftest import worker_env
from tests.system.services import PrivateRedis

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

ACCEPTED_SECONDS = 3.0  # issue 7: the whole HTTP request, not only the checks
RECOVERY_TIMEOUT = 15.0
ROUNDS = 3  # the first round meets pooled connections, later ones the reconnects
CONCURRENT = 6  # probes at once; 6 also fills the default executor of a 2-CPU worker


@dataclass(frozen=True)
class Probe:
    status: int
    body: dict[str, Any]
    seconds: float

    def failing(self) -> set[str]:
        return {name for name, check in self.body["checks"].items() if not check["ok"]}


def probe(worker: Worker) -> Probe:
    # The client waits well past the bound, so a slow answer is measured (and fails the
    # assertion) rather than cut off.
    started = time.perf_counter()
    status, body, _ = http_request(worker.http_url("/readyz"), timeout=30)
    return Probe(status, json.loads(body), time.perf_counter() - started)


def probe_together(worker: Worker) -> list[Probe]:
    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(lambda _: probe(worker), range(CONCURRENT)))


def assert_unready_quickly(worker: Worker) -> list[float]:
    """Every probe of every round: 503 naming Redis and the layer, in under 3 s."""
    latencies = []
    for _ in range(ROUNDS):
        for answer in probe_together(worker):
            assert answer.status == 503, answer
            assert answer.body["status"] == "unavailable"
            assert answer.failing() == {"redis", "channel_layer"}, answer
            assert answer.seconds < ACCEPTED_SECONDS, answer
            latencies.append(answer.seconds)
    return latencies


def seconds_until_ready(worker: Worker) -> float:
    started = time.monotonic()
    last = None
    while time.monotonic() - started < RECOVERY_TIMEOUT:
        last = probe(worker)
        if last.status == 200:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"/readyz not 200 within {RECOVERY_TIMEOUT}s; last answer: {last}")


def assert_survived(worker: Worker) -> None:
    assert worker.alive(), f"Daphne died:\n{worker.log()[-4000:]}"
    status, body, _ = http_request(worker.http_url("/healthz"), timeout=5)
    assert status == 200, body


def report(outage: str, latencies: list[float], recovery: float) -> None:
    print(
        f"\n{outage}: {len(latencies)} probes 503 in {min(latencies):.3f}-{max(latencies):.3f} s;"
        f" 200 again after {recovery:.2f} s"
    )


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["pubsub", "core"])
def worker(
    request: pytest.FixtureRequest, private_redis: PrivateRedis, tmp_path: Path
) -> Iterator[Worker]:
    """One Daphne on the private Redis, with each channel layer in turn, ready."""
    env = {**worker_env(), "REDIS_URL": private_redis.url, "REALTIME_CHANNEL_LAYER": request.param}
    with daphne_workers(1, env, log_dir=tmp_path) as (started,):
        first = probe(started)
        assert first.status == 200, first
        yield started


def test_readyz_is_503_quickly_while_redis_is_down_and_200_once_it_is_back(
    worker: Worker, private_redis: PrivateRedis
) -> None:
    private_redis.kill()
    latencies = assert_unready_quickly(worker)
    assert_survived(worker)

    private_redis.start()
    recovery = seconds_until_ready(worker)

    assert probe(worker).status == 200
    assert_survived(worker)
    report("killed", latencies, recovery)


def test_readyz_is_503_quickly_while_redis_is_frozen_and_200_once_it_thaws(
    worker: Worker, private_redis: PrivateRedis
) -> None:
    private_redis.freeze()
    try:
        latencies = assert_unready_quickly(worker)
        assert_survived(worker)
    finally:
        private_redis.thaw()
    recovery = seconds_until_ready(worker)

    assert probe(worker).status == 200
    assert_survived(worker)
    report("frozen", latencies, recovery)


def test_probes_leave_nothing_behind_in_redis(worker: Worker, private_redis: PrivateRedis) -> None:
    # Each probe opens a channel of its own; the pub/sub layer subscribes to it, and kept every
    # one of them subscribed until the probe ended its channel (monitoring/health.py).
    for _ in range(3):
        assert all(answer.status == 200 for answer in probe_together(worker))
    with private_redis.client() as client:
        deadline = time.monotonic() + 5
        while (left := client.pubsub_channels("*readyz.*")) and time.monotonic() < deadline:
            time.sleep(0.05)  # the unsubscribe goes out just after the answer
        assert left == []
        assert client.keys("*readyz*") == []
