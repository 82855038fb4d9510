"""The table of docs/benchmarks.md: every scenario's JSON line against its DESIGN section 9
target, with the bare-relay ratios where the run had a baseline (``make bench`` prints it).

    python -m monitoring.loadtest.table .bench/*.json

A row per figure a target names: what was asked, what was measured, met or not. Scenarios with no
DESIGN target (big-room, comments, forms) show their figures and correctness only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Check = tuple[str, str, Callable[[dict[str, Any]], Any], Callable[[Any], bool] | None]


def _at_most(bound: float) -> Callable[[Any], bool]:
    return lambda value: value is not None and value <= bound


def _at_least(bound: float) -> Callable[[Any], bool]:
    return lambda value: value is not None and value >= bound


def _results(key: str, *path: str) -> Callable[[dict[str, Any]], Any]:
    def get(run: dict[str, Any]) -> Any:
        value: Any = run["results"].get(key)
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        return value

    return get


def _server_us(run: dict[str, Any]) -> Any:
    windows = run.get("windows", {})
    window = windows.get("send") or windows.get("edit") or next(iter(windows.values()), {})
    return window.get("us_per_unit", {}).get("server_total")


def _fanout_rate_out(run: dict[str, Any]) -> Any:
    return run["results"].get("rate_out")


def _ok(run: dict[str, Any]) -> Any:
    results = run["results"]
    if "ok" in results:
        return results["ok"]
    return results.get("lost") == 0 and results.get("duplicates", 0) == 0


CHECKS: dict[str, list[Check]] = {
    "hold": [
        ("connections held", "20,000", _results("held_to_end"), _at_least(20000)),
        ("KiB per connection", "≤ 25", _results("rss_per_connection_kib"), _at_most(25)),
    ],
    "fanout": [
        ("deliveries/s", "10,000 (at 1,000 in)", _fanout_rate_out, _at_least(10000)),
        ("lost", "0", _results("lost"), lambda v: v == 0),
        ("p50 ms", "≤ 5", _results("latency_ms", "p50"), _at_most(5)),
        ("p99 ms", "≤ 50", _results("latency_ms", "p99"), _at_most(50)),
        ("server µs per delivery", "≤ 60", _server_us, _at_most(60)),
    ],
    "big-room": [
        ("deliveries/s", "-", _fanout_rate_out, None),
        ("lost", "0", _results("lost"), lambda v: v == 0),
        ("p50 / p99 ms", "-", _results("latency_ms"), None),
        ("server µs per delivery", "-", _server_us, None),
    ],
    "ot-hot": [
        ("ops/s", "≥ 1,000", _results("ops_per_s"), _at_least(1000)),
        ("ack p99 ms", "≤ 50", _results("ack_ms", "p99"), _at_most(50)),
        ("converged", "yes", _results("converged"), lambda v: v is True),
        ("server µs per op", "-", _server_us, None),
    ],
    "ot-many": [
        ("ops/s", "≥ 3,000", _results("ops_per_s"), _at_least(3000)),
        ("ack p99 ms", "≤ 50", _results("ack_ms", "p99"), _at_most(50)),
        ("converged", "yes", _results("converged"), lambda v: v is True),
        ("server µs per op", "-", _server_us, None),
    ],
    "join": [
        ("join p50 ms (100 KB)", "≤ 7", _results("join_ms", "p50"), _at_most(7)),
        ("snapshots = database", "all", _results("snapshots_matching_db"), None),
    ],
    "churn": [
        ("worker memory growth %", "≤ 5", _results("memory", "growth_pct"), _at_most(5)),
        ("reconnects", "-", _results("reconnects"), None),
    ],
    "comments": [
        ("writes/s", "-", _results("writes_per_s_to_last_ack"), None),
        ("ack p99 ms", "-", _results("ack_ms", "p99"), None),
    ],
    "forms": [("ok", "-", _ok, None)],
}


def rows(run: dict[str, Any]) -> list[str]:
    scenario = run["scenario"]
    parameters = {k: v for k, v in run.get("parameters", {}).items() if k not in IGNORED}
    out = []
    for label, target, get, met in CHECKS.get(scenario, [("ok", "-", _ok, None)]):
        value = get(run)
        verdict = "-" if met is None else ("**yes**" if met(value) else "**no**")
        out.append(
            f"| {scenario} | {_short(parameters)} | {label} | {target} | {_show(value)} | "
            f"{verdict} | {_versus(run)} | {_show(run.get('steal_pct'))} |"
        )
    return out


IGNORED = {"urls", "pids", "origin", "procs", "connect_rate", "worker_env", "seed"}


def _versus(run: dict[str, Any]) -> str:
    versus = run.get("versus") or {}
    parts = []
    for relay, ratios in versus.items():
        shown = ", ".join(
            f"{key} {ratios[key]}" for key in ("throughput", "p99", "server_us_per_delivery")
        )
        parts.append(f"{relay}: {shown}")
    return "; ".join(parts) or "-"


def _short(parameters: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in parameters.items())


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dict):
        return " / ".join(f"{_show(v)}" for k, v in value.items() if k in ("p50", "p99"))
    return str(value)


HEADER = (
    "| scenario | parameters | figure | target | measured | met | our/relay "
    "(throughput, p99, CPU per delivery) | steal % |\n|---|---|---|---|---|---|---|---|"
)


def main(paths: list[str]) -> None:
    print(HEADER)
    for path in paths:
        text = Path(path).read_text().strip()
        if text:
            for line in rows(json.loads(text.splitlines()[-1])):
                print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
