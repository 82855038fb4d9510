"""``manage.py loadtest churn`` end to end: a small run of the real command, which spawns two
Daphne workers on the test database and Redis and cuts its clients (the project's Python client
library) again and again.

Asserts correctness and that the figures are there, never speed: figures belong in
docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from tests.system.conftest import database_url

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

CLIENTS = 20
EDITORS = 4
PERCENTILES = {"p50", "p95", "p99", "max"}


def churn(*args: str) -> dict[str, Any]:
    database = settings.DATABASES["default"]
    assert database["NAME"].startswith("test_"), database["NAME"]
    out = io.StringIO()
    with contextlib.suppress(CommandError):  # not ok: the JSON line says why (asserted below)
        call_command(
            "loadtest",
            "churn",
            "--spawn",
            "2",
            # The workers share the test database (the rest of their environment is this one's).
            "--worker-env",
            f"DATABASE_URL={database_url(database)}",
            "--handshake-timeout",
            "20",
            *args,
            stdout=out,
        )
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, out.getvalue()
    return json.loads(lines[0])


def test_churn_loses_nothing_and_reports_memory(transactional_db):
    result = churn(
        *("--clients", str(CLIENTS), "--editors", str(EDITORS), "--documents", "2"),
        *("--duration", "10", "--cut-min", "0.5", "--cut-max", "2", "--clean-share", "0.25"),
        *("--command-interval", "1", "--type-interval", "0.3"),
        *("--sample-interval", "1", "--warmup", "3", "--max-growth-pct", "20"),
    )

    results = result["results"]
    assert result["scenario"] == "churn"
    # A consumer that sent to a socket whose close handshake was under way used to die of
    # autobahn's Disconnected and leave its connection counted and present for good (found by
    # this scenario; RealtimeConsumer.send now drops such a frame): none may any more.
    assert results["problems"] == []
    assert results["ok"] is True
    assert results["consumers_crashed_sending_to_closing_socket"] == 0
    assert results["attempted"] == results["established"] == results["held_to_end"] == CLIENTS

    # A steady stream of reconnects, of both kinds, each one timed.
    cuts = results["cuts"]
    assert cuts["drops"] > 0 and cuts["clean_closes"] > 0
    assert results["reconnects"] == cuts["drops"] + cuts["clean_closes"]  # one open per cut
    assert results["reconnects_per_s"] > 0
    assert cuts["still_cut_at_end"] == 0
    for figure in ("reconnect_ms", "restart_ms", "connect_ms", "ticket_ms"):
        assert set(results[figure]) == PERCENTILES, figure
    assert results["tickets"] >= CLIENTS + results["reconnects"]  # a fresh one every time
    assert results["closed_by_server"] == {}

    # Commands made while cut waited and were acked after the reconnect; none lost.
    commands = results["commands"]
    assert commands["issued_offline"] > 0
    assert commands["acked_offline"] == commands["issued_offline"]
    assert commands["acked"] == commands["issued"] and commands["lost"] == 0
    assert commands["errors"] == {} and commands["acks_without_self"] == 0
    assert results["rooms"]["clients_with_exact_members"] == CLIENTS - EDITORS

    # Editors typed offline too; all settled on the stored text, every op stored once.
    edits = results["edits"]
    assert edits["made_offline"] > 0
    assert edits["ops_acked"] == edits["ops_submitted"] > 0
    documents = results["documents"]
    assert documents["editors_converged"] == documents["editors_stored_exactly"] == EDITORS
    assert documents["documents_replayed_ok"] == 2
    assert documents["ops_committed"] == edits["ops_acked"]
    assert documents["duplicate_client_seq"] == 0
    assert results["settle"]["not_open"] == results["settle"]["unsettled"] == 0

    # The server's own count of connections: all of them after the churn, none after the stop.
    connections = results["server_connections"]
    before, settled, after = (
        connections[key]["server_connections"] for key in ("before", "settled", "after_stop")
    )
    assert before == 0
    assert settled == CLIENTS
    assert after == 0
    assert connections["settled"]["presence_connections"] == settled
    assert connections["after_stop"]["presence_connections"] == after

    # Memory sampled from the spawned workers through the run.
    memory = results["memory"]
    assert memory["samples"] >= 10
    rss = memory["workers_rss_mib"]
    assert set(rss) == {"start", "baseline", "peak", "end"}
    assert all(value > 0 for value in rss.values())
    assert rss["peak"] >= rss["end"]
    assert set(memory["per_worker_rss_mib"]) == {str(pid) for pid in result["parameters"]["pids"]}
    assert memory["slope_kib_per_1000_reconnects"] is not None
    assert memory["growth_pct"] <= 20
    assert memory["workers_fds"]["end"] > 0

    # The client's settings are in the output, and the churn window has its CPU per reconnect.
    client = results["client"]
    assert client["backoff_base_s"] == 0.1 and client["backoff_cap_s"] == 1.0
    assert "kept small" in client["note"]
    window = result["windows"]["churn"]
    assert window["unit"] == "reconnect" and window["units"] == results["reconnects"]
    assert {"workers", "redis", "postgres", "server_total"} <= set(window["us_per_unit"])
    assert result["parameters"]["worker_env"]["API_RATE_TICKET"] == "100000/min"
    assert result["server_log"]["traceback"] == 0, result["server_log"]["examples"]
