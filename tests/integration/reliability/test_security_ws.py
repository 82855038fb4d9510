"""Security over WebSocket (RELIABILITY S1, S2, S4, S11, S14), on the real ASGI application,
Redis layer and PostgreSQL.

Our "tenant" is object membership: tenant A is alice's document, thread, form and submission;
tenant B is the same set owned by someone else, where bob has a role. Routes come from
``config.asgi.websocket_routes`` and message types from each consumer's ``command_table``, so a
new route or type is attacked without anyone adding it here; a new id it takes fails
``test_every_route_kwarg_and_room_kind_has_an_object_of_tenant_a`` until it is given one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

import config.settings as settings_module
from collab.services import document_create, member_set, operation_submit
from comments.models import Notification
from comments.services import comment_create, reaction_set, thread_create
from config.asgi import websocket_routes
from config.errors import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED
from config.realtime.broadcast import FRAME_MESSAGE
from forms_live.consumers import FormFillConsumer
from forms_live.services import (
    field_add,
    field_change,
    form_change,
    form_create,
    submission_start,
    submission_submit,
    submission_update,
)
from forms_live.services import member_set as form_member_set
from presence.rooms import ROOM_KINDS
from presence.services import users_presence
from tests.factories import UserFactory
from tests.integration.ws import (
    close_code,
    communicator,
    drain,
    next_of,
    request,
    send,
    ticket_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

# In every text of tenant A: no frame to anyone else may ever carry it.
MARKER = "alpha-secret-7f3"
# In tenant A's submission: only the form's owners and editors may read it.
ANSWER = "answer-secret-9c1"
ROLES = ("owner", "editor", "viewer")
# Rows these apps keep are what a cross-tenant command could change.
DATA_APPS = ("collab", "comments", "forms_live")


@dataclass
class Tenant:
    owner: Any
    editor: Any
    document_id: int
    thread_id: int
    comment_id: int
    notification_id: int
    form_id: int
    field_key: str
    conflict_id: int
    submission_id: int

    def object_for(self, name: str) -> int:
        """The id of this tenant's object a route kwarg or room kind names."""
        return {
            "document_id": self.document_id,
            "document": self.document_id,
            "thread_id": self.thread_id,
            "thread": self.thread_id,
            "form_id": self.form_id,
            "form": self.form_id,
        }[name]


def build_tenant(owner: Any, editor: Any, prefix: str, *, ops: int = 1) -> Tenant:
    """A document (``ops`` ops), a thread on it with a reply mentioning the owner (so the owner
    has a notification) and a reaction, a published manual-policy form with a field, an open
    conflict and a sent submission. Every text carries ``prefix``."""
    document = document_create(owner=owner, title=f"{prefix} plan", content=f"{prefix} text")
    member_set(user=owner, document_id=document.pk, member_id=editor.pk, role="editor")
    for seq in range(1, ops):
        operation_submit(
            document_id=document.pk,
            base_version=seq,
            op=[f"{prefix}{seq} "],
            client_id=f"{prefix}-setup",
            seq=seq,
            user=owner,
        )
    started = thread_create(
        user=owner,
        target_kind="document",
        target_id=document.pk,
        body=f"{prefix} question",
        client_msg_id=f"{prefix}-t",
    )
    thread_id, comment_id = started.thread["id"], started.comment["id"]
    comment_create(
        user=editor,
        thread_id=thread_id,
        body=f"@{owner.username} {prefix} reply",
        client_msg_id=f"{prefix}-c",
    )
    reaction_set(user=editor, comment_id=comment_id, kind="like", present=True)
    notification = Notification.objects.filter(recipient=owner).latest("pk")

    form = form_create(owner=owner, title=f"{prefix} survey", conflict_policy="manual")
    form_member_set(user=owner, form_id=form.pk, member_id=editor.pk, role="editor")
    key = f"{prefix.split('-')[0]}_field"
    revision = field_add(
        user=owner,
        form_id=form.pk,
        base_revision=0,
        client_msg_id=f"{prefix}-f",
        key=key,
        type="text",
        label=f"{prefix} label",
    ).revision
    revision = form_change(
        user=owner,
        form_id=form.pk,
        base_revision=revision,
        client_msg_id=f"{prefix}-p",
        prop="status",
        value="published",
    ).revision
    change = {"form_id": form.pk, "base_revision": revision, "key": key, "prop": "label"}
    field_change(user=owner, client_msg_id=f"{prefix}-o", value=f"{prefix} one", **change)
    opened = field_change(user=editor, client_msg_id=f"{prefix}-e", value=f"{prefix} two", **change)
    submission = submission_start(user=editor, form_id=form.pk)
    submission_update(
        user=editor, form_id=form.pk, token=submission.token, values={key: f"{prefix} {ANSWER}"}
    )
    submission_submit(user=editor, form_id=form.pk, token=submission.token)
    return Tenant(
        owner=owner,
        editor=editor,
        document_id=document.pk,
        thread_id=thread_id,
        comment_id=comment_id,
        notification_id=notification.pk,
        form_id=form.pk,
        field_key=key,
        conflict_id=opened.data["conflict"]["id"],
        submission_id=submission.pk,
    )


