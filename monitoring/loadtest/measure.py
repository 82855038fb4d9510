"""What a load test measures besides its own clients: server CPU, memory and hypervisor steal.

Everything comes from /proc (Linux), so it costs nothing on the server being measured:

    before = cpu_snapshot(pids)          # {pid: CPU seconds}, children reaped included
    steal = StealSampler().start()       # /proc/stat once a second, in a thread
    ...
    used = cpu_delta(before, cpu_snapshot(pids))
    window = steal.stop()                # {"steal_pct": 2.1, "steal_max_1s_pct": 7.0, ...}

CPU of a process is utime + stime of /proc/<pid>/stat (all its threads). For PostgreSQL, whose
backends come and go, the postmaster's cutime + cstime (its reaped children) are added, so a
backend that exits during the window still counts, once.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def percentiles(
    values: Sequence[float], points: Iterable[float] = (50, 95, 99)
) -> dict[str, float]:
    """Nearest-rank percentiles and the max, rounded to 3 decimals; empty input gives {}."""
    if not values:
        return {}
    ordered = sorted(values)
    result = {}
    for point in points:
        rank = max(1, math.ceil(point / 100 * len(ordered)))
        result[f"p{point:g}"] = round(ordered[rank - 1], 3)
    result["max"] = round(ordered[-1], 3)
    return result


# --- processes ---------------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; everything after its ")" is positional.
    return text[text.rindex(")") + 2 :].split()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def process_cpu(pid: int, *, with_children: bool = False) -> float | None:
    """CPU seconds (user + system) of a process, None when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the command name: state=0 ... utime=11, stime=12, cutime=13, cstime=14.
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def process_rss_kib(pid: int) -> int | None:
    try:
        resident = Path(f"/proc/{pid}/statm").read_text().split()[1]
    except (OSError, IndexError):
        return None
    return int(resident) * PAGE_KIB


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def find_pids(name: str) -> list[int]:
    """PIDs whose command name (/proc/<pid>/comm) is ``name``."""
    return [pid for pid in _all_pids() if _comm(pid) == name]


def find_redis_pid() -> int | None:
    pids = find_pids("redis-server")
    return min(pids) if pids else None


def find_postgres_pid() -> int | None:
    """The postmaster: a ``postgres`` process whose parent is not one."""
    pids = set(find_pids("postgres"))
    for pid in sorted(pids):
        fields = _stat_fields(pid)
        if fields is not None and int(fields[1]) not in pids:
            return pid
    return None


def postgres_family(postmaster: int) -> list[int]:
    family = [postmaster]
    for pid in _all_pids():
        fields = _stat_fields(pid)
        if fields is not None and int(fields[1]) == postmaster:
            family.append(pid)
    return family


@dataclass
class ServerProcesses:
    """The processes whose CPU a scenario charges to the server, by role."""

    workers: list[int]
    redis: int | None = None
    postgres: int | None = None  # the postmaster; its backends are found at each snapshot
    generators: list[int] = field(default_factory=list)

    def snapshot(self) -> dict[str, dict[int, float]]:
        """{role: {pid: CPU seconds}} for every role, now."""
        roles: dict[str, dict[int, float]] = {
            "workers": _cpu_of(self.workers),
            "redis": _cpu_of([self.redis] if self.redis else []),
            "generator": _cpu_of(self.generators),
            "postgres": {},
        }
        if self.postgres:
            for pid in postgres_family(self.postgres):
                cpu = process_cpu(pid, with_children=pid == self.postgres)
                if cpu is not None:
                    roles["postgres"][pid] = cpu
        return roles

    def rss_kib(self) -> dict[int, int]:
        return {pid: rss for pid in self.workers if (rss := process_rss_kib(pid)) is not None}


def _cpu_of(pids: Iterable[int]) -> dict[int, float]:
    return {pid: cpu for pid in pids if (cpu := process_cpu(pid)) is not None}


def cpu_delta(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """CPU seconds used per role between two snapshots.

    A process present only at the end counts from zero (it started in the window); one present
    only at the start was reaped, and its time moved into its parent's cutime/cstime.
    """
    used = {}
    for role, pids in after.items():
        used[role] = sum(pids.values()) - sum(before.get(role, {}).values())
    return used


def per_pid_delta(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    return {pid: after[pid] - before.get(pid, 0.0) for pid in after}


# --- the machine -------------------------------------------------------------------------------
def machine_times() -> tuple[float, float, float]:
    """(total, idle + iowait, steal) jiffies of all CPUs, from the first line of /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    # user nice system idle iowait irq softirq steal (guest is already counted in user)
    return float(sum(values)), float(values[3] + values[4]), float(values[7])


@dataclass
class StealSampler:
    """Steal and machine load over a window, with the worst one-second steal inside it."""

    interval: float = 1.0
    _samples: list[tuple[float, float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> StealSampler:
        self._samples = [machine_times()]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="steal-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._samples.append(machine_times())

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._samples.append(machine_times())
        return summarize_machine(self._samples)


def summarize_machine(samples: Sequence[tuple[float, float, float]]) -> dict[str, float]:
    (total0, idle0, steal0), (total1, idle1, steal1) = samples[0], samples[-1]
    total = max(total1 - total0, 1.0)
    worst = 0.0
    for (t0, _, s0), (t1, _, s1) in itertools.pairwise(samples):
        with contextlib.suppress(ZeroDivisionError):
            worst = max(worst, (s1 - s0) / (t1 - t0))
    return {
        "steal_pct": round(100 * (steal1 - steal0) / total, 2),
        "steal_max_1s_pct": round(100 * worst, 2),
        # Busy = neither idle nor stolen: the CPU this machine's processes actually got.
        "machine_busy_pct": round(100 * (total - (idle1 - idle0) - (steal1 - steal0)) / total, 2),
        "cpus": os.cpu_count() or 1,
    }


def sample_machine(seconds: float) -> dict[str, float]:
    """Steal and machine load over the next ``seconds``: is the machine quiet before a run?"""
    first = machine_times()
    time.sleep(seconds)
    return summarize_machine([first, machine_times()])


def cpu_report(
    used: dict[str, float], *, window: float, units: int, machine: dict[str, float]
) -> dict[str, object]:
    """CPU per unit of work (µs) and cores used (CPU s per s) per role, plus the rest."""
    server = used["workers"] + used["redis"] + used["postgres"]
    roles = {**used, "server_total": server}
    cores_busy = machine["machine_busy_pct"] / 100 * machine["cpus"]
    report: dict[str, object] = {"window_s": round(window, 3), "units": units}
    if units:
        report["us_per_unit"] = {
            role: round(1e6 * seconds / units, 1) for role, seconds in roles.items()
        }
    report["cores"] = {role: round(seconds / window, 3) for role, seconds in roles.items()}
    # Whatever else ran on the machine in the window (other tests, the parent, the kernel).
    other = cores_busy - (server + used["generator"]) / window
    report["cores"]["other"] = round(max(other, 0.0), 3)  # type: ignore[index]
    return report


def wait_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
