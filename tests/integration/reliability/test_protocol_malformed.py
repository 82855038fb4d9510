"""RELIABILITY.md P6: malformed messages, through the real ASGI app, Redis layer and PostgreSQL.

Two sweeps: envelope-level garbage on one socket, and wrong types, missing and extra fields,
and out-of-range numbers in every field of every client command of every WebSocket route.
Each frame must get an error frame with a stable code (never ``internal``), log no error or
traceback, and leave its socket and everyone else's working. (Single cases with their exact
replies: tests/integration/config/realtime/test_consumer.py.)
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from collab.consumers import DocumentConsumer
from collab.services import document_create, member_set
from comments.consumers import NotificationConsumer, ThreadConsumer
from comments.services import comment_create, thread_create
from config.errors import ErrorCode
from config.realtime.consumer import RealtimeConsumer
from forms_live.consumers import FormDashboardConsumer, FormEditConsumer, FormFillConsumer
from forms_live.services import field_add, field_change, form_change, form_create
from forms_live.services import member_set as form_member_set
from monitoring.consumers import StaffEventsConsumer
from presence.consumers import PresenceConsumer
from tests.factories import UserFactory
from tests.integration.ws import next_of, receive, request, send

pytestmark = pytest.mark.django_db(transaction=True)

UNLIMITED = "1000000/min"
MAX_SAFE = 2**53 - 1
# Stand-ins for every field: wrong types, empty, out of range, huge, NUL, nested.
BAD_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    MAX_SAFE,
    -MAX_SAFE,
    1.5,
    "",
    "x" * 5000,
    "\u0000",
    [],
    {},
    [None],
    {"": None},
]


@pytest.fixture
def unlimited(settings):
    """Every frame of the sweep is answered on its merits, not rate-limited or cut off."""
    settings.REALTIME_RATE_DEFAULT = UNLIMITED
    settings.REALTIME_RATES = dict.fromkeys(settings.REALTIME_RATES, UNLIMITED)
    settings.REALTIME_CONNECTION_RATES = dict.fromkeys(
        settings.REALTIME_CONNECTION_RATES, UNLIMITED
    )
    settings.REALTIME_ABUSE_LIMIT = 100_000


def log_problems(caplog) -> list[str]:
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info
    ]


# --- the envelope ---------------------------------------------------------------------------

# (raw text frame, expected code)
ENVELOPE_CASES: list[tuple[str, str]] = [
    ("", "bad_json"),
    ("   ", "bad_json"),
    ("null", "bad_frame"),
    ("42", "bad_frame"),
    ('"session.heartbeat"', "bad_frame"),
    ('[{"type": "session.heartbeat"}]', "bad_frame"),
    ("{}", "bad_frame"),
    ('{"id": "m1"}', "bad_frame"),
    ('{"id": "m1", "data": {}}', "bad_frame"),
    ('{"id": "m1", "type": null}', "bad_frame"),
    ('{"id": "m1", "type": 7}', "bad_frame"),
    ('{"id": "m1", "type": ["session.heartbeat"]}', "bad_frame"),
    ('{"id": "m1", "type": "SESSION.HEARTBEAT"}', "bad_frame"),
    ('{"id": "m1", "type": "session.heartbeat\\n"}', "bad_frame"),
    ('{"id": "m1", "type": "session"}', "bad_frame"),
    ('{"id": "m1", "type": "a.b.c.d"}', "bad_frame"),
    ('{"id": "m1", "type": "presence.nothing.here"}', "unknown_type"),
    ('{"id": "m1", "type": "session.heartbeat", "data": []}', "bad_frame"),
    ('{"id": "m1", "type": "session.heartbeat", "data": "x"}', "bad_frame"),
    ('{"id": "m1", "type": "session.heartbeat", "data": null}', "bad_frame"),
    ('{"id": 7, "type": "session.heartbeat"}', "bad_frame"),
    ('{"id": "", "type": "session.heartbeat"}', "bad_frame"),
    ('{"id": "' + "i" * 65 + '", "type": "session.heartbeat"}', "bad_frame"),
    ('{"id": "a b", "type": "session.heartbeat"}', "bad_frame"),
    ('{"id": "m1", "type": "session.heartbeat", "extra": 1}', "bad_frame"),
    ('{"id": "m1", "type": "session.heartbeat", "type": "session.heartbeat"}', "bad_json"),
    ('{"id": "m1", "type": "session.heartbeat", "data": {"a": 1, "a": 1}}', "bad_json"),
    ('{"id": "m1", "type": "session.heartbeat", "data": {"a": NaN}}', "invalid"),
    ('{"id": "m1", "type": "session.heartbeat", "data": {"a": Infinity}}', "invalid"),
    ('{"id": "m1", "type": "session.heartbeat", "data": {"a": -Infinity}}', "invalid"),
    ('{"id": "m1", "type": "session.heartbeat", "data": {"a": 1e400}}', "invalid"),
    ('{"id": "m1", "type": "session.heartbeat", "data": {"a": -1e400}}', "invalid"),
    ('{"id": "m1", "type": "session.heartbeat", "data": {"a": -9007199254740992}}', "invalid"),
    ('{"id": "m1", "type": "session.heartbeat", "data": {"a": ' + "9" * 5000 + "}}", "bad_json"),
    ('{"id": "m1", "type": "session.heartbeat", "data": {"a": "\\ud800"}}', "invalid"),
    ('{"id": "m1", "type": "session.heartbeat", "data": {"\\udfff": 1}}', "invalid"),
    ('{"id": "m1", "type": "session.heartbeat", "data": {"active": "yes"}}', "invalid"),
    ('{"id": "m1", "type": "session.heartbeat"', "bad_json"),
    ('{"id": "m1", "type": "session.heartbeat"}}', "bad_json"),
    ("{'id': 'm1', 'type': 'session.heartbeat'}", "bad_json"),
    ('\ufeff{"id": "m1", "type": "session.heartbeat"}', "bad_json"),
]
# (raw binary frame, expected code): binary frames are refused whatever they hold.
BINARY_CASES: list[tuple[bytes, str]] = [
    (b"\xff\xfe\xfd", "bad_frame"),
    (b'{"id": "b1", "type": "session.heartbeat", "data": {"a": "\xc3\x28"}}', "bad_frame"),
    (b"", "bad_frame"),
]


async def test_envelope_garbage_gets_its_error_code_and_hurts_no_socket(
    ws_user, ws_other_user, open_ws, unlimited, caplog
):
    caplog.set_level(logging.WARNING)
    comm, _ = await open_ws(ws_user)
    bystander, _ = await open_ws(ws_other_user)
    assert (await request(bystander, "presence.room.join", {"room": "lobby.p6"}))["type"] == "ack"
    assert (await request(comm, "presence.room.join", {"room": "lobby.p6"}))["type"] == "ack"

    wrong = []
    for raw, expected in [*ENVELOPE_CASES, *BINARY_CASES]:
        # send_input, not send_to: the helper refuses empty frames, a client need not.
        key = "bytes" if isinstance(raw, bytes) else "text"
        await comm.send_input({"type": "websocket.receive", key: raw})
        reply = await receive(comm)
        while reply["type"] not in ("ack", "error"):  # presence events of the room
            reply = await receive(comm)
        code = reply.get("error", {}).get("code")
        if (reply["type"], code) != ("error", expected) or "Traceback" in json.dumps(reply):
            wrong.append((raw[:80], expected, reply))

    assert wrong == []
    assert log_problems(caplog) == []
    # The socket and its room still work, for it and for the others in the room.
    await send(comm, "presence.signal.send", {"room": "lobby.p6", "data": {"n": 1}}, id="ok")
    received = await next_of(bystander, "presence.signal.received")
    assert received["data"]["data"] == {"n": 1}
    assert (await request(bystander, "session.heartbeat"))["type"] == "ack"


# --- every field of every command ---------------------------------------------------------


def routed_consumers() -> list[type[RealtimeConsumer]]:
    consumers = [
        PresenceConsumer,
        DocumentConsumer,
        ThreadConsumer,
        NotificationConsumer,
        FormEditConsumer,
        FormFillConsumer,
        FormDashboardConsumer,
        StaffEventsConsumer,
    ]
    from config.asgi import websocket_routes  # every route, to catch a consumer added later

    routed = {getattr(p.callback, "consumer_class", None) for p in websocket_routes}
    routed.discard(None)
    missing = {c.__name__ for c in routed} - {c.__name__ for c in consumers}
    assert not missing - {"BareRelayConsumer"}, f"add valid commands for {missing}"
    return consumers


def valid_commands(ids: dict[str, int]) -> dict[str, dict[str, Any]]:
    """A well-formed payload for every client command; the sweep breaks one field at a time."""
    return {
        "session.heartbeat": {"active": True},
        "presence.room.join": {"room": "lobby.fuzz", "state": "viewing"},
        "presence.status.set": {"status": "busy"},
        "presence.activity.set": {"activity": "reading", "location": "docs"},
        "presence.room.update": {"room": "lobby.fuzz", "state": "editing"},
        "presence.user.watch": {"ids": [ids["other"]]},
        "presence.user.unwatch": {"ids": [ids["other"]]},
        "presence.signal.send": {"room": "lobby.fuzz", "data": {"emoji": "wave"}},
        "presence.room.leave": {"room": "lobby.fuzz"},
        "collab.op.submit": {"version": 1, "op": [5, "!"], "client_id": "fz", "seq": 1},
        "collab.cursor.set": {"version": 1, "cursor": 0, "selection": [0, 1], "client_id": "fz"},
        "comments.comment.create": {
            "body": "hello @nobody",
            "client_msg_id": "fz",
            "parent_id": ids["comment"],
            "code": "x = 1",
            "code_language": "python",
        },
        "comments.comment.edit": {
            "comment_id": ids["comment"],
            "body": "edited",
            "code": "",
            "code_language": "",
        },
        "comments.reaction.add": {"comment_id": ids["comment"], "kind": "like"},
        "comments.reaction.remove": {"comment_id": ids["comment"], "kind": "like"},
        "comments.thread.resolve": {},
        "comments.thread.reopen": {},
        "comments.typing.start": {},
        "comments.typing.stop": {},
        "comments.presence.set": {"state": "commenting"},
        "comments.comment.delete": {"comment_id": ids["reply"]},
        "comments.notifications.read": {"ids": [1]},
        "comments.target.watch": {"target_kind": "document", "target_id": ids["document"]},
        "comments.target.unwatch": {"target_kind": "document", "target_id": ids["document"]},
        "forms.field.focus": {"key": "email"},
        "forms.field.add": {
            "base_revision": 3,
            "client_msg_id": "fz",
            "key": "extra",
            "type": "choice",
            "label": "Extra",
            "help": "Pick",
            "required": False,
            "rules": {"min_selected": 1},
            "options": ["a", "b"],
            "position": 0,
        },
        "forms.field.change": {
            "base_revision": 3,
            "client_msg_id": "fz",
            "key": "email",
            "prop": "label",
            "value": "Mail",
        },
        "forms.field.move": {
            "base_revision": 3,
            "client_msg_id": "fz",
            "key": "email",
            "position": 1,
        },
        "forms.conflict.resolve": {
            "client_msg_id": "fz",
            "conflict_id": ids["conflict"],
            "resolution": "custom",
            "value": "Chosen",
        },
        "forms.form.change": {
            "base_revision": 3,
            "client_msg_id": "fz",
            "prop": "title",
            "value": "Renamed",
        },
        "forms.field.remove": {"base_revision": 3, "client_msg_id": "fz", "key": "age"},
        "forms.submission.update": {"values": {"email": "a@example.com", "age": 30}},
        "forms.submission.submit": {},
        "monitoring.events.filter": {"kinds": ["login_failed"], "severities": ["warning"]},
    }


def mutations(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, payload): everything missing, one extra field, then each field (and each item of
    a list or object field) replaced by each bad value in turn."""
    cases = [("{}", {}), ("+extra", {**data, "zz_extra": [1, {"a": None}]})]
    for key, good in data.items():
        cases += [(f"{key}={bad!r:.20}", {**data, key: bad}) for bad in BAD_VALUES]
        if isinstance(good, list):
            for i in range(len(good)):
                for bad in BAD_VALUES:
                    cases.append((f"{key}[{i}]={bad!r:.20}", {**data, key: _put(good, i, bad)}))
        elif isinstance(good, dict):
            for inner in good:
                for bad in BAD_VALUES:
                    value = {**good, inner: bad}
                    cases.append((f"{key}.{inner}={bad!r:.20}", {**data, key: value}))
    return cases