def share(tenant: Tenant, user: Any, role: str) -> None:
    """Give ``user`` this role on the tenant's document and form (owners are owners of both)."""
    member_set(user=tenant.owner, document_id=tenant.document_id, member_id=user.pk, role=role)
    form_member_set(user=tenant.owner, form_id=tenant.form_id, member_id=user.pk, role=role)


# --- what a cross-tenant command must not change -----------------------------------------------


def rows() -> dict[tuple[str, Any], dict[str, Any]]:
    """Every row of the data apps and every user, by (model label, pk)."""
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    models = [m for app in DATA_APPS for m in apps.get_app_config(app).get_models()]
    models.append(apps.get_model("auth", "User"))
    for model in models:
        for row in model.objects.values(*[f.attname for f in model._meta.concrete_fields]):
            found[(model._meta.label, row[model._meta.pk.attname])] = row
    return found


def owned_by(tenant: Tenant, snapshot: dict[tuple[str, Any], dict[str, Any]]) -> set:
    """Rows of the tenant: its users and objects, and every row that points at one of them
    through foreign keys (threads point at their target by kind and id), to a fixed point."""
    owned = {("auth.User", tenant.owner.pk), ("auth.User", tenant.editor.pk)}
    owned |= {("collab.Document", tenant.document_id), ("forms_live.Form", tenant.form_id)}
    links = {}
    for key in snapshot:
        model = apps.get_model(key[0])
        links[key] = [
            (f.related_model._meta.label, snapshot[key][f.attname])
            for f in model._meta.concrete_fields
            if f.is_relation and snapshot[key][f.attname] is not None
        ]
        if key[0] == "comments.Thread" and snapshot[key]["target_id"] in (
            tenant.document_id,
            tenant.form_id,
        ):
            target = {"document": "collab.Document", "form": "forms_live.Form"}
            links[key].append((target[snapshot[key]["target_kind"]], snapshot[key]["target_id"]))
    while True:
        grown = {key for key, targets in links.items() if any(t in owned for t in targets)}
        if grown <= owned:
            return owned
        owned |= grown


def changed_rows_of(tenant: Tenant, before: dict, after: dict) -> list:
    """Rows of the tenant that changed, vanished or appeared (pointing at the tenant)."""
    owned = owned_by(tenant, before) | owned_by(tenant, after)
    return [
        (key, before.get(key), after.get(key))
        for key in sorted(before.keys() | after.keys(), key=str)
        if key in owned and before.get(key) != after.get(key)
    ]


# --- the attack surface, read from the code ---------------------------------------------------


def consumer_routes() -> list[tuple[str, type, list[str]]]:
    """(path template, consumer class, its kwargs) for every WebSocket route."""
    found = []
    for route in websocket_routes:
        template = "/" + str(route.pattern)
        kwargs = list(route.pattern.converters)
        found.append((template, route.callback.consumer_class, kwargs))
    return found


def route_path(template: str, values: dict[str, int]) -> str:
    path = template
    for name, value in values.items():
        path = path.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
    assert "<" not in path, path
    return path


