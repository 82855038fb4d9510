"""Worker-log scan: what a clean load-test run never logs, counted with a few examples.

scan_logs([worker.log() for worker in workers])
# {"traceback": 0, "error": 0, "over_capacity": 0, "redis_pool": 0, "examples": []}
"""

from __future__ import annotations

import re
from typing import Any

# What a clean run never prints in a worker log.
LOG_PROBLEMS = {
    "traceback": re.compile(r"^Traceback", re.M),
    "error": re.compile(r" (ERROR|CRITICAL) "),
    "over_capacity": re.compile(r"over capacity|ChannelFull"),
    "redis_pool": re.compile(
        r"Too many connections|MaxConnectionsError|ConnectionError|Timeout (connecting|reading)"
    ),
}


def scan_logs(texts: list[str] | None) -> dict[str, Any] | None:
    """Counts of the lines a clean run never logs, with a few examples."""
    if texts is None:
        return None
    counts = {name: 0 for name in LOG_PROBLEMS}
    examples: list[str] = []
    for text in texts:
        for line in text.splitlines():
            for name, pattern in LOG_PROBLEMS.items():
                if pattern.search(line):
                    counts[name] += 1
                    if len(examples) < 5:
                        examples.append(line[:300])
    return {**counts, "examples": examples}
