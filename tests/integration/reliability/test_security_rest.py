"""Security of the REST API (RELIABILITY S5, S6, S7), every route read from the OpenAPI schema
drf-spectacular builds from the URLconf, so a new route is attacked without being listed here.

Tenants are those of test_security_ws: tenant A is alice's document, thread, form, submission
and notification; erin owns tenant B. Each call is made inside a savepoint that is rolled back,
so a call that succeeds (the owner's) leaves the next one the same world.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.permissions import OperandHolder
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.integration.reliability.test_security_ws import (
    ANSWER,
    MARKER,
    Tenant,
    build_tenant,
    changed_rows_of,
    rows,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 200
# Path parameters that name no object of a tenant, with what they are instead.
NOT_TENANT_IDS = {
    "kind": "a reaction kind (like, love...), under a comment id",
    "app": "an app name; staff-only routes",
    "room": "a presence room name; its kind's rule decides (tested in presence tests and S4)",
}
STAFF_PREFIX = "/api/monitoring/"
# Routes with an id that every signed-in user may read, and why.
OPEN_TO_SIGNED_IN = {
    ("get", "/api/monitoring/announcements/{announcement_id}/"): "a live announcement is shown "
    "to everyone signed in (monitoring/staff_api.py); withdrawing it is staff-only",
}


class Rollback(Exception):
    pass


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) for every operation of the API."""
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


def path_params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    names = ("alice", "dave", "erin", "carol", "staffer")
    alice, dave, erin, carol, staffer = (UserFactory(username=name) for name in names)
    staffer.is_staff = staffer.is_superuser = True
    staffer.save()
    a = build_tenant(alice, dave, MARKER, ops=6)
    b = build_tenant(erin, carol, "beta-text")
    from comments.services import attachment_add
    from monitoring.controls import announcement_create

    attachment_add(user=alice, comment_id=a.comment_id, upload=png())
    announcement = announcement_create(
        text="maintenance at noon",
        level="info",
        expires_at=timezone.now() + timedelta(hours=1),
        by=staffer,
    )
    return a, b, staffer, announcement.pk


def png() -> SimpleUploadedFile:
    return SimpleUploadedFile("shot.png", PNG, content_type="image/png")


def ids_of(tenant: Tenant, announcement_id: int) -> dict[str, Any]:
    from comments.models import Attachment

    return {
        "document_id": tenant.document_id,
        "thread_id": tenant.thread_id,
        "comment_id": tenant.comment_id,
        "attachment_id": Attachment.objects.filter(comment_id=tenant.comment_id)
        .values_list("pk", flat=True)
        .first()
        or 10**9,
        "form_id": tenant.form_id,
        "conflict_id": tenant.conflict_id,
        "submission_id": tenant.submission_id,
        "key": tenant.field_key,
        "user_id": tenant.editor.pk,
        "version": 5,
        "announcement_id": announcement_id,
        "kind": "like",
        "app": "comments",
        "room": f"document.{tenant.document_id}",
    }


def body_for(operation: dict[str, Any], schema: dict[str, Any], a: Tenant, n: int) -> Any:
    """A body with every property the request schema declares, each well-formed."""
    content = operation.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content and "application/json" not in content:
        return {"file": png()}, "multipart"
    if not content:
        return None, "json"
    ref = content["application/json"]["schema"].get("$ref", "")
    properties = schema["components"]["schemas"].get(ref.split("/")[-1], {}).get("properties", {})
    values = {
        "title": "Renamed",
        "content": "text",
        "user_id": a.editor.pk,
        "role": "viewer",
        "name": "Draft",
        "body": "a comment",
        "code": "",
        "code_language": "",
        "thread_id": a.thread_id,
        "parent_id": a.comment_id,
        "client_msg_id": f"k-{n}",
        "kind": "love",
        "ids": [a.notification_id],
        "target_kind": "document",
        "target_id": a.document_id,
        "target_key": "",
        "anchor": None,
        "base_revision": 0,
        "key": "added_field",
        "type": "text",
        "label": "Label",
        "help": "",
        "required": False,
        "rules": {},
        "options": [],
        "position": 0,
        "resolution": "theirs",
        "value": "v",
        "prop": "label",
        "status": "processing",
        "conflict_policy": "merge",
        "anonymous": False,
        "text": "hello",
        "level": "info",
        "expires_in": 60,
        "expires_at": None,
        "enabled": True,
        "reason": "",
    }
    missing = set(properties) - set(values)
    assert not missing, f"give a value for {missing} of {ref}"
    return {name: values[name] for name in properties if values[name] is not None}, "json"


def query_for(operation: dict[str, Any]) -> str:
    required = [
        p["name"]
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p.get("required")
    ]
    return "&".join(f"{name}={'1' if name == 'base_revision' else 'k-q'}" for name in required)


