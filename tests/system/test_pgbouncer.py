"""Two Daphne workers whose every query goes through a real PgBouncer in transaction pooling
(DATABASE_POOLER=pgbouncer; docs/operations.md, "Scaling out").

Transaction pooling hands each transaction whatever server connection is free, so nothing may
outlive one: no prepared statements (Django leaves them off) and no server-side cursors (the
setting turns them off, as Django's documentation asks for transaction pooling;
QuerySet.iterator() in forms_live's analytics would hold one). Three editors on two workers must
converge, and the forms analytics must answer, through it. (Without the setting these tests may
pass all the same: a cursor breaks only when its FETCH lands on another server connection than
its DECLARE, which this light load rarely makes happen.)
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model

from collab.client import DocumentSession
from collab.models import Document, Role
from collab.services import document_create, member_set
from forms_live.services import field_add, form_change, form_create
from monitoring.loadtest.workers import Worker, daphne_workers
from tests.system.client import ORIGIN, fetch_ticket, http_request
from tests.system.conftest import Account, worker_env
from tests.system.services import PrivatePgBouncer

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]


@pytest.fixture(scope="module")
def bouncer_workers(django_db_setup: None, tmp_path_factory) -> Iterator[list[Worker]]:
    bouncer = PrivatePgBouncer(pool_size=3)
    bouncer.start()
    name = settings.DATABASES["default"]["NAME"]
    env = worker_env() | {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{bouncer.port}/{name}",
        "DATABASE_POOLER": "pgbouncer",
    }
    try:
        with daphne_workers(2, env, log_dir=tmp_path_factory.mktemp("pgb-daphne")) as workers:
            yield workers
    finally:
        bouncer.stop()


@sync_to_async
def shared_document(accounts: list[Account]) -> Document:
    owner = get_user_model().objects.get(pk=accounts[0].user_id)
    document = document_create(owner=owner, title="Pooled", content="")
    for account in accounts[1:]:
        member_set(user=owner, document_id=document.pk, member_id=account.user_id, role=Role.EDITOR)
    return document


async def test_editors_converge_through_pgbouncer(bouncer_workers, make_account):
    accounts = [await sync_to_async(make_account)() for _ in range(3)]
    document = await shared_document(accounts)
    sessions = []
    for index, account in enumerate(accounts):
        worker = bouncer_workers[index % 2]

        async def ticket(worker=worker, account=account) -> str:
            return await fetch_ticket(worker.http_url(), account.token)

        url = worker.ws_url(f"/ws/collab/documents/{document.pk}/")
        sessions.append(DocumentSession(url, client_id=f"e{index}", ticket=ticket, origin=ORIGIN))
    rng = random.Random(5)
    try:
        for session in sessions:
            await session.start()
        for _ in range(20):
            for session in sessions:
                position = rng.randint(0, len(session.text))
                session.edit([position, rng.choice("abc")] if position else ["x"])
            await asyncio.sleep(0.02)
        for session in sessions:
            await session.settled(timeout=30)
        async with asyncio.timeout(10):
            while len({s.version for s in sessions}) > 1:  # noqa: ASYNC110 - plain state
                await asyncio.sleep(0.05)
    finally:
        for session in sessions:
            await session.close()
    stored = await sync_to_async(Document.objects.get)(pk=document.pk)

    assert [s.errors for s in sessions] == [[], [], []]
    assert [s.text for s in sessions] == [stored.content] * 3
    assert len(stored.content) == 60  # every keystroke, once


def test_the_forms_analytics_answer_through_pgbouncer(bouncer_workers, make_account):
    owner = make_account()
    user = get_user_model().objects.get(pk=owner.user_id)
    form = form_create(owner=user, title="Pooled form", conflict_policy="lww")
    field_add(user=user, form_id=form.pk, base_revision=0, client_msg_id="f1", key="name",
              type="text", label="Name")  # fmt: skip
    form_change(user=user, form_id=form.pk, base_revision=1, client_msg_id="p", prop="status",
                value="published")  # fmt: skip
    url = bouncer_workers[1].http_url(f"/api/forms/{form.pk}/analytics/")

    answers = [http_request(url, token=owner.token) for _ in range(5)]  # several transactions

    assert [status for status, _, _ in answers] == [200] * 5, answers[0][1][:300]
    assert json.loads(answers[-1][1])["views"] == 0
