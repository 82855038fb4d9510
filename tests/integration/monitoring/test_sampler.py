"""The health sampler (monitoring/sampler.py, `manage.py sample_health`) on the real PostgreSQL
and Redis. Only CPU and memory are passed in (a host reading, at the process boundary); every
latency is a real readiness check, breached by setting its threshold to 0."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management import CommandError, call_command

from config.realtime import kv
from monitoring.events import STAFF_GROUP
from monitoring.models import EventKind, SystemEvent
from monitoring.sampler import Running, health_sample, record_events, thresholds_from_settings

DEPENDENCIES = ["channel_layer_ms", "database_ms", "redis_ms"]
QUIET = {"cpu_percent": 10.0, "memory_percent": 20.0}
HIGH = {
    "cpu_percent": 90,
    "memory_percent": 90,
    "database_ms": 10_000,
    "redis_ms": 10_000,
    "channel_layer_ms": 10_000,
}


@pytest.fixture
def breached(settings):
    """Every dependency latency breaches its threshold; CPU and memory do not."""
    settings.MONITORING_HEALTH_THRESHOLDS = {**HIGH, **dict.fromkeys(DEPENDENCIES, 0)}
    settings.MONITORING_HEALTH_BREACHES_TO_ALERT = 3
    settings.MONITORING_HEALTH_OKS_TO_RECOVER = 2


def sample(running: Running, times: int = 1, readings=QUIET) -> tuple[Running, list[dict]]:
    # Thresholds read afresh, as a restarted sampler would; the hysteresis state carries over.
    lines = []
    for _ in range(times):
        running, line = async_to_sync(health_sample)(
            running, thresholds=thresholds_from_settings(), readings=readings, host="web-7"
        )
        lines.append(line)
    return running, lines


def health_events() -> list[SystemEvent]:
    return list(SystemEvent.objects.filter(kind=EventKind.HEALTH_ALERT).order_by("id"))


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the sampler ---------------------------------------------------------------------------------
# Readiness runs its database check through database_sync_to_async, which with async_to_sync
# lands on this thread: a test wrapped in a transaction would be checking that instead.
def test_a_sustained_breach_records_one_alert_per_metric_after_n_samples(
    transactional_db, breached
):
    running, _ = sample(Running(), times=2)
    assert health_events() == []

    running, (line,) = sample(running)
    running, _ = sample(running, times=3)  # still breached: nothing more

    alerts = health_events()
    assert sorted(e.details["metric"] for e in alerts) == DEPENDENCIES
    for event in alerts:
        assert event.severity == "warning"
        assert event.details["value"] > 0 and event.details["threshold"] == 0.0
        assert (event.details["state"], event.details["host"]) == ("alert", "web-7")
        assert event.details["observed_at"] == line["time"]
        assert "error" not in event.details
    assert line["recorded"] == [e.pk for e in alerts]
    assert sorted(line["alerting"]) == DEPENDENCIES
    assert line["events"][0] == {"metric": "database_ms", "state": "alert", "severity": "warning"}


def test_raising_the_thresholds_records_one_recovery_per_metric(
    transactional_db, breached, settings
):
    running, _ = sample(Running(), times=3)
    settings.MONITORING_HEALTH_THRESHOLDS = HIGH

    running, _ = sample(running)
    assert len(health_events()) == 3  # one OK sample is not yet a recovery (OKS_TO_RECOVER = 2)
    running, lines = sample(running, times=3)

    recoveries = health_events()[3:]
    assert sorted(e.details["metric"] for e in recoveries) == DEPENDENCIES
    assert {(e.severity, e.details["state"], e.details["threshold"]) for e in recoveries} == {
        ("info", "recovered", 10_000.0)
    }
    assert lines[-1]["alerting"] == []


def test_host_readings_alert_critical_past_their_critical_level(transactional_db, settings):
    settings.MONITORING_HEALTH_THRESHOLDS = {**HIGH, "cpu_percent": {"warning": 80, "critical": 95}}
    settings.MONITORING_HEALTH_BREACHES_TO_ALERT = 2
    busy = {"cpu_percent": 97.5, "memory_percent": 91.0}

    sample(Running(), times=2, readings=busy)

    rows = [
        (e.details["metric"], e.severity, e.details["value"], e.details["threshold"])
        for e in health_events()
    ]
    assert rows == [
        ("cpu_percent", "critical", 97.5, 95.0),
        ("memory_percent", "warning", 91.0, 90.0),
    ]


def test_a_dependency_down_is_a_critical_alert_naming_the_error(transactional_db, settings):
    settings.MONITORING_HEALTH_THRESHOLDS = HIGH
    settings.MONITORING_HEALTH_BREACHES_TO_ALERT = 2
    # A real endpoint nobody listens on, not a mock: the shared store cannot connect.
    settings.REDIS_URL = f"redis://127.0.0.1:{unused_port()}/0"
    kv.reset_store()

    _, lines = sample(Running(), times=2)

    (alert,) = health_events()
    assert alert.severity == "critical"
    assert alert.details | {"observed_at": None} == {
        "metric": "redis_ms",
        "value": None,
        "threshold": 10_000.0,
        "state": "alert",
        "host": "web-7",
        "error": "ConnectionError",
        "observed_at": None,
    }
    assert lines[-1]["redis_ms"] is None
    assert lines[-1]["errors"] == {"redis_ms": "ConnectionError"}
    assert lines[-1]["database_ms"] > 0


def test_events_the_database_refuses_are_kept_in_order_for_a_later_sample(
    transactional_db, settings
):
    settings.MONITORING_HEALTH_THRESHOLDS = HIGH
    # A real refusal: PostgreSQL's jsonb cannot hold a NUL character.
    refused = ("critical", {"metric": "database_ms", "state": "alert", "error": "\x00"})
    recovery = ("info", {"metric": "database_ms", "state": "recovered"})

    ids, kept = async_to_sync(record_events)([refused, recovery])

    # The recovery waits too: it must never be stored before its alert.
    assert (ids, kept, health_events()) == ([], (refused, recovery), [])
    alert = ("critical", {"metric": "database_ms", "state": "alert"})
    _, (line,) = sample(Running(unrecorded=(alert, recovery)))
    stored = health_events()
    assert [(e.severity, e.details["state"]) for e in stored] == [
        ("critical", "alert"),
        ("info", "recovered"),
    ]
    assert (line["recorded"], line["unrecorded"]) == ([e.pk for e in stored], 0)


@pytest.mark.django_db(transaction=True)
async def test_an_alert_reaches_the_staff_group(breached, settings):
    settings.MONITORING_HEALTH_BREACHES_TO_ALERT = 1
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(STAFF_GROUP, channel)
    try:
        await health_sample(Running(), thresholds=thresholds_from_settings(), readings=QUIET)
        frames = [json.loads((await layer.receive(channel))["frame"]) for _ in DEPENDENCIES]
    finally:
        await layer.group_discard(STAFF_GROUP, channel)

    assert {f["data"]["kind"] for f in frames} == {"health_alert"}
    assert sorted(f["data"]["details"]["metric"] for f in frames) == DEPENDENCIES


# --- the command ---------------------------------------------------------------------------------
def test_the_command_once_prints_one_json_line(transactional_db, settings):
    settings.MONITORING_HEALTH_THRESHOLDS = HIGH
    out = io.StringIO()

    call_command("sample_health", "--once", stdout=out)

    (line,) = [json.loads(text) for text in out.getvalue().splitlines()]
    assert line["host"] == socket.gethostname()
    assert 0 <= line["cpu_percent"] <= 100 and 0 < line["memory_percent"] <= 100
    assert all(line[metric] > 0 for metric in DEPENDENCIES)
    assert (line["errors"], line["events"], line["recorded"]) == ({}, [], [])


def test_the_command_counts_samples_and_records_alerts(transactional_db, settings):
    settings.MONITORING_HEALTH_THRESHOLDS = dict.fromkeys(HIGH, 0)  # everything breaches
    settings.MONITORING_HEALTH_BREACHES_TO_ALERT = 2
    out = io.StringIO()

    call_command("sample_health", "--count", "2", "--interval", "0", stdout=out)

    first, second = [json.loads(text) for text in out.getvalue().splitlines()]
    assert first["events"] == []
    assert sorted(e["metric"] for e in second["events"]) == sorted(HIGH)
    assert second["recorded"] == [e.pk for e in health_events()]


def test_the_command_refuses_bad_arguments_and_thresholds(settings):
    with pytest.raises(CommandError, match="--count"):
        call_command("sample_health", "--count", "0")
    with pytest.raises(CommandError, match="--interval"):
        call_command("sample_health", "--interval", "-1")
    settings.MONITORING_HEALTH_THRESHOLDS = {"disk_percent": 90}
    with pytest.raises(CommandError, match="'disk_percent'"):
        call_command("sample_health", "--once")


class Lines(io.StringIO):
    """stdout that says when the first line is out."""

    def __init__(self) -> None:
        super().__init__()
        self.first = threading.Event()

    def flush(self) -> None:
        self.first.set()


@pytest.fixture
def default_sigint():
    """Python's own Ctrl-C handling, as in the command's own process. Something earlier in a
    full run can leave another SIGINT handler in this one, and asyncio.run then does not take
    SIGINT over: in CI the signal went unheard and the loop slept on."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_the_loop_cleanly(transactional_db, settings, default_sigint):
    settings.MONITORING_HEALTH_THRESHOLDS = HIGH
    out, err = Lines(), io.StringIO()
    # Once the first sample is out the loop sleeps for an hour; Ctrl-C must end it. (The first
    # sample took over 30 s once, on a machine loaded by other runs: the wait is generous.)
    interrupt = threading.Thread(
        target=lambda: out.first.wait(100) and os.kill(os.getpid(), signal.SIGINT)
    )
    interrupt.start()

    call_command("sample_health", "--interval", "3600", stdout=out, stderr=err)
    interrupt.join()

    assert len(out.getvalue().splitlines()) == 1
    assert err.getvalue().strip() == "Stopped."