def call(client: APIClient, method: str, path: str, values: dict, body: Any, fmt: str, query=""):
    url = path.format(**{name: values[name] for name in path_params(path)})
    url += f"?{query}" if query else ""
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, body, format=fmt)


_client: list[APIClient] = []


def client_for(user: Any | None) -> APIClient:
    """One client for the module, signed in as ``user`` (or no one): each new client loads the
    middleware again, WhiteNoise's scan of the static files included (~150 ms)."""
    if not _client:
        _client.append(APIClient())
    _client[0].force_authenticate(user)
    return _client[0]


def in_savepoint(work):  # type: ignore[no-untyped-def]
    """The result of ``work()``, with everything it wrote rolled back."""
    result = []
    try:
        with transaction.atomic():
            result.append(work())
            raise Rollback
    except Rollback:
        pass
    return result[0]


# --- the routes are all covered -----------------------------------------------------------------


def test_every_path_parameter_of_the_api_names_a_tenant_object_or_is_explained(db, schema):
    names = {name for _, path, _ in operations(schema) for name in path_params(path)}
    fake = Tenant(None, None, 1, 2, 3, 4, 5, "k", 6, 7)
    fake.editor = type("U", (), {"pk": 8})()
    known = set(ids_of(fake, 9))
    assert names <= known, names - known
    assert len([1 for _, path, _ in operations(schema) if path_params(path)]) >= 40


# --- S5 and S7: every route with an id, anonymous / other tenant / owner ------------------------


def test_every_object_route_lets_in_only_its_owner(world, schema):
    """For every operation with a path id, on tenant A's objects: anonymous 401; erin (owner of
    tenant B) 404 and the same answer as for an id that exists nowhere, and no row changed;
    alice (owner of A; staff for staff routes) gets past authorization. Non-staff on staff
    routes: 403."""
    a, b, staffer, announcement_id = world
    erin = b.owner
    values = ids_of(a, announcement_id)
    missing = {name: (v + 10**6 if isinstance(v, int) else "zz_none") for name, v in values.items()}
    missing.update({"kind": "like", "app": "nosuchapp", "room": "document.999999999"})
    before = rows()
    checked = 0
    for n, (method, path, operation) in enumerate(operations(schema)):
        if not path_params(path):
            continue
        staff_route = path.startswith(STAFF_PREFIX)
        body, fmt = body_for(operation, schema, a, n)
        query = query_for(operation)
        where = f"{method.upper()} {path}"

        anonymous = call(client_for(None), method, path, values, body, fmt, query)
        assert anonymous.status_code == 401, (where, anonymous.content)
        if fmt == "multipart":
            body = {"file": png()}
        stranger = call(client_for(erin), method, path, values, body, fmt, query)
        if (method, path) in OPEN_TO_SIGNED_IN:
            assert stranger.status_code == 200, (where, stranger.content)
        elif staff_route:
            assert stranger.status_code == 403, (where, stranger.content)
        else:
            assert stranger.status_code == 404, (where, stranger.status_code, stranger.content)
            if "room" not in path:  # rooms: their kind's rule; named by kind, not by id
                body = {"file": png()} if fmt == "multipart" else body
                absent = call(client_for(erin), method, path, missing, body, fmt, query)
                assert stranger.json() == absent.json(), where
        assert MARKER not in stranger.content.decode(errors="replace"), where
        assert ANSWER not in stranger.content.decode(errors="replace"), where

        owner = staffer if staff_route else a.owner
        body = {"file": png()} if fmt == "multipart" else body
        allowed = in_savepoint(
            lambda o=owner, m=method, p=path, bd=body, f=fmt, q=query: call(
                client_for(o), m, p, values, bd, f, q
            )
        )
        assert allowed.status_code not in (401, 403, 404), (where, allowed.content[:300])
        checked += 1
    assert checked >= 40
    assert rows() == before


def test_a_parent_of_ones_own_with_a_child_of_another_tenant_is_404(world, schema):
    """Nested routes: erin's own document / form / comment with tenant A's version, member,
    field, conflict or submission: 404, nothing changed, nothing of A in the answer."""
    a, b, _, announcement_id = world
    own, foreign = ids_of(b, announcement_id), ids_of(a, announcement_id)
    own["version"] = 5  # tenant B's document has 1 version; A's has 6
    before = rows()
    checked = 0
    for n, (method, path, operation) in enumerate(operations(schema)):
        names = path_params(path)
        children = [name for name in names[1:] if name not in NOT_TENANT_IDS]
        if path.startswith(STAFF_PREFIX) or not children:
            continue
        values = {**own, **{name: foreign[name] for name in children}}
        body, fmt = body_for(operation, schema, b, n)

        response = call(client_for(b.owner), method, path, values, body, fmt, query_for(operation))

        assert response.status_code == 404, (method, path, response.content)
        assert MARKER not in response.content.decode(errors="replace")
        checked += 1
    assert checked >= 8
    assert rows() == before


