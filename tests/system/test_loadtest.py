"""``manage.py loadtest`` end to end: small runs of every scenario against two real Daphne workers.

Asserts correctness only (every client established, nothing lost, the JSON line's shape), never
speed: figures belong in docs/benchmarks.md, measured on a quiet machine.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from monitoring.loadtest.workers import Worker, daphne_workers

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]

ORIGIN = "http://localhost:8000"


@pytest.fixture(scope="module")
def loadtest_workers(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Worker]]:
    """Two workers of our own: the shared ``workers`` fixture caps signals far below 50/s."""
    database = settings.DATABASES["default"]
    assert database["NAME"].startswith("test_"), database["NAME"]
    host = f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
    env = {
        "DATABASE_URL": f"postgres://{database['USER']}@{host}/{database['NAME']}",
        "REDIS_URL": os.environ["REDIS_URL"],
        "REALTIME_KEY_PREFIX": os.environ["REALTIME_KEY_PREFIX"],
        "DJANGO_SECRET_KEY": "loadtest-smoke-" + secrets.token_hex(16),
        "DJANGO_DEBUG": "0",
        "DJANGO_HTTPS": "0",
        "DJANGO_WS_ALLOWED_ORIGINS": ORIGIN,
        "REALTIME_RATE_SIGNAL": "600/min",
        "REALTIME_RATE_OP": "100000/min",  # what a smoke run of editors measures is not the limiter
        "REALTIME_RATE_COMMENT": "100000/min",  # nor a smoke run of commenters
        "REALTIME_RATE_REACTION": "100000/min",
        "REALTIME_RATE_FORM_FILL": "100000/min",  # nor a smoke run of respondents
        "REALTIME_BARE_BASELINE": "1",  # fanout --baseline: the bare relay beside our consumer
    }
    with daphne_workers(2, env, log_dir=tmp_path_factory.mktemp("loadtest-logs")) as workers:
        yield workers


def loadtest(workers: list[Worker], *args: str) -> dict[str, Any]:
    target = ["--origin", ORIGIN, "--procs", "2", "--handshake-timeout", "20"]
    for worker in workers:
        target += ["--url", worker.ws_url(""), "--pid", str(worker.pid)]
        target += ["--worker-log", str(worker.log_path)]
    out = io.StringIO()
    call_command("loadtest", *args, *target, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, out.getvalue()
    return json.loads(lines[0])


def assert_clean(result: dict[str, Any], clients: int) -> None:
    results = result["results"]
    assert results["attempted"] == results["established"] == clients, results
    assert results["failures"] == {}
    assert results["held_to_end"] == clients
    assert results["closed_by_server"] == {}
    assert results["error_frames"] == {}
    assert set(results["connect_ms"]) == {"p50", "p95", "p99", "max"}
    log = result["server_log"]
    assert (log["traceback"], log["error"], log["over_capacity"], log["redis_pool"]) == (
        0,
        0,
        0,
        0,
    ), log["examples"]
    assert result["layer"]["name"] in {"pubsub", "core"}
    for window in result["windows"].values():
        assert {"window_s", "cores", "steal_pct", "machine_busy_pct"} <= window.keys()
        assert len(window["workers_cores_each"]) == 2


def test_hold_establishes_every_connection(transactional_db, loadtest_workers):
    result = loadtest(
        loadtest_workers, "hold", "--connections", "20", "--rooms", "4", "--hold", "2"
    )

    assert result["scenario"] == "hold"
    assert result["parameters"]["connections"] == 20
    assert_clean(result, 20)
    assert result["results"]["rss_per_connection_kib"] is not None
    assert set(result["results"]["rss_kib"]["held"]) == {str(w.pid) for w in loadtest_workers}
    assert result["windows"]["connect"]["units"] == 20
    assert set(result["windows"]["connect"]["us_per_unit"]) >= {"workers", "server_total"}


def test_fanout_delivers_every_signal_to_every_member_and_compares_with_bare_relays(
    transactional_db, loadtest_workers
):
    result = loadtest(
        loadtest_workers,
        "fanout",
        *("--rooms", "4", "--members", "5", "--rate", "50", "--duration", "2", "--drain", "1.5"),
        *("--baseline", "both"),
    )

    assert result["scenario"] == "fanout"
    assert {relay: run["scenario"] for relay, run in result["baselines"].items()} == {
        "bare": "fanout-bare",
        "lean": "fanout-lean",
    }
    for run in (result, *result["baselines"].values()):
        assert_delivered_everything(run)
    for ratios in result["versus"].values():
        assert set(ratios) == {"throughput", "p50", "p95", "p99", "server_us_per_delivery"}
        assert all(value > 0 for value in ratios.values()), ratios


def test_big_room_delivers_every_broadcast_to_every_member(transactional_db, loadtest_workers):
    result = loadtest(
        loadtest_workers,
        "big-room",
        *("--members", "40", "--rate", "10", "--duration", "2", "--drain", "2"),
    )

    assert result["scenario"] == "big-room"
    assert result["parameters"]["rooms"] == 1
    assert_delivered_everything(result, clients=40, signals=20, members=40)


def assert_delivered_everything(
    result: dict[str, Any], clients: int = 20, signals: int = 100, members: int = 5
) -> None:
    results = result["results"]
    assert_clean(result, clients)
    assert results["sent"] == results["scheduled"] == signals
    assert results["unsent"] == results["send_failures"] == 0
    assert results["expected"] == signals * members  # every member, the sender included
    assert results["delivered"] == results["expected"]
    assert results["lost"] == results["duplicates"] == 0
    assert set(results["latency_ms"]) == {"p50", "p95", "p99", "max"}
    send = result["windows"]["send"]
    assert send["units"] == results["delivered"]
    assert {"workers", "redis", "postgres", "server_total", "generator"} <= set(send["us_per_unit"])


@pytest.fixture(scope="module")
def ot_workers(loadtest_workers: list[Worker]) -> list[Worker]:
    """The same workers: their per-user op limit is raised too, for the editors' smoke runs."""
    return loadtest_workers