def naming(a: Tenant) -> dict[str, Any]:
    """A command's data naming tenant A's objects under every key a handler reads; values of
    other keys are well-formed, so the command gets as far as its permission check."""
    return {
        "comment_id": a.comment_id,
        "parent_id": a.comment_id,
        "thread_id": a.thread_id,
        "conflict_id": a.conflict_id,
        "submission_id": a.submission_id,
        "document_id": a.document_id,
        "form_id": a.form_id,
        "target_kind": "document",
        "target_id": a.document_id,
        "room": f"document.{a.document_id}",
        "ids": [a.notification_id],
        "key": a.field_key,
        "prop": "label",
        "value": "b wrote this",
        "resolution": "theirs",
        "base_revision": 0,
        "client_msg_id": "x-1",
        "client_id": "x",
        "seq": 1,
        "version": 0,
        "op": ["b"],
        "cursor": 0,
        "body": "b wrote this",
        "kind": "like",
        "state": "viewing",
        "status": "busy",
        "activity": "b",
        "location": "b",
        "values": {a.field_key: "b wrote this"},
        "data": {"n": 1},
        "type": "text",
        "label": "b",
    }


@pytest.fixture
def tenants(transactional_db):
    """Tenant A (alice owns it, dave edits) and tenant B (erin owns it, carol edits, bob views):
    one user of tenant B in each role."""
    names = ("alice", "dave", "erin", "carol", "bob")
    alice, dave, erin, carol, bob = (UserFactory(username=name) for name in names)
    a = build_tenant(alice, dave, MARKER, ops=4)
    b = build_tenant(erin, carol, "beta-text")
    share(b, bob, "viewer")
    return a, b, {"owner": erin, "editor": carol, "viewer": bob}


async def open_socket(user, path: str, communicators) -> Any:
    comm = communicator(path, ticket=await sync_to_async(ticket_for)(user))
    communicators.append(comm)
    connected, _ = await comm.connect(timeout=5)
    assert connected, path
    return comm


async def accepted(user, path: str, communicators) -> Any:
    """A socket past its welcome and opening frames, or None when the route refused it."""
    comm = await open_socket(user, path, communicators)
    first = await comm.receive_output(timeout=5)
    if first["type"] == "websocket.close":
        return None
    assert json.loads(first["text"])["type"] == "session.welcome", first
    # A consumer handles frames only after on_connect: once this is answered, every opening
    # frame has been sent (and skipped).
    assert (await request(comm, "session.heartbeat", id="opened"))["type"] == "ack"
    return comm


async def opened(user, path: str, communicators) -> Any:
    comm = await accepted(user, path, communicators)
    assert comm is not None, path
    return comm


async def listeners_of(a: Tenant, communicators) -> list[tuple[str, Any]]:
    """Alice on every socket of tenant A, and in its presence rooms: they must hear nothing."""
    result = []
    for template, _, kwargs in consumer_routes():
        values = {name: a.object_for(name) for name in kwargs}
        comm = await accepted(a.owner, route_path(template, values), communicators)
        if comm is not None:  # alice is no staff: the staff events refuse her
            result.append((template, comm))
    presence = dict(result)["/ws/presence/"]
    for kind in registered_room_kinds():
        room = f"{kind}.{a.object_for(kind) if not ROOM_KINDS.is_open(kind) else 'main'}"
        reply = await request(presence, "presence.room.join", {"room": room}, id=f"j-{kind}")
        assert reply["type"] == "ack", reply
    for _, comm in result:
        await drain(comm, quiet=0.05)  # presence events of her own joins
    return result


async def own_sockets(user, b: Tenant, communicators) -> list[tuple[str, Any, type]]:
    """The user's sockets on every route of tenant B it may open."""
    sockets = []
    for template, consumer, kwargs in consumer_routes():
        path = route_path(template, {name: b.object_for(name) for name in kwargs})
        comm = await accepted(user, path, communicators)
        if comm is not None:  # refused: the dashboard for viewers, the staff events for all
            sockets.append((template, comm, consumer))
    return sockets


def registered_room_kinds() -> list[str]:
    return sorted(ROOM_KINDS._rules)


# What the server itself puts on the layer: frames, thread deletion, dashboard pokes, control.
SERVER_MESSAGE_TYPES = {
    FRAME_MESSAGE,
    "comments.thread.gone",
    "forms.form.viewed",
    "realtime.control",
}