def test_list_filters_and_bodies_naming_another_tenants_objects_leak_nothing(world, schema):
    """Every operation without a path id, as erin, with tenant A's ids in every query filter
    and body field that takes one: refused (4xx), no row of A changed, nothing of A listed."""
    a, b, _, _ = world
    before = rows()
    id_filters = [
        {"thread": a.thread_id},
        {"target_kind": "document", "target_id": a.document_id},
        {"target_kind": "form", "target_id": a.form_id},
    ]
    asked = 0
    for n, (method, path, operation) in enumerate(operations(schema)):
        if path_params(path):
            continue
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        queries = [f for f in id_filters if set(f) <= names] or [{}]
        for filters in queries:
            query = "&".join(f"{k}={v}" for k, v in filters.items())
            body, fmt = body_for(operation, schema, a, n)
            response = call(client_for(b.owner), method, path, {}, body, fmt, query)

            text = response.content.decode(errors="replace")
            assert MARKER not in text and ANSWER not in text, (method, path, text[:300])
            if filters:
                assert response.status_code == 404, (method, path, query, text[:300])
                asked += 1
    assert asked >= 4
    assert changed_rows_of(a, before, rows()) == []


# --- S6: mass assignment ------------------------------------------------------------------------

INJECTED = {
    "id": 987654321,
    "pk": 987654321,
    "owner": None,  # the victim's id, filled in
    "owner_id": None,
    "author": None,
    "author_id": None,
    "user": None,
    "recipient": None,
    "actor": None,
    "tenant": 987654321,
    "is_staff": True,
    "is_superuser": True,
    "version": 987654321,
    "revision": 987654321,
    "seq": 987654321,
    "last_seq": 987654321,
    "created_at": "2001-02-03T04:05:06Z",
    "updated_at": "2001-02-03T04:05:06Z",
    "deleted_at": "2001-02-03T04:05:06Z",
    "read_at": "2001-02-03T04:05:06Z",
    "resolved_at": "2001-02-03T04:05:06Z",
    "document": 987654321,
    "form": 987654321,
    "thread": 987654321,
    "token": "injected-token",
}


def test_writes_ignore_or_refuse_fields_they_do_not_declare(world, schema):
    """Every POST/PATCH with a body, by the object's owner (staff on staff routes), with every
    field above it does not declare: 2xx or 400, and no row written holds an injected value."""
    a, _, staffer, announcement_id = world
    victim = UserFactory(username="victim")
    values = ids_of(a, announcement_id)
    checked = 0
    for n, (method, path, operation) in enumerate(operations(schema)):
        if method not in ("post", "patch") or "requestBody" not in operation:
            continue
        body, fmt = body_for(operation, schema, a, n)
        if fmt != "json":
            continue
        extra = {
            name: victim.pk if value is None else value
            for name, value in INJECTED.items()
            if name not in body
        }
        user = staffer if path.startswith(STAFF_PREFIX) else a.owner

        def attempt(user=user, method=method, path=path, body={**body, **extra}):  # noqa: B006
            before = rows()
            response = call(client_for(user), method, path, values, body, "json")
            return response, before, rows()

        response, before, after = in_savepoint(attempt)

        assert response.status_code < 300 or response.status_code in (400, 409), (
            method,
            path,
            response.content[:300],
        )
        written = [after[key] for key in after if before.get(key) != after[key]]
        for row in written:
            injected = [
                (column, value)
                for column, value in row.items()
                if (type(value) is int and value in (987654321, victim.pk) and column != "id")
                or value == "injected-token"
                or str(value).startswith("2001-02-03")
                or (column in ("is_staff", "is_superuser") and value is True)
            ]
            assert not injected, (method, path, row)
        checked += 1
    assert checked >= 15


# --- S7: permission composition -----------------------------------------------------------------


def test_no_view_composes_permissions_with_or_and():
    """DRF's ``|`` and ``&`` skip has_object_permission in ways that let objects through
    (encode/django-rest-framework#6402, #7720). No view composes them; every object route is
    tested with anonymous, another tenant and the owner above. A view that starts composing
    must be added to that test's cases before it is allowed here."""
    from django.urls import get_resolver

    composed = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
                continue
            view = getattr(pattern.callback, "cls", None)
            for permission in getattr(view, "permission_classes", []):
                if isinstance(permission, OperandHolder):
                    composed.append((prefix + str(pattern.pattern), permission))

    walk(get_resolver().url_patterns)
    assert composed == []