def assert_converged(result: dict[str, Any], editors: int, documents: int) -> None:
    results = result["results"]
    assert results["ok"] is True, results["problems"]
    assert results["converged"] is True
    assert results["established"] == editors
    assert results["editors_converged"] == editors
    assert results["documents_replayed_ok"] == documents
    assert results["acked"] == results["ops_committed"] > 0
    assert results["unsettled"] == results["failed_editors"] == 0
    assert results["error_frames"] == {}
    assert set(results["ack_ms"]) == {"p50", "p95", "p99", "max"}
    assert results["ops_per_s"] > 0
    edit = result["windows"]["edit"]
    assert edit["unit"] == "op" and edit["units"] == results["acked"]
    assert {"workers", "redis", "postgres", "server_total"} <= set(edit["us_per_unit"])
    assert "steal_pct" in edit and "rerun_for_steal" in result
    assert result["server_log"]["traceback"] == 0, result["server_log"]["examples"]


def test_ot_hot_editors_converge(transactional_db, ot_workers):
    result = loadtest(ot_workers, "ot-hot", "--editors", "3", "--duration", "2")

    assert result["scenario"] == "ot-hot"
    assert_converged(result, editors=3, documents=1)
    assert result["results"]["remote_ops_received"] == 2 * result["results"]["acked"]


def test_ot_many_documents_converge(transactional_db, ot_workers):
    result = loadtest(ot_workers, "ot-many", "--documents", "3", "--duration", "2")

    assert result["scenario"] == "ot-many"
    assert_converged(result, editors=3, documents=3)
    assert result["results"]["remote_ops_received"] == 0  # alone on each document