def _put(items: list, index: int, value: Any) -> list:
    copy = list(items)
    copy[index] = value
    return copy


def fresh_keys(data: dict[str, Any], n: int, label: str) -> dict[str, Any]:
    """A new idempotency key per frame (unless it is the field under test), so no frame is
    answered as a duplicate of an earlier one without being checked."""
    data = dict(data)
    if "client_msg_id" in data and not label.startswith("client_msg_id"):
        data["client_msg_id"] = f"fz-{n}"
    if "seq" in data and not label.startswith("seq"):
        data["seq"] = n
    return data


def make_world(ws_user, ws_other_user) -> dict[str, Any]:
    """A document with a thread, a form with a manual conflict, a staff member."""
    owner, other = ws_user, ws_other_user
    document = document_create(owner=owner, title="Doc", content="hello")
    member_set(user=owner, document_id=document.pk, member_id=other.pk, role="editor")
    created = thread_create(
        user=owner, target_kind="document", target_id=document.pk, body="Hi", client_msg_id="t"
    )
    thread_id, comment_id = created.thread["id"], created.comment["id"]
    reply = comment_create(user=owner, thread_id=thread_id, body="Reply", client_msg_id="r")
    form = form_create(owner=owner, title="Sign-up", conflict_policy="manual")
    form_member_set(user=owner, form_id=form.pk, member_id=other.pk, role="editor")
    for revision, (key, kind) in enumerate([("email", "email"), ("age", "number")]):
        field_add(
            user=owner,
            form_id=form.pk,
            base_revision=revision,
            client_msg_id=f"f{revision}",
            key=key,
            type=kind,
            label=key.title(),
        )
    form_change(
        user=owner,
        form_id=form.pk,
        base_revision=2,
        client_msg_id="p",
        prop="status",
        value="published",
    )
    for who, label in ((owner, "A"), (other, "B")):
        result = field_change(
            user=who,
            form_id=form.pk,
            base_revision=2,
            client_msg_id=f"c{label}",
            key="email",
            prop="label",
            value=label,
        )
    return {
        "other": other.pk,
        "document": document.pk,
        "thread": thread_id,
        "comment": comment_id,
        "reply": reply.data["id"],
        "form": form.pk,
        "conflict": result.data["conflict"]["id"],
        "staff": UserFactory(is_staff=True, is_superuser=True),
    }