def spy_group_sends(monkeypatch) -> list[str]:
    """The type of every message this process sends to a group (the real layer still sends)."""
    layer = get_channel_layer()
    real = layer.group_send
    seen: list[str] = []

    async def group_send(group: str, message: dict[str, Any]) -> None:
        seen.append(message["type"])
        await real(group, message)

    monkeypatch.setattr(layer, "group_send", group_send)
    return seen


# --- S4: routes and room kinds are all covered --------------------------------------------------


def test_every_route_kwarg_and_room_kind_has_an_object_of_tenant_a():
    """A new route id or room kind must be given an object here, or the attacks skip it."""
    a = Tenant(None, None, 1, 2, 3, 4, 5, "k", 6, 7)
    for _, consumer, kwargs in consumer_routes():
        assert consumer.command_table, consumer
        for name in kwargs:
            a.object_for(name)
    for kind in registered_room_kinds():
        if not ROOM_KINDS.is_open(kind):
            a.object_for(kind)


# --- S4: every role of tenant B against tenant A -------------------------------------------------


async def test_no_role_in_tenant_b_reaches_tenant_a_over_any_route_or_message_type(
    tenants, communicators, monkeypatch
):
    """Each of tenant B's owner, editor and viewer (1) opens every route naming tenant A's
    objects: refused 4404/4403; (2) on every socket of their own sends every message type of
    that consumer with data naming tenant A's objects: no internal error, nothing of tenant A in
    any reply or event, no row of tenant A changed, and alice, listening on every socket and
    room of tenant A, hears nothing."""
    a, b, users = tenants
    listeners = await listeners_of(a, communicators)
    sent_types = spy_group_sends(monkeypatch)
    before = await sync_to_async(rows)()
    attacked = 0
    for role, user in users.items():
        for template, consumer, kwargs in consumer_routes():
            if kwargs and consumer is not FormFillConsumer:
                path = route_path(template, {name: a.object_for(name) for name in kwargs})
                await refused(user, path, communicators)
        sockets = await own_sockets(user, b, communicators)
        assert len(sockets) >= len(consumer_routes()) - 2, (role, [t for t, _, _ in sockets])
        for template, comm, consumer in sockets:
            for message_type in sorted(consumer.command_table):
                data = {**naming(a), "client_id": f"x-{role}"}
                reply = await request(comm, message_type, data, id=f"m{attacked}")
                attacked += 1
                assert reply["type"] in ("ack", "error"), reply
                if reply["type"] == "error":
                    assert reply["error"]["code"] != "internal", (message_type, reply)
                assert MARKER not in json.dumps(reply), (role, message_type, reply)
            leaked = [f for f in await drain(comm, quiet=0.02) if MARKER in json.dumps(f)]
            assert leaked == [], (role, template, leaked)
    assert attacked >= 3 * 30

    await asyncio.sleep(0.3)  # broadcasts of the last commands are in flight
    for template, comm in listeners:
        assert await drain(comm, quiet=0.05) == [], template
    after = await sync_to_async(rows)()
    assert await sync_to_async(changed_rows_of)(a, before, after) == []
    # Only our own layer message types went out, whatever "type" the clients' data carried.
    assert set(sent_types) <= SERVER_MESSAGE_TYPES, set(sent_types) - SERVER_MESSAGE_TYPES

    # A published form is open to every signed-in respondent (DESIGN section 1; that is the
    # point of it): they get the form and their own submission, never another one's answers.
    fill = [(t, k) for t, c, k in consumer_routes() if c is FormFillConsumer]
    for (template, kwargs), user in itertools.product(fill, users.values()):
        path = route_path(template, {name: a.object_for(name) for name in kwargs})
        frames = await drain(await open_socket(user, path, communicators), quiet=0.2)
        assert [f["type"] for f in frames] == ["session.welcome", "forms.fill.snapshot"], path
        assert ANSWER not in json.dumps(frames)
        assert frames[1]["data"]["submission"]["values"] == {}


async def refused(user, path: str, communicators) -> None:
    comm = await open_socket(user, path, communicators)
    assert await close_code(comm) in (CLOSE_NOT_FOUND, CLOSE_FORBIDDEN), path
    assert await comm.receive_nothing(timeout=0.02), path


# --- S11: layer-type injection ------------------------------------------------------------------

INJECTED_TYPES = [
    "websocket.disconnect",
    "websocket.close",
    "websocket.send",
    "realtime.frame",
    "chat.message",
    "comments.thread.gone",
    "__x",
    "_clean_up",
    "x.y.z",
]


