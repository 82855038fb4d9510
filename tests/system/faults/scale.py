"""How big the fault tests run: reduced in the default run (CI), RELIABILITY.md's sizes with
``RELIABILITY_SCALE=full`` (``make reliability``), and where full-scale figures are recorded.

    EDITORS = scaled(ci=6, full=200)
    pytestmark = [..., pytest.mark.timeout(scaled(ci=180, full=1800))]
    record("F1", reconnect_ms=percentiles(timer.gaps_ms), editors=EDITORS)

``record`` appends one JSON line per call to ``$RELIABILITY_RESULTS`` when that is set (``make
reliability`` sets it); ``python -m tests.system.faults.summarize FILE`` prints them as the table
of docs/reliability.md. In the default run nothing is written: the assertions are the result.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, TypeVar

FULL = os.environ.get("RELIABILITY_SCALE", "ci") == "full"
SCALE = "full" if FULL else "ci"
T = TypeVar("T")


def scaled(ci: T, full: T) -> T:
    return full if FULL else ci


def record(test_id: str, **figures: Any) -> None:
    """One result line for the full-scale report (no-op unless $RELIABILITY_RESULTS is set)."""
    path = os.environ.get("RELIABILITY_RESULTS")
    if not path:
        return
    line = {"id": test_id, "scale": SCALE, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with open(path, "a") as results:
        results.write(json.dumps({**line, **figures}, default=str) + "\n")
