"""The error answers in the OpenAPI schema (config/schema.py): every operation documents the
statuses it can give, each with the one error envelope. Whether the answers really match is
tests/integration/reliability/test_schemathesis.py's job; this checks the schema's own shape."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from config.errors import ErrorCode
from config.schema import ROUTE_ERRORS

pytestmark = pytest.mark.django_db  # the URLconf imports models


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }


def error_statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"] if int(status) >= 400}


def test_the_schema_is_valid_openapi(schema):
    validate_schema(schema)


def test_every_route_in_the_table_is_an_operation_of_the_schema(schema):
    # A renamed route would otherwise lose its 409s without a word.
    assert set(ROUTE_ERRORS) <= set(operations(schema))


def test_every_operation_documents_401_429_and_503_and_never_500(schema):
    for name, operation in operations(schema).items():
        assert {401, 429, 503} <= error_statuses(operation), name
        assert "500" not in operation["responses"], name


def test_what_the_view_tells_is_documented(schema):
    for name, operation in operations(schema).items():
        statuses = error_statuses(operation)
        parameters = operation.get("parameters", [])
        if "requestBody" in operation:
            assert {400, 403, 413} <= statuses, name  # 403: CSRF with the session cookie
        if any(p["in"] == "path" for p in parameters):
            assert 404 in statuses, name
        if name.startswith("GET "):
            assert 413 not in statuses, name  # no body is read


def test_pagination_alone_is_no_reason_for_a_400(schema):
    # Bad limit/offset values fall back to the defaults (DRF's LimitOffsetPagination).
    documents = operations(schema)["GET /api/collab/documents/"]
    assert error_statuses(documents) == {401, 429, 503}


def test_table_entries_and_staff_routes_are_documented(schema):
    by_name = operations(schema)
    for name, statuses in ROUTE_ERRORS.items():
        assert statuses <= error_statuses(by_name[name]), name
    assert 403 in error_statuses(by_name["GET /api/monitoring/connections/"])
    # Announcements are read by anyone signed in: no 403 there.
    assert 403 not in error_statuses(by_name["GET /api/monitoring/announcements/"])


def test_every_error_answer_is_the_one_envelope(schema):
    components = schema["components"]
    for name, operation in operations(schema).items():
        for status in error_statuses(operation):
            ref = operation["responses"][str(status)]["$ref"]
            response = components["responses"][ref.rsplit("/", 1)[1]]
            body = response["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorResponse"}, (name, status)
    error = components["schemas"]["Error"]
    assert set(error["required"]) == {"code", "message", "retry"}
    assert components["schemas"]["ErrorCode"]["enum"] == [code.value for code in ErrorCode]
    assert "Retry-After" in components["responses"]["RateLimited"]["headers"]
