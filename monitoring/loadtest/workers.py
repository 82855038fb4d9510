"""Start and stop real Daphne worker processes on free local ports.

Used by the system tests and by ``manage.py loadtest --spawn N``:

    with daphne_workers(2, env={"DATABASE_URL": ..., "REDIS_URL": ...}) as workers:
        workers[0].ws_url("/ws/presence/")      # "ws://127.0.0.1:40123/ws/presence/"

The workers of one call share a PROMETHEUS_MULTIPROC_DIR unless ``env`` names one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
# A bound on what Daphne reads into memory for one message: twice the application's limit
# (REALTIME_MAX_MESSAGE_BYTES, 64 KiB), so a frame just over it still gets the app's too_large
# answer on an open socket, while a huge one is dropped by Daphne (whose default is 1 MiB).
DAPHNE_MAX_MESSAGE_BYTES = 131072
# The rig of RELIABILITY.md section 1.
DAPHNE_ARGS = (
    "--ping-interval",
    "10",
    "--ping-timeout",
    "10",
    "--application-close-timeout",
    "10",
    "--websocket_timeout",
    "86400",
    # Daphne drops a handshake the application has not accepted within 5 s by default; a burst
    # of 2,000 clients takes two workers 10-20 s to accept here (docs/benchmarks.md).
    "--websocket_connect_timeout",
    "30",
    "--websocket-max-message-size",
    str(DAPHNE_MAX_MESSAGE_BYTES),
)


@dataclass
class Worker:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    host: str = "127.0.0.1"
    extra: dict[str, str] = field(default_factory=dict)
    env: dict[str, str | None] = field(default_factory=dict)  # what it was started with

    @property
    def pid(self) -> int:
        return self.process.pid

    def http_url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def ws_url(self, path: str) -> str:
        return f"ws://{self.host}:{self.port}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_worker(
    env: Mapping[str, str | None], *, log_dir: Path, port: int | None = None
) -> Worker:
    """Start one Daphne; ``env`` overrides os.environ, and a None value removes the variable."""
    port = port or free_port()
    log_path = log_dir / f"daphne-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                *DAPHNE_ARGS,
                "config.asgi:application",
            ],
            cwd=PROJECT_DIR,
            env={k: v for k, v in {**os.environ, **env}.items() if v is not None},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return Worker(port=port, process=process, log_path=log_path, env=dict(env))


def restart_worker(worker: Worker) -> Worker:
    """A new Daphne on the same port, environment and log directory (a stopped or killed one's
    successor, as a service manager would start it); healthy when returned."""
    stop_worker(worker)
    restarted = start_worker(worker.env, log_dir=worker.log_path.parent, port=worker.port)
    wait_healthy(restarted)
    return restarted


def wait_healthy(worker: Worker, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"Daphne on port {worker.port} exited:\n{worker.log()[-4000:]}")
        health = worker.http_url("/healthz")
        with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=1) as response:  # noqa: S310
            if response.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"Daphne on port {worker.port} not healthy in {timeout}s:\n{worker.log()}")


def stop_worker(worker: Worker, timeout: float = 10.0) -> None:
    if worker.alive():
        worker.process.send_signal(signal.SIGTERM)
        try:
            worker.process.wait(timeout)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(timeout)


@contextlib.contextmanager
def daphne_workers(
    count: int,
    env: Mapping[str, str | None],
    *,
    log_dir: Path | None = None,
    ports: Sequence[int] | None = None,
) -> Iterator[list[Worker]]:
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="daphne-logs-"))
    if "PROMETHEUS_MULTIPROC_DIR" not in env:
        # One empty directory shared by these workers: /metrics on any of them covers all
        # (monitoring.metrics). Pass None to run each worker with its own registry.
        metrics_dir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=log_dir))
        env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    # ports: when they must be known before the start (pages that name their own origin).
    chosen = list(ports) if ports is not None else [None] * count
    workers = [start_worker(env, log_dir=log_dir, port=port) for port in chosen]
    try:
        for worker in workers:
            wait_healthy(worker)
        yield workers
    finally:
        for worker in workers:
            stop_worker(worker)
