"""RELIABILITY.md P7 and P8 in process: the app's frame-size limit at its exact boundary, a
flood from one socket, deep nesting over WebSocket, and deep or oversized bodies sent to every
REST route that takes one. (Daphne's own 1 MiB limit, invalid UTF-8 text frames and the
flood's memory cost on a real worker: tests/system/test_protocol_workers.py.)

Our protocol, where it differs from the plan's wording: a frame over REALTIME_MAX_MESSAGE_BYTES
is answered with a ``too_large`` error frame and the socket stays open (DESIGN section 4: bad
input gets an error frame unless the client keeps at it); a flood is answered ``rate_limited``
and closed with 4429 (over a rate) or 1008 (garbage) once REALTIME_ABUSE_LIMIT frames in a
minute were refused.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.urls import URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from collab.services import document_create, member_set
from comments.services import comment_create, thread_create
from config.errors import CLOSE_RATE_LIMITED
from config.realtime.consumer import CLOSE_POLICY_VIOLATION
from forms_live.services import (
    field_add,
    field_change,
    form_change,
    form_create,
    submission_start,
    submission_update,
)
from forms_live.services import member_set as form_member_set
from monitoring.controls import announcement_create
from tests.factories import UserFactory
from tests.integration.ws import receive, request, send

pytestmark = pytest.mark.django_db(transaction=True)

FLOOD = 10_000


# --- P7 over WebSocket ---------------------------------------------------------------------


def heartbeat_of_size(size: int, frame_id: str) -> str:
    """A heartbeat frame of exactly ``size`` UTF-8 bytes, padded with 3-byte characters so
    that bytes, not characters, must be counted."""
    empty = json.dumps(
        {"id": frame_id, "type": "session.heartbeat", "data": {"pad": ""}}, ensure_ascii=False
    )
    room = size - len(empty.encode())
    pad = "€" * (room // 3) + "x" * (room % 3)
    frame = empty.replace('"pad": ""', f'"pad": "{pad}"')
    assert len(frame.encode()) == size
    return frame


async def test_a_frame_at_the_limit_is_served_and_one_byte_more_is_too_large(
    ws_user, open_ws, settings
):
    limit = settings.REALTIME_MAX_MESSAGE_BYTES
    assert limit == 64 * 1024  # the documented default, not a test value
    comm, welcome = await open_ws(ws_user)

    await comm.send_to(text_data=heartbeat_of_size(limit, "at"))
    at_limit = await receive(comm)
    await comm.send_to(text_data=heartbeat_of_size(limit + 1, "over"))
    over = await receive(comm)

    assert welcome["data"]["max_message_bytes"] == limit
    assert (at_limit["type"], at_limit["id"]) == ("ack", "at")
    assert over["type"] == "error"
    assert (over["error"]["code"], over["error"]["retry"]) == ("too_large", False)
    assert (await request(comm, "session.heartbeat", id="after"))["type"] == "ack"


@pytest.mark.parametrize(
    ("frame", "closed_with"),
    [
        ('{"id": "h", "type": "session.heartbeat"}', CLOSE_RATE_LIMITED),
        ("not json", CLOSE_POLICY_VIOLATION),
    ],
    ids=["over-rate", "garbage"],
)
async def test_a_flood_from_one_socket_is_refused_and_closed_within_a_second(
    ws_user, ws_other_user, open_ws, settings, frame, closed_with
):
    comm, _ = await open_ws(ws_user)
    other, _ = await open_ws(ws_other_user)
    limit = settings.REALTIME_ABUSE_LIMIT

    started = time.monotonic()
    for _ in range(FLOOD):
        # Straight onto the socket's input queue: send_to's own overhead per frame would be
        # what is timed, not the server's.
        comm.input_queue.put_nowait({"type": "websocket.receive", "text": frame})
    frames = []
    while True:
        message = await comm.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            break
        frames.append(json.loads(message["text"]))
    elapsed = time.monotonic() - started

    assert message.get("code") == closed_with
    assert elapsed < 1.0, f"closed after {elapsed:.2f}s"
    refused = [f for f in frames if f["type"] == "error"]
    # Closed at the limit: nothing after the close was processed or answered. The acks are the
    # heartbeats the per-socket rate allowed before the refusals began.
    assert len(refused) == limit + 1
    allowed = int(settings.REALTIME_CONNECTION_RATES["session.heartbeat"].split("/")[0])
    assert len(frames) - len(refused) <= allowed
    assert (await request(other, "session.heartbeat"))["type"] == "ack"  # others unaffected


# --- P8 over WebSocket: a deep frame on every socket kind --------------------------------


async def test_a_frame_nested_ten_thousand_deep_is_too_deep_and_depth_33_is_refused(
    ws_user, open_ws, settings
):
    assert settings.REALTIME_MAX_DEPTH == 32
    comm, _ = await open_ws(ws_user)
    deep = "[" * 10_000 + "]" * 10_000

    await comm.send_to(text_data='{"id":"d1","type":"session.heartbeat","data":{"a":' + deep + "}}")
    too_deep = await receive(comm)
    # The frame is depth 1, data 2: 30 more lists reach 32, 31 more pass it.
    at_limit = '{"id":"d2","type":"session.heartbeat","data":{"a":' + "[" * 30 + "]" * 30 + "}}"
    over = '{"id":"d3","type":"session.heartbeat","data":{"a":' + "[" * 31 + "]" * 31 + "}}"
    await comm.send_to(text_data=at_limit)
    served = await receive(comm)
    await comm.send_to(text_data=over)
    refused = await receive(comm)

    assert too_deep["error"]["code"] == "too_deep"
    assert (served["type"], served["id"]) == ("ack", "d2")
    assert (refused["id"], refused["error"]["code"]) == ("d3", "too_deep")
    await send(comm, "session.heartbeat", id="alive")
    assert (await receive(comm))["type"] == "ack"
    assert await comm.receive_nothing(timeout=0.1)


# --- P8 over REST: every route that takes a body --------------------------------------------

BODY_METHODS = ("post", "put", "patch", "delete")
# Routes that never read a JSON body, so a deep or huge one changes nothing: they act on the
# URL alone. Kept exact: a route that starts reading its body must then pass the depth check.
NO_BODY = {
    ("post", "api/realtime/tickets/"),
    ("delete", "api/collab/documents/<bigid:document_id>/"),
    ("delete", "api/collab/documents/<bigid:document_id>/members/<bigid:user_id>/"),
    ("post", "api/collab/documents/<bigid:document_id>/versions/<bigid:version>/restore/"),
    ("post", "api/comments/threads/<bigid:thread_id>/resolve/"),
    ("post", "api/comments/threads/<bigid:thread_id>/reopen/"),
    ("delete", "api/comments/comments/<bigid:comment_id>/"),
    ("delete", "api/comments/comments/<bigid:comment_id>/reactions/<str:kind>/"),
    ("post", "api/comments/notifications/read-all/"),
    ("delete", "api/forms/<bigid:form_id>/"),
    ("delete", "api/forms/<bigid:form_id>/members/<bigid:user_id>/"),
    ("delete", "api/forms/<bigid:form_id>/fields/<fieldkey:key>/"),
    ("post", "api/monitoring/users/<bigid:user_id>/disconnect/"),
    ("post", "api/monitoring/announcements/<bigid:announcement_id>/withdraw/"),
}
# Multipart only (comments/files.py): any JSON body is an unsupported media type.
MULTIPART = {("post", "api/comments/comments/<bigid:comment_id>/attachments/")}


def api_routes() -> list[tuple[str, Any]]:
    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern.callback

    return [(route, view) for route, view in walk(get_resolver().url_patterns) if "api/" in route]


def body_methods(view: Any) -> list[str]:
    actions = getattr(view, "actions", None)
    if actions is not None:
        return [m for m in BODY_METHODS if m in actions]
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    return [m for m in BODY_METHODS if cls is not None and hasattr(cls, m)]


def make_world(owner, other) -> dict[str, str]:
    document = document_create(owner=owner, title="Doc", content="hello")
    member_set(user=owner, document_id=document.pk, member_id=other.pk, role="editor")
    created = thread_create(
        user=owner, target_kind="document", target_id=document.pk, body="Hi", client_msg_id="t"
    )
    comment_create(user=owner, thread_id=created.thread["id"], body="Re", client_msg_id="r")
    form = form_create(owner=owner, title="Sign-up", conflict_policy="manual")
    form_member_set(user=owner, form_id=form.pk, member_id=other.pk, role="editor")
    field_add(
        user=owner,
        form_id=form.pk,
        base_revision=0,
        client_msg_id="f",
        key="email",
        type="email",
        label="E-mail",
    )
    form_change(
        user=owner,
        form_id=form.pk,
        base_revision=1,
        client_msg_id="p",
        prop="status",
        value="published",
    )
    field_change(
        user=owner,
        form_id=form.pk,
        base_revision=2,
        client_msg_id="a",
        key="email",
        prop="label",
        value="A",
    )
    conflict = field_change(
        user=other,
        form_id=form.pk,
        base_revision=2,
        client_msg_id="b",
        key="email",
        prop="label",
        value="B",
    )
    filler = UserFactory()
    submission = submission_start(user=filler, form_id=form.pk)
    submission_update(user=filler, form_id=form.pk, token=submission.token, values={"email": "x"})
    announcement = announcement_create(
        text="Maintenance", level="info", expires_at=timezone.now() + timedelta(hours=1), by=owner
    )
    return {
        "document_id": str(document.pk),
        "user_id": str(other.pk),
        "version": "1",
        "thread_id": str(created.thread["id"]),
        "comment_id": str(created.comment["id"]),
        "kind": "like",
        "form_id": str(form.pk),
        "key": "email",
        "conflict_id": str(conflict.data["conflict"]["id"]),
        "submission_id": str(submission.pk),
        "room": "lobby.limits",
        "app": "presence",
        "announcement_id": str(announcement.pk),
    }


def fill(route: str, ids: dict[str, str]) -> str:
    path = route
    for name, value in ids.items():
        for converter in ("bigid", "str", "fieldkey", "int"):
            path = path.replace(f"<{converter}:{name}>", value)
    assert "<" not in path, path
    return "/" + path


PARENTS = {"api/collab/documents/<bigid:document_id>/", "api/forms/<bigid:form_id>/"}


def deletes_last(item: tuple[str, str, Any]) -> tuple[bool, bool, int]:
    method, route, _ = item
    # Children before parents, so that each route still finds its objects.
    return (method == "delete", route in PARENTS, -route.count("/"))


def test_every_rest_route_refuses_a_deep_or_oversized_body_with_its_code_and_never_500(
    transactional_db, settings
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(
            settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "100000/min"
        ),
    }
    owner = UserFactory(is_staff=True, is_superuser=True)
    ids = make_world(owner, UserFactory())
    client = APIClient()
    client.force_authenticate(owner)
    deep = ('{"a":' * 10_000 + "1" + "}" * 10_000).encode()  # ~60 KB, depth 10,000
    # One past REALTIME_MAX_DEPTH: refused by our check, not by Python's recursion limit.
    just_over = (
        "[" * (settings.REALTIME_MAX_DEPTH + 1) + "]" * (settings.REALTIME_MAX_DEPTH + 1)
    ).encode()
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    huge = b'{"pad": "' + b"x" * (limit + 1 - 11) + b'"}'
    assert len(huge) == limit + 1
    targets = sorted(
        ((m, route, view) for route, view in api_routes() for m in body_methods(view)),
        key=deletes_last,
    )
    assert len(targets) > 30  # the walk found the API

    outcomes: dict[tuple[str, str], tuple] = {}
    for method, route, _ in targets:
        path = fill(route, ids)
        answers = []
        for body in (deep, just_over, huge):
            response = getattr(client, method)(path, data=body, content_type="application/json")
            code = response.json().get("error", {}).get("code") if response.content else None
            answers.append((response.status_code, code))
        outcomes[(method, route)] = tuple(answers)

    never_500 = {k: v for k, v in outcomes.items() if any(status >= 500 for status, _ in v)}
    assert never_500 == {}
    refused = ((400, "too_deep"), (400, "too_deep"), (413, "too_large"))
    for route in MULTIPART:
        assert outcomes.pop(route) == ((400, "invalid"),) * 3, route
    others = {k: v for k, v in outcomes.items() if v != refused}
    assert others.keys() == NO_BODY, others
    # Those act on the URL alone (the field DELETE wants its base_revision in the query).
    assert all(status < 400 or code for v in others.values() for status, code in v), others
