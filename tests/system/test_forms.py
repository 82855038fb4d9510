"""Forms across two real Daphne workers (issue 6's acceptance).

For each conflict policy, two builders on different workers change one field at the same base
revision: the outcome is what the policy promises, and identical on both workers and in the
database. A respondent on one worker fills a form while its owner watches the dashboard on the
other: progress, feedback, status changes and the analytics arrive live and match the database.
Respondents see no one else's submission and no dashboard; non-members cannot edit.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from forms_live.models import FieldConflict, FormField, Submission
from forms_live.selectors import form_stats
from forms_live.services import field_add, form_change, form_create, member_set
from monitoring.loadtest.workers import Worker
from tests.system.client import (
    RealtimeClient,
    attempt_handshake,
    fetch_ticket,
    http_request,
    ws_url,
)
from tests.system.conftest import Account

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

BASE_LABEL = "Email address"


def _form(owner: Account, editor: Account | None, policy: str, publish: bool = False) -> int:
    user = get_user_model().objects.get(pk=owner.user_id)
    form = form_create(owner=user, title="Sign-up", conflict_policy=policy)
    if editor is not None:
        member_set(user=user, form_id=form.pk, member_id=editor.user_id, role="editor")
    field_add(
        user=user,
        form_id=form.pk,
        base_revision=0,
        client_msg_id="f1",
        key="email",
        type="email",
        label=BASE_LABEL,
        required=True,
    )
    field_add(
        user=user,
        form_id=form.pk,
        base_revision=1,
        client_msg_id="f2",
        key="age",
        type="number",
        label="Age",
        rules={"min": 18},
    )
    if publish:
        form_change(
            user=user,
            form_id=form.pk,
            base_revision=2,
            client_msg_id="p",
            prop="status",
            value="published",
        )
    return form.pk


async def connect(worker: Worker, account: Account, path: str) -> RealtimeClient:
    ticket = await fetch_ticket(worker.http_url(), account.token)
    return await RealtimeClient.connect(worker.ws_url(path), ticket=ticket)


def field_events(client: RealtimeClient) -> list[tuple[int, str, Any]]:
    """(revision, type, data) of the form changes this builder was sent, in arrival order."""
    return [
        (f["seq"], f["type"], f["data"])
        for f in client.inbox
        if f.get("stream", "").startswith("forms.form.")
    ]


def replica_label(client: RealtimeClient, snapshot: dict) -> str:
    """The email field's label as this builder's client would show it: the snapshot, then
    every change it was sent, in order."""
    label = next(f["label"] for f in snapshot["form"]["fields"] if f["key"] == "email")
    for _, event_type, data in field_events(client):
        if (
            event_type in ("forms.field.changed", "forms.conflict.resolved")
            and data["prop"] == "label"
        ):
            label = data["value"]
    return label


@pytest.mark.parametrize("policy", ["lww", "merge", "manual"])
async def test_two_builders_on_two_workers_change_one_field_at_one_base_revision(
    worker_a, worker_b, alice, bob, policy
):
    form_id = await sync_to_async(_form)(alice, bob, policy)
    path = f"/ws/forms/{form_id}/edit/"
    on_a = await connect(worker_a, alice, path)
    on_b = await connect(worker_b, bob, path)
    snapshots = [(await c.next_event("forms.form.snapshot"))["data"] for c in (on_a, on_b)]
    base = snapshots[0]["revision"]
    change = {"base_revision": base, "key": "email", "prop": "label"}

    acks = await asyncio.gather(
        on_a.ack(
            "forms.field.change", {**change, "client_msg_id": "a", "value": "Work " + BASE_LABEL}
        ),
        on_b.ack(
            "forms.field.change",
            {**change, "client_msg_id": "b", "value": BASE_LABEL + " (required)"},
        ),
    )
    last = max(a["revision"] for a in acks)
    for client in (on_a, on_b):
        await client.wait_until(lambda c=client: any(s >= last for s, _, _ in field_events(c)))

    stored = await sync_to_async(FormField.objects.get)(form_id=form_id, key="email")
    labels = [replica_label(c, s) for c, s in zip((on_a, on_b), snapshots, strict=True)]
    assert labels == [stored.label, stored.label]  # identical on both workers and in the DB
    assert field_events(on_a) == field_events(on_b)  # the same changes in the same order
    first, second = sorted(acks, key=lambda a: a["revision"])
    outcomes = [first["outcome"], second["outcome"]]
    if policy == "lww":
        assert outcomes == ["applied", "applied"]
        assert stored.label == second["data"]["value"]  # the later commit wins
    elif policy == "merge":
        assert outcomes == ["applied", "merged"]
        assert stored.label == "Work Email address (required)"  # both edits kept
    else:
        assert outcomes == ["applied", "conflict"]
        assert stored.label == first["data"]["value"]  # the first stays...
        conflict = await sync_to_async(FieldConflict.objects.get)(form_id=form_id)
        assert conflict.status == "open"  # ...and the second waits for a member to decide
        assert conflict.proposed_value == second["data"]["conflict"]["proposed_value"]
    await on_a.close()
    await on_b.close()


def _stats(form_id: int) -> dict:
    return form_stats(form_id=form_id, now=time.time()).summary()


async def test_a_respondent_on_one_worker_and_the_owners_dashboard_on_the_other(
    worker_a, worker_b, alice, bob
):
    form_id = await sync_to_async(_form)(alice, None, "merge", publish=True)
    dashboard = await connect(worker_b, alice, f"/ws/forms/{form_id}/dashboard/")
    opening = await dashboard.next_event("forms.dashboard.snapshot")
    fill = await connect(worker_a, bob, f"/ws/forms/{form_id}/fill/")
    await fill.next_event("forms.fill.snapshot")

    typed = await fill.ack("forms.submission.update", {"values": {"email": "bob@", "age": 12}})
    refused = await fill.request("forms.submission.submit", {})
    await fill.ack("forms.submission.update", {"values": {"email": "bob@example.com"}})
    fixed = await fill.ack("forms.submission.update", {"values": {"age": 40}})
    sent = await fill.ack("forms.submission.submit", {})
    submission_id = sent["submission"]["id"]
    base = worker_b.http_url().rstrip("/")
    for status in ("processing", "completed"):
        answer = await asyncio.to_thread(
            http_request,
            f"{base}/api/forms/{form_id}/submissions/{submission_id}/status/",
            method="POST",
            token=alice.token,
            json_body={"status": status},
        )
        assert answer[0] == 200, answer[1][:300]
    done = await fill.next_frame("forms.submission.changed", timeout=10)
    while done["data"]["submission"]["status"] != "completed":
        done = await fill.next_frame("forms.submission.changed", timeout=10)

    def dashboard_state() -> dict | None:
        updates = [f for f in dashboard.inbox if f["type"] == "forms.dashboard.updated"]
        return updates[-1]["data"] if updates else None

    await dashboard.wait_until(
        lambda: (
            (state := dashboard_state()) is not None
            and any(s["status"] == "completed" for s in state["submissions"])
        ),
        timeout=10,
    )
    stored = await sync_to_async(Submission.objects.get)(form_id=form_id)
    final = dashboard_state()
    assert opening["data"]["analytics"]["starts"] == 0
    assert typed["submission"]["errors"] == {"email": ["email"], "age": ["min"]}
    assert refused["error"]["code"] == "invalid"
    assert (fixed["submission"]["errors"], fixed["submission"]["progress"]) == ({}, 100)
    progress_seen = [
        s["progress"]
        for f in dashboard.inbox
        if f["type"] == "forms.dashboard.updated"
        for s in f["data"]["submissions"]
    ]
    assert progress_seen and progress_seen[-1] == 100
    assert final["submissions"][-1]["status"] == stored.status == "completed"
    assert (
        final["submissions"][-1]["values"]
        == stored.values
        == {
            "email": "bob@example.com",
            "age": 40,
        }
    )
    assert final["analytics"] == await sync_to_async(_stats)(form_id)
    assert final["analytics"]["completions"] == 1
    await fill.close()
    await dashboard.close()


async def test_respondents_see_no_other_submission_and_no_dashboard(
    worker_a, worker_b, alice, bob, make_account
):
    form_id = await sync_to_async(_form)(alice, None, "merge", publish=True)
    carol = await sync_to_async(make_account)()
    bob_fill = await connect(worker_a, bob, f"/ws/forms/{form_id}/fill/")
    bobs = (await bob_fill.next_event("forms.fill.snapshot"))["data"]["submission"]
    base = worker_b.http_url().rstrip("/")

    refused = []
    for path in (f"/ws/forms/{form_id}/dashboard/", f"/ws/forms/{form_id}/edit/"):
        ticket = await fetch_ticket(worker_b.http_url(), carol.token)
        refused.append(await attempt_handshake(ws_url(worker_b.ws_url(path), ticket)))
    ticket = await fetch_ticket(worker_b.http_url(), carol.token)
    theirs = await attempt_handshake(
        ws_url(worker_b.ws_url(f"/ws/forms/{form_id}/fill/"), ticket)
        + f"&submission={bobs['token']}"
    )
    rest = [
        await asyncio.to_thread(http_request, base + url, token=carol.token)
        for url in (
            f"/api/forms/{form_id}/submissions/",
            f"/api/forms/{form_id}/submissions/{bobs['id']}/",
            f"/api/forms/{form_id}/analytics/",
        )
    ]

    assert [(o.close_code, o.frames) for o in refused] == [(4404, []), (4404, [])]
    assert theirs.close_code == 4404  # another's token: nothing but the welcome
    assert [json.loads(frame)["type"] for frame in theirs.frames] == ["session.welcome"]
    assert [status for status, _, _ in rest] == [404, 404, 404]
    await bob_fill.close()