async def test_a_client_chosen_type_never_becomes_a_layer_event_type(
    tenants, communicators, monkeypatch
):
    """As the envelope type it is unknown; inside data (a signal's payload, a comment) it is
    carried as data; the members of the group keep their sockets."""
    a, _, _ = tenants
    room = f"document.{a.document_id}"
    thread_path = f"/ws/comments/threads/{a.thread_id}/"
    sender = await opened(a.owner, "/ws/presence/", communicators)
    member = await opened(a.editor, "/ws/presence/", communicators)
    thread_sender = await opened(a.owner, thread_path, communicators)
    viewer = await opened(a.editor, thread_path, communicators)
    for comm in (sender, member):
        assert (await request(comm, "presence.room.join", {"room": room}))["type"] == "ack"
    sent_types = spy_group_sends(monkeypatch)

    for n, injected in enumerate(INJECTED_TYPES):
        error = await request(sender, injected, {"type": injected}, id=f"e{n}")
        payload = {"type": injected, "frame": "{}", "text": "x", "code": 1000}
        signal = {"room": room, "data": payload}
        assert (await request(sender, "presence.signal.send", signal, id=f"s{n}"))["type"] == "ack"
        body = {"body": f'{{"type": "{injected}"}}', "client_msg_id": f"inj-{n}"}
        comment = await request(thread_sender, "comments.comment.create", body, id=f"c{n}")

        assert error["error"]["code"] in ("unknown_type", "bad_frame"), error
        assert comment["type"] == "ack", comment
        signals = await next_of(member, "presence.signal.received")
        assert signals["data"]["data"] == payload
        created = await next_of(viewer, "comments.comment.created")
        assert created["data"]["comment"]["body"] == body["body"]
        for comm in (sender, member, viewer):  # every member's consumer is up and answering
            assert (await request(comm, "session.heartbeat", id=f"h{n}"))["type"] == "ack"
    assert set(sent_types) <= {FRAME_MESSAGE}, sent_types


# --- S14: presence for someone else -------------------------------------------------------------

SPOOF_KEYS = ("user", "user_id", "from", "author", "actor", "member", "connection_id")


async def test_presence_and_typing_name_only_the_sockets_own_user(tenants, communicators):
    """Every command of every socket, with the data naming alice as the user: alice's presence
    stays as she set it, and every presence or typing event bob causes names bob."""
    a, b, users = tenants
    alice, bob = a.owner, users["editor"]
    await sync_to_async(share)(b, alice, "viewer")  # she may see tenant B's rooms
    alice_socket = await opened(alice, "/ws/presence/", communicators)
    await request(alice_socket, "presence.activity.set", {"activity": "reading"}, id="a2")
    watcher = await opened(b.owner, "/ws/presence/", communicators)
    await request(watcher, "presence.user.watch", {"ids": [alice.pk, bob.pk]}, id="w")
    for kind in registered_room_kinds():
        key = b.object_for(kind) if not ROOM_KINDS.is_open(kind) else "main"
        reply = await request(watcher, "presence.room.join", {"room": f"{kind}.{key}"})
        assert reply["type"] == "ack", reply
    alice_before = await users_presence(user_ids=[alice.pk])
    await drain(watcher, quiet=0.05)

    spoof = {name: alice.pk for name in SPOOF_KEYS}
    spoof["from"] = {"id": alice.pk, "username": alice.username}
    for _, comm, consumer in await own_sockets(bob, b, communicators):
        for message_type in sorted(consumer.command_table):
            data = {**naming(b), **spoof, "room": f"form.{b.form_id}"}
            reply = await request(comm, message_type, data, id="p")
            assert reply["type"] in ("ack", "error"), reply

    assert await users_presence(user_ids=[alice.pk]) == alice_before
    events = await drain(watcher, quiet=0.3)
    named = [user_named_by(f) for f in events if user_named_by(f) not in (None, b.owner.pk)]
    assert len(named) >= 3, [f["type"] for f in events]  # bob's status and rooms showed
    assert set(named) == {bob.pk}, [(f["type"], f["data"]) for f in events]