async def test_every_field_of_every_command_survives_wrong_types_and_ranges(
    ws_user, ws_other_user, open_ws, unlimited, caplog
):
    caplog.set_level(logging.WARNING)
    ids = await sync_to_async(make_world)(ws_user, ws_other_user)
    form = ids["form"]
    sockets = [
        (PresenceConsumer, ws_user, "/ws/presence/"),
        (DocumentConsumer, ws_user, f"/ws/collab/documents/{ids['document']}/"),
        (ThreadConsumer, ws_user, f"/ws/comments/threads/{ids['thread']}/"),
        (NotificationConsumer, ws_user, "/ws/comments/notifications/"),
        (FormEditConsumer, ws_user, f"/ws/forms/{form}/edit/"),
        (FormFillConsumer, ws_other_user, f"/ws/forms/{form}/fill/"),
        (FormDashboardConsumer, ws_user, f"/ws/forms/{form}/dashboard/"),
        (StaffEventsConsumer, ids["staff"], "/ws/monitoring/events/"),
    ]
    assert {c for c, _, _ in sockets} == set(routed_consumers())
    commands = valid_commands(ids)
    bystander, _ = await open_ws(ws_other_user, f"/ws/collab/documents/{ids['document']}/")

    internal, sent, n = [], 0, 0
    for consumer, user, path in sockets:
        comm, _ = await open_ws(user, path)
        assert set(consumer.command_table) <= commands.keys(), consumer.__name__
        for type_ in [t for t in commands if t in consumer.command_table]:
            for label, data in mutations(commands[type_]):
                n += 1
                reply = await request(comm, type_, fresh_keys(data, n, label), id=f"f{n}")
                sent += 1
                error = reply.get("error") or {}
                if error.get("code") not in (None, *[c.value for c in ErrorCode]) or error.get(
                    "code"
                ) in ("internal", "unavailable"):
                    internal.append((type_, label, reply))
        assert (await request(comm, "session.heartbeat", id="alive"))["type"] == "ack", path

    assert internal == []
    assert log_problems(caplog) == []
    assert sent > 1000  # the sweep really ran
    # Everyone else's socket is unaffected: the bystander still gets ops and answers.
    assert (await request(bystander, "session.heartbeat"))["type"] == "ack"