def test_join_snapshots_match_the_database(transactional_db, ot_workers):
    result = loadtest(ot_workers, "join", "--size-kb", "10", "--joins", "5", "--warmup", "1")

    results = result["results"]
    assert result["scenario"] == "join"
    assert results["ok"] is True
    assert results["joined"] == results["snapshots_matching_db"] == 5
    assert results["failures"] == {}
    assert results["content_chars"] == 10 * 1024
    assert set(results["join_ms"]) == {"p50", "p95", "p99", "max"}
    assert result["windows"]["join"]["units"] == 5
    assert "server_total" in result["windows"]["join"]["us_per_unit"]


def test_comments_reach_every_socket_once_in_order(transactional_db, loadtest_workers):
    result = loadtest(
        loadtest_workers,
        "comments",
        *("--threads", "2", "--users", "4", "--rate", "10", "--duration", "2"),
        *("--reaction-share", "0.5"),
    )

    results = result["results"]
    assert result["scenario"] == "comments"
    assert results["ok"] is True, results["problems"]
    assert results["established"] == results["held_to_end"] == 8
    assert results["scheduled"] == results["sent"] == results["acked"] == 20
    assert results["acked_comments"] > 0 and results["acked_reactions"] > 0
    assert results["unanswered"] == results["duplicate_acks"] == 0
    assert results["error_frames"] == {}
    # Every event after setup is an acked write's, due to each of its thread's 4 sockets.
    assert results["events_committed"] == 20 - results["reactions_already_there"]
    assert results["deliveries_expected"] == 4 * results["events_committed"]
    assert results["deliveries_received"] == results["deliveries_expected"]
    assert results["lost"] == results["duplicates"] == results["out_of_order"] == 0
    assert results["unattributed_deliveries"] == 0
    assert results["comments_stored_once"] == results["acked_comments"]
    assert results["sockets_at_last_seq"] == 8
    assert set(results["ack_ms"]) == set(results["delivery_ms"]) == {"p50", "p95", "p99", "max"}
    write = result["windows"]["write"]
    assert write["unit"] == "write" and write["units"] == 20
    assert {"workers", "redis", "postgres", "server_total"} <= set(write["us_per_unit"])
    assert "server_total" in results["server_us_per_delivery"]
    assert result["server_log"]["traceback"] == 0, result["server_log"]["examples"]


def test_forms_respondents_submit_what_they_sent_and_dashboards_see_it(
    transactional_db, loadtest_workers
):
    result = loadtest(
        loadtest_workers,
        "forms",
        *("--forms", "2", "--respondents", "6", "--dashboards", "2", "--rate", "20"),
        *("--invalid-share", "0.5"),
    )

    results = result["results"]
    assert result["scenario"] == "forms"
    assert results["ok"] is True, results["problems"]
    assert results["established"] == results["held_to_end"] == 6 + 2 * 2
    assert results["updates_invalid_first"] > 0  # each answered with its error codes
    assert results["updates_scheduled"] == 6 * 4 + results["updates_invalid_first"]
    assert results["updates_sent"] == results["updates_acked"] == results["updates_scheduled"]
    assert results["feedback_checked"] == results["updates_acked"]
    assert results["feedback_wrong"] == 0
    assert results["submits_sent"] == results["respondents_completed"] == 6
    assert results["error_frames"] == {} and results["submit_refusals"] == []
    assert results["lost"] == results["dashboard_updates_unshown"] == 0
    assert results["dashboard_updates_max_in_1s"] <= 5  # coalesced to four a second
    assert results["submissions_matching"] == 6
    assert results["submitted_with_errors"] == 0
    assert results["dashboards_analytics_matching"] == 4
    for figure in ("update_ack_ms", "submit_ack_ms", "dashboard_delivery_ms"):
        assert set(results[figure]) == {"p50", "p95", "p99", "max"}
    fill = result["windows"]["fill"]
    assert fill["unit"] == "update" and fill["units"] == results["updates_acked"]
    assert "server_total" in results["server_us_per_update"]
    assert result["server_log"]["traceback"] == 0, result["server_log"]["examples"]
