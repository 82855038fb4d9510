"""Sampling profiles of the workers during a load-test window, with py-spy (``--profile DIR``).

py-spy attaches to a running process from outside, so the workers run unchanged. It samples each
worker at ``RATE`` Hz, GIL-holding stacks only (``--gil``: time a worker spends waiting in epoll
is not work), and writes py-spy's "raw" format: one line per distinct stack, frames joined by
``;``, then the sample count. ``summarize`` turns a file into the shares a reader needs: where
the samples were (innermost frame, "self") and which of our and the libraries' functions they
passed through ("total").

    with worker_profiles([4100, 4101], seconds=20, directory="/tmp/prof") as profiles:
        ...the window...
    profiles.summaries()   # {"4100": {"file": ..., "samples": ..., "self": [...], "total": [...]}}
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RATE = 200  # samples per second; py-spy's own cost stays near 1-2 % of a core at this rate
TOP = 25
# "function (path/to/module.py:123)" -> "module.py:function"; line numbers split one function.
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^:()]*?)(?::\d+)?\)$")


@dataclass
class Profiles:
    files: dict[int, Path]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def summaries(self) -> dict[str, dict[str, Any]]:
        return {
            str(pid): {"file": str(path), **summarize(path.read_text())}
            for pid, path in self.files.items()
            if path.exists()
        }


@contextlib.contextmanager
def worker_profiles(pids: list[int], seconds: float, directory: str) -> Iterator[Profiles]:
    """py-spy on every worker for ``seconds`` (the window's length, bounded by py-spy itself)."""
    beside_python = Path(sys.executable).with_name("py-spy")  # a venv's, when not on PATH
    spy = shutil.which("py-spy") or (str(beside_python) if beside_python.exists() else None)
    if spy is None:
        raise RuntimeError("--profile needs py-spy: pip install '.[bench]'")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    profiles = Profiles({pid: out / f"worker-{pid}.txt" for pid in pids})
    for pid, path in profiles.files.items():
        command = [spy, "record", "--pid", str(pid), "--rate", str(RATE), "--gil"]
        command += ["--format", "raw", "--duration", str(max(1, round(seconds)))]
        command += ["--output", str(path), "--nonblocking"]
        profiles.processes.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        )
    try:
        yield profiles
    finally:
        for process in profiles.processes:
            try:
                process.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def summarize(raw: str, top: int = TOP) -> dict[str, Any]:
    """Shares (% of samples) by innermost frame ("self") and by every frame on the stack
    ("total", each function counted once per stack), ``top`` of each."""
    own: Counter[str] = Counter()
    through: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [frame_name(frame) for frame in stack.split(";")]
        own[frames[-1]] += n
        for name in set(frames):
            through[name] += n

    def shares(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / samples, 1)] for name, n in counter.most_common(top)]

    return (
        {"samples": samples, "self": shares(own), "total": shares(through)}
        if samples
        else {"samples": 0}
    )


def frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    module = match["path"].rsplit("/", 1)[-1]
    return f"{module}:{match['function']}"
