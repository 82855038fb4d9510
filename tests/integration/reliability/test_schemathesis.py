"""RELIABILITY.md S8 at reduced scale: schemathesis against the OpenAPI schema drf-spectacular
serves (/schema/), in process, through Django's WSGI application on the test database.

Three runs over every operation of the schema, a few generated cases each; in all three every
answer conforms to the schema, errors included (its status is documented for the operation,
its body has that status's shape: config/schema.py documents them):

- signed in (token) as a user who owns objects of every kind, whose ids the path parameters
  are drawn from half of the time (so that cases reach real objects, not only 404s): no 5xx;
- anonymous: no 5xx, and every answer is 401 (or 404 for a path no route admits), never data;
- a second user, with the first user's ids in every path parameter: never 2xx and never the
  first user's text in the body (the S5 sweep with fixed bodies is test_security_rest.py; this
  one generates query strings and bodies).

Answers the generated cases seldom reach are fixed cases: 429 on every operation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import UserFactory
from tests.integration.reliability.test_security_ws import MARKER, Tenant, build_tenant

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

EXAMPLES = 2  # per operation and run: CI time; `make reliability`-style deeper runs can raise it
BASE_URL = "http://testserver"
# Every answer, error or not: a status the operation documents, and a body of that status's shape.
CONFORMS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture
def wsgi_app() -> Iterator[Any]:
    """Django's WSGI app inside the test's transaction: like Django's test client, it must not
    close the connection at the end of each request (which would end the transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(settings) -> Any:
    settings.ALLOWED_HOSTS = ["testserver"]
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return schemathesis.openapi.from_dict(generated)


@pytest.fixture
def tenants(settings, tmp_path) -> tuple[Tenant, Tenant]:
    settings.MEDIA_ROOT = tmp_path
    alice, dave, erin, carol = (UserFactory() for _ in range(4))
    return build_tenant(alice, dave, MARKER, ops=3), build_tenant(erin, carol, "beta-text")


def ids_of(tenant: Tenant) -> dict[str, Any]:
    return {
        "document_id": tenant.document_id,
        "thread_id": tenant.thread_id,
        "comment_id": tenant.comment_id,
        "form_id": tenant.form_id,
        "key": tenant.field_key,
        "conflict_id": tenant.conflict_id,
        "submission_id": tenant.submission_id,
        "user_id": tenant.editor.pk,
        "version": 1,
        "kind": "like",
        "room": f"document.{tenant.document_id}",
    }


def token_for(user: Any) -> dict[str, str]:
    return {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}


def operations(api_schema: Any) -> list[Any]:
    return [result.ok() for result in api_schema.get_all_operations()]


def run(
    operation: Any, check: Any, *, ids: dict[str, Any] | None = None, always: bool = False
) -> None:
    """``check(case)`` on EXAMPLES generated cases of the operation; with ``ids``, its path
    parameters are those ids (when given for every parameter) half of the time or always."""
    names = re.findall(r"{(\w+)}", operation.path)
    real: st.SearchStrategy[dict[str, Any] | None] = st.just(None)
    if ids is not None and names and all(name in ids for name in names):
        chosen = st.just({name: ids[name] for name in names})
        real = chosen if always else st.none() | chosen

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the case is shown as found
    )
    @given(case=operation.as_strategy(), path=real)
    def each(case: Any, path: dict[str, Any] | None) -> None:
        if path is not None:
            case.path_parameters = {**(case.path_parameters or {}), **path}
        check(case)

    each()


def failures_of(operation: Any, check: Any, **options: Any) -> list[str]:
    """What ``run`` found wrong with one operation, shrunk, as text (empty when nothing)."""
    try:
        run(operation, check, **options)
    except Exception as error:  # a FailureGroup or an AssertionError, with the case in its notes
        notes = "\n".join(getattr(error, "__notes__", []))
        return [f"{operation.method.upper()} {operation.path}: {error}\n{notes}"[:1500]]
    return []


