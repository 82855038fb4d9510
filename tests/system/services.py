"""Private services for the system tests that break or reshape them: a redis-server of a test's own
(killed, frozen, restarted, promoted), Redis Sentinel and PgBouncer, so the shared services of
the other tests are never touched."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from monitoring.loadtest.workers import free_port

MASTER_NAME = "collab"


class PrivateRedis:
    """A redis-server of our own, on one port for its whole life (restarts included)."""

    def __init__(self, directory: Path, *extra: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.extra = extra  # more redis-server arguments ("--replicaof", ...)
        self.log_path = directory / f"redis-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self, timeout: float = 10.0) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.directory), *self.extra]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"redis-server exited: {self.log()}"
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server on {self.port} not answering in {timeout}s")

    def kill(self) -> None:
        """Gone at once: connections reset, new ones refused."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def freeze(self) -> None:
        """Still accepting TCP connections (the kernel does), never answering."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # harmless if it was not stopped
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""


class PrivateSentinel:
    """One redis-server in sentinel mode watching ``master``, quick to fail over (1 s down)."""

    def __init__(self, directory: Path, master: PrivateRedis) -> None:
        self.port = free_port()
        self.config = directory / f"sentinel-{self.port}.conf"
        self.config.write_text(  # sentinel rewrites its file: one of its own
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
            f"sentinel failover-timeout {MASTER_NAME} 5000\n"
        )
        self.log_path = directory / f"sentinel-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", str(self.config), "--sentinel"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while self.master_port() is None:
            assert self.process.poll() is None, f"sentinel exited: {self.log()}"
            assert time.monotonic() < deadline, f"sentinel not answering: {self.log()}"
            time.sleep(0.05)

    def master_port(self) -> int | None:
        try:
            with redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1) as client:
                address = client.sentinel_get_master_addr_by_name(MASTER_NAME)
        except redis.ConnectionError:
            return None
        return int(address[1]) if address else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""


class PrivatePgBouncer:
    """PgBouncer in transaction pooling in front of the tests' PostgreSQL (127.0.0.1:5432).

    It refuses to run as root, so as root it is started with ``-u postgres`` in a directory of
    its own directly under the temp directory (that user cannot enter pytest's, which are 0700
    and root's)."""

    def __init__(self, pool_size: int = 4) -> None:
        self.port = free_port()
        self.directory = directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        (directory / "userlist.txt").write_text('"postgres" ""\n')
        self.config = directory / "pgbouncer.ini"
        self.config.write_text(
            "[databases]\n* = host=127.0.0.1 port=5432\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            f"unix_socket_dir =\nauth_type = trust\nauth_file = {directory / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 500\n"
            f"logfile = {directory / 'pgbouncer.log'}\npidfile = {directory / 'pgbouncer.pid'}\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        assert Path(binary).exists(), "pgbouncer is needed (.ci/services installs it)"
        argv = [binary, str(self.config)]
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, postgres.pw_uid, postgres.pw_gid)
            argv[1:1] = ["-u", "postgres"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"pgbouncer exited: {self.log()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"pgbouncer not listening: {self.log()}"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""
