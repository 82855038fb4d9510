"""monitoring/metrics.py in one process (no PROMETHEUS_MULTIPROC_DIR): the default registry.

The metrics the issue adds are observed where they happen, on the real Redis channel layer and
PostgreSQL: op commit latency, broadcast delivery latency, failed sends, over-capacity drops.
The multiprocess side is tested with two real workers in tests/system/test_metrics.py.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.test import Client
from prometheus_client import REGISTRY

from collab.services import document_create, operation_submit
from config.realtime.broadcast import abroadcast, group_send
from monitoring import buffered, metrics
from presence.rooms import parse_room
from tests.factories import UserFactory
from tests.integration.ws import drain, receive, request


def sample(name: str, **labels: str) -> float:
    buffered.flush()  # as /metrics does: per-delivery updates wait for a flush (or a scrape)
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_one_process_exports_its_default_registry(db):
    assert metrics.MULTIPROC_DIR is None
    assert metrics.registry() is REGISTRY

    text = Client().get("/metrics").content.decode()

    for name in (
        "collab_op_commit_seconds",
        "collab_broadcast_delivery_seconds",
        "collab_layer_send_failures_total",
        "collab_layer_over_capacity_total",
        "collab_worker_start_time_seconds",
    ):
        assert f"# HELP {name} " in text or f"# HELP {name.removesuffix('_total')} " in text


def test_an_op_commit_is_timed(db):
    owner = UserFactory()
    document = document_create(owner=owner, title="Notes", content="")
    before = sample("collab_op_commit_seconds_count")

    operation_submit(
        document_id=document.pk,
        base_version=document.version,
        op=["hi"],
        client_id="c1",
        seq=1,
        user=owner,
    )

    assert sample("collab_op_commit_seconds_count") == before + 1


@pytest.mark.django_db(transaction=True)
async def test_each_delivery_of_a_broadcast_is_timed_by_app(ws_user, open_ws):
    comm, _ = await open_ws(ws_user)
    assert (await request(comm, "presence.room.join", {"room": "lobby.timed"}))["type"] == "ack"
    await drain(comm)
    before = sample("collab_broadcast_delivery_seconds_count", app="presence")

    await abroadcast(parse_room("lobby.timed").group, "test.signal.sent", {"x": 1})

    assert await receive(comm) == {"type": "test.signal.sent", "data": {"x": 1}}
    assert sample("collab_broadcast_delivery_seconds_count", app="presence") == before + 1


@pytest.mark.django_db(transaction=True)
async def test_an_op_delivered_to_another_editor_is_timed_too(ws_user, open_ws):
    document = await sync_to_async(document_create)(owner=ws_user, title="T", content="")
    comm, _ = await open_ws(ws_user, f"/ws/collab/documents/{document.pk}/")
    await drain(comm)  # the snapshot
    before = sample("collab_broadcast_delivery_seconds_count", app="collab")

    await sync_to_async(operation_submit)(
        document_id=document.pk, base_version=0, op=["hi"], client_id="c9", seq=1, user=ws_user
    )

    assert (await receive(comm))["type"] == "collab.op.applied"
    assert sample("collab_broadcast_delivery_seconds_count", app="collab") == before + 1


async def test_a_failed_group_send_is_counted_and_raised():
    before = sample("collab_layer_send_failures_total", reason="other")

    with pytest.raises(TypeError):  # the layer cannot serialize a set
        await group_send("metrics.failure", {"type": "realtime.frame", "frame": {1}})

    assert sample("collab_layer_send_failures_total", reason="other") == before + 1


async def test_messages_dropped_over_capacity_are_counted():
    # The project's layer with a capacity of one: the second message finds the channel full.
    layer = RedisChannelLayer(
        hosts=[settings.REDIS_URL], prefix=f"{settings.REALTIME_KEY_PREFIX}cap", capacity=1
    )
    channel = await layer.new_channel()
    await layer.group_add("metrics.capacity", channel)
    before = sample("collab_layer_over_capacity_total")
    try:
        for n in range(3):
            await layer.group_send("metrics.capacity", {"type": "test.message", "n": n})
        assert sample("collab_layer_over_capacity_total") == before + 2
    finally:
        await layer.flush()
        await layer.close_pools()


def test_database_queries_are_counted_per_alias_and_vendor(db):
    labels = {"alias": "default", "vendor": "postgresql"}
    before = sample("django_db_execute_total", **labels)

    UserFactory()

    assert sample("django_db_execute_total", **labels) > before
    assert "django_db_execute_total" in Client().get("/metrics").content.decode()