def test_signed_in_no_server_errors_and_answers_conform(api_schema, wsgi_app, tenants):
    headers = token_for(tenants[0].owner)

    def check(case: Any) -> None:
        response = case.call(app=wsgi_app, base_url=BASE_URL, headers=headers)
        case.validate_response(response, checks=CONFORMS)

    found = []
    for operation in operations(api_schema):
        found += failures_of(operation, check, ids=ids_of(tenants[0]))
    assert found == [], "\n\n".join(found)


def test_a_limit_past_bigint_is_cut_not_a_server_error(api_schema, wsgi_app, tenants):
    # Found by the run above (GET /api/collab/documents/?limit=125851898896915674169344 was a
    # DataError, "bigint out of range"); kept as a fixed case, since the run draws it rarely.
    headers = token_for(tenants[0].owner)
    paged = [
        op
        for op in operations(api_schema)
        if op.method == "get" and any(p.name == "limit" for p in op.query)
    ]
    assert paged
    for operation in paged:
        names = re.findall(r"{(\w+)}", operation.path)
        case = operation.Case(
            path_parameters={name: ids_of(tenants[0])[name] for name in names},
            query={"limit": 2**80},
        )
        response = case.call(app=wsgi_app, base_url=BASE_URL, headers=headers)
        assert response.status_code < 500, (operation.path, response.text[:300])


def test_every_operation_answers_429_as_documented(api_schema, wsgi_app, tenants, settings):
    # Throttles run before the view reads the request, so with one request an hour the second
    # one is a 429 whatever it asks, on every operation: the generated runs never get there.
    # A superuser, since staff-only permissions are checked before throttles (403 otherwise).
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(rates, "1/h"),
    }
    headers = token_for(UserFactory(is_staff=True, is_superuser=True))
    ids = ids_of(tenants[0])
    found = []
    for operation in operations(api_schema):
        names = re.findall(r"{(\w+)}", operation.path)
        case = operation.Case(path_parameters={name: ids.get(name, 1) for name in names})
        case.call(app=wsgi_app, base_url=BASE_URL, headers=headers)
        response = case.call(app=wsgi_app, base_url=BASE_URL, headers=headers)
        label = f"{operation.method.upper()} {operation.path}"
        if response.status_code != 429:
            found.append(f"{label}: {response.status_code} {response.text[:200]}")
            continue
        try:
            case.validate_response(response, checks=CONFORMS)
        except Exception as error:
            found.append(f"{label}: {error}"[:1500])
    assert found == [], "\n\n".join(found)


def test_anonymous_no_server_errors_and_no_data(api_schema, wsgi_app, tenants):
    def check(case: Any) -> None:
        response = case.call(app=wsgi_app, base_url=BASE_URL)
        case.validate_response(response, checks=CONFORMS)
        # 404: a path whose id no route admits (past bigint) is no endpoint, before any auth.
        # Never 403: without a session there is no CSRF check, and permissions beyond "signed
        # in" are asked only of a signed-in user.
        assert response.status_code in (401, 404), (response.status_code, response.text[:300])
        assert MARKER not in response.text

    found = []
    for operation in operations(api_schema):
        found += failures_of(operation, check, ids=ids_of(tenants[0]))
    assert found == [], "\n\n".join(found)


def test_another_user_gets_nothing_of_the_first_by_id(api_schema, wsgi_app, tenants):
    owner, intruder = tenants
    headers = token_for(intruder.owner)
    foreign = ids_of(owner)
    # Path parameters that name no object of the owner, or one anyone may name.
    foreign.pop("kind")
    foreign.pop("version")

    def check(case: Any) -> None:
        response = case.call(app=wsgi_app, base_url=BASE_URL, headers=headers)
        case.validate_response(response, checks=CONFORMS)
        assert not 200 <= response.status_code < 300, (response.status_code, response.text[:300])
        assert MARKER not in response.text, response.text[:300]

    with_ids = [
        op
        for op in operations(api_schema)
        if re.findall(r"{(\w+)}", op.path)
        and all(name in foreign for name in re.findall(r"{(\w+)}", op.path))
        and not op.path.startswith("/api/monitoring/")  # staff routes: 403 to everyone else
    ]
    assert len(with_ids) > 20
    found = []
    for operation in with_ids:
        found += failures_of(operation, check, ids=foreign, always=True)
    assert found == [], "\n\n".join(found)