def user_named_by(frame: dict[str, Any]) -> int | None:
    """The user a presence or typing event is about, if it is one."""
    data = frame.get("data") or {}
    for key in ("user", "from"):
        if isinstance(data.get(key), dict) and "id" in data[key]:
            return data[key]["id"]
    if isinstance(data.get("member"), dict):
        return data["member"]["user"]["id"]
    return data.get("user_id") if isinstance(data.get("user_id"), int) else None


# --- S1: unauthenticated, on every route --------------------------------------------------------


async def test_every_route_without_credentials_is_closed_4401_and_processes_nothing(
    tenants, communicators, monkeypatch
):
    a, _, _ = tenants
    before = await sync_to_async(rows)()
    sent_types = spy_group_sends(monkeypatch)
    for template, consumer, kwargs in consumer_routes():
        path = route_path(template, {name: a.object_for(name) for name in kwargs})
        for headers in ([], [(b"cookie", b"sessionid=forged")]):
            comm = communicator(path, headers=headers)
            communicators.append(comm)
            await comm.connect(timeout=5)
            for message_type in sorted(consumer.command_table):
                await send(comm, message_type, naming(a), id="u")

            assert await close_code(comm) == CLOSE_UNAUTHENTICATED, path
            assert await comm.receive_nothing(timeout=0.02), path
    assert sent_types == []
    assert await sync_to_async(rows)() == before


# --- S2: revocation mid-session, ticket age -----------------------------------------------------


async def test_a_removed_member_s_sockets_close_and_nothing_they_sent_later_lands(
    tenants, communicators, settings
):
    """Removal from a document and a form closes the member's sockets on both and on the
    document's thread (4404, as the handshake would now answer) within 5 s; no command they
    pipelined after the removal changed anything."""
    a, _, _ = tenants
    dave = a.editor
    doc = await opened(dave, f"/ws/collab/documents/{a.document_id}/", communicators)
    form = await opened(dave, f"/ws/forms/{a.form_id}/edit/", communicators)
    thread = await opened(dave, f"/ws/comments/threads/{a.thread_id}/", communicators)

    @sync_to_async
    def revoke() -> None:
        from collab.services import member_remove
        from forms_live.services import member_remove as form_member_remove

        member_remove(user=a.owner, document_id=a.document_id, member_id=dave.pk)
        form_member_remove(user=a.owner, form_id=a.form_id, member_id=dave.pk)

    await revoke()
    before = await sync_to_async(rows)()
    later = [
        (doc, "collab.op.submit", {"version": 4, "op": ["x"], "client_id": "d", "seq": 9}),
        (form, "forms.field.change", {**naming(a), "client_msg_id": "late"}),
        (thread, "comments.comment.create", {"body": "late", "client_msg_id": "late"}),
        (thread, "comments.reaction.add", {"comment_id": a.comment_id, "kind": "love"}),
    ]
    for comm, message_type, data in later:
        await send(comm, message_type, data, id="late")
    for comm in (doc, form, thread):
        assert await close_code(comm, within=5) == CLOSE_NOT_FOUND
    assert await sync_to_async(rows)() == before
    # Tickets: single use and short-lived are tested in tests/integration/config/realtime/
    # test_auth.py; their lifetime is at most the 30 s RELIABILITY S2 allows.
    assert 0 < settings.REALTIME_TICKET_TTL_SECONDS <= 30


# --- S3: no wildcard origin or host in production settings --------------------------------------


@pytest.mark.parametrize(
    "variable", ["DJANGO_WS_ALLOWED_ORIGINS", "DJANGO_ALLOWED_HOSTS"], ids=["origins", "hosts"]
)
def test_production_settings_refuse_a_wildcard(variable, monkeypatch):
    """Origins themselves (foreign, null, absent, scheme, port, prefix, suffix) are refused in
    tests/integration/config/realtime/test_auth.py and, against Daphne, test_cross_worker.py."""
    settings_file = Path(settings_module.__file__)
    monkeypatch.setenv("DJANGO_DEBUG", "0")
    monkeypatch.setenv(variable, "https://app.example.com,*")
    with pytest.raises(ImproperlyConfigured, match=variable):
        runpy.run_path(str(settings_file))
    monkeypatch.setenv(variable, "https://app.example.com")
    assert "*" not in runpy.run_path(str(settings_file))["REALTIME_ALLOWED_ORIGINS"]
