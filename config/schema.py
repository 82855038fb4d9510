"""The error answers of the REST API in its OpenAPI schema, in one place (RELIABILITY.md S8).

Every operation documents, next to its success, the error statuses it can really give, each
with the one error envelope (``ErrorResponse``, ``{"error": Error}``, built by
``config.api.exception_handler`` and ``config.api.not_found``):

    REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "config.schema.AutoSchema"
    # GET /api/collab/documents/{document_id}/ -> 200, 401, 404, 429, 503

Most statuses follow from the view (``_derived``); what only a service or a selector decides
(a 409, a 403 for a role on a read) is listed by route in ``ROUTE_ERRORS``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import permissions
from rest_framework.authentication import SessionAuthentication

from config.errors import ErrorCode

# A component of its own, so that drf-spectacular's enum hook does not name it "CodeEnum".
ERROR_CODE = {
    "type": "string",
    "enum": [code.value for code in ErrorCode],
    "description": "Stable: clients branch on it, never on `message` (config.errors).",
}
ERROR = {
    "type": "object",
    "description": "The same object a WebSocket error frame carries.",
    "properties": {
        "code": {"$ref": "#/components/schemas/ErrorCode"},
        "message": {"type": "string", "description": "Safe to show; may change."},
        "retry": {
            "type": "boolean",
            "description": "Whether the same request may succeed later.",
        },
        "details": {
            "type": "object",
            "additionalProperties": True,
            "description": "What was wrong, for some codes: `fields` (field -> messages) "
            "for `invalid` input.",
        },
        "retry_after": {
            "type": "number",
            "minimum": 0,
            "description": "Seconds to wait before retrying, for `rate_limited`.",
        },
    },
    "required": ["code", "message", "retry"],
    "additionalProperties": False,
}
ERROR_RESPONSE = {
    "type": "object",
    "properties": {"error": {"$ref": "#/components/schemas/Error"}},
    "required": ["error"],
    "additionalProperties": False,
}
_SCHEMAS = {"ErrorCode": ERROR_CODE, "Error": ERROR, "ErrorResponse": ERROR_RESPONSE}

# Status -> (response component name, what it means here). The codes are those REST answers
# with (config.api maps DRF's exceptions onto them).
_RESPONSES = {
    400: (
        "BadRequest",
        "The body, a query parameter or a path value is not what the route takes: "
        "`invalid` (`error.details.fields` names the fields; also a body of another media "
        "type), `bad_json`, `too_deep`.",
    ),
    401: ("Unauthenticated", "No valid session or token: `unauthenticated`."),
    403: (
        "Forbidden",
        "Signed in but not allowed: a role too low for the action, a staff route, or a "
        "session-cookie write without its CSRF token: `forbidden`.",
    ),
    404: (
        "NotFound",
        "No such object, or one the caller may not see (the same answer); also a path value "
        "no route admits: `not_found`.",
    ),
    409: ("Conflict", "The object's state does not allow this now: `conflict`."),
    413: ("TooLarge", "The body, or a value or file in it, is over its limit: `too_large`."),
    429: (
        "RateLimited",
        "Over a rate limit: `rate_limited`; `Retry-After` and `error.retry_after` say when "
        "to try again.",
    ),
    503: (
        "Unavailable",
        "PostgreSQL or Redis is unavailable: `unavailable`, `retry: true`; send the same "
        "request again shortly.",
    ),
}
_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "required": True,
            "description": 'The token scheme: `Token realm="api"`.',
        }
    },
    429: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 1},
            "description": "Whole seconds to wait, rounded up.",
        }
    },
}

# What the view cannot tell: statuses that only a service or selector gives, by operation.
ROUTE_ERRORS: dict[str, frozenset[int]] = {
    # member_upsert / member_delete (config.members): an object keeps one owner.
    "POST /api/collab/documents/{document_id}/members/": frozenset({409}),
    "DELETE /api/collab/documents/{document_id}/members/{user_id}/": frozenset({409}),
    # The old text goes through the document size check again (COLLAB_MAX_DOCUMENT_CHARS may
    # have been lowered since).
    "POST /api/collab/documents/{document_id}/versions/{version}/restore/": frozenset({413}),
    # The thread or target named in the query or body (404); an anchor at a version older
    # than the kept history (409).
    "GET /api/comments/comments/": frozenset({404}),
    "POST /api/comments/comments/": frozenset({404}),
    "GET /api/comments/threads/": frozenset({404}),
    "POST /api/comments/threads/": frozenset({404, 409}),
    # Path id 0: the route admits it, the services' id check does not (400). A deleted or
    # hidden comment takes no edits, reactions or files (409).
    "PATCH /api/comments/comments/{comment_id}/": frozenset({409}),
    "DELETE /api/comments/comments/{comment_id}/": frozenset({400}),
    "POST /api/comments/comments/{comment_id}/attachments/": frozenset({409}),
    "POST /api/comments/comments/{comment_id}/reactions/": frozenset({409}),
    "DELETE /api/comments/comments/{comment_id}/reactions/{kind}/": frozenset({400, 409}),
    "POST /api/comments/threads/{thread_id}/resolve/": frozenset({400}),
    "POST /api/comments/threads/{thread_id}/reopen/": frozenset({400}),
    # Builder changes: a base revision past the form's, a key taken, a field that did not
    # exist at the base, a resolved conflict, anonymity once answered; one owner kept.
    "PATCH /api/forms/{form_id}/": frozenset({409}),
    "POST /api/forms/{form_id}/fields/": frozenset({409}),
    "PATCH /api/forms/{form_id}/fields/{key}/": frozenset({409}),
    "DELETE /api/forms/{form_id}/fields/{key}/": frozenset({409}),
    "POST /api/forms/{form_id}/fields/{key}/move/": frozenset({409}),
    "POST /api/forms/{form_id}/conflicts/{conflict_id}/resolve/": frozenset({409}),
    "POST /api/forms/{form_id}/members/": frozenset({409}),
    "DELETE /api/forms/{form_id}/members/{user_id}/": frozenset({409}),
    "POST /api/forms/{form_id}/submissions/{submission_id}/status/": frozenset({409}),
    # Reads for owners and editors only (can_build): a viewer gets 403.
    "GET /api/forms/{form_id}/analytics/": frozenset({403}),
    "GET /api/forms/{form_id}/conflicts/": frozenset({403}),
    "GET /api/forms/{form_id}/submissions/": frozenset({403}),
    "GET /api/forms/{form_id}/submissions/{submission_id}/": frozenset({403}),
    "GET /api/forms/{form_id}/submissions/export/": frozenset({403}),
    # A malformed room name (presence.rooms.parse_room).
    "GET /api/presence/rooms/{room}/": frozenset({400}),
}

# Permissions that refuse only the anonymous (401); any other may refuse a signed-in user (403).
_AUTH_ONLY = (
    permissions.AllowAny,
    permissions.IsAuthenticated,
    permissions.IsAuthenticatedOrReadOnly,
)


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's, with every operation's error answers (module docstring)."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):  # type: ignore[no-untyped-def]
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        statuses = _derived(self.view, self.method, operation)
        statuses |= ROUTE_ERRORS.get(f"{self.method} {path}", frozenset())
        for status in sorted(statuses):
            operation["responses"].setdefault(str(status), self._error_response(status))
        return operation

    def _error_response(self, status: int) -> dict[str, Any]:
        for name, schema in _SCHEMAS.items():
            self.registry.register_on_missing(
                ResolvedComponent(name, ResolvedComponent.SCHEMA, schema=schema, object=name)
            )
        name, description = _RESPONSES[status]
        response: dict[str, Any] = {
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            },
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        component = ResolvedComponent(
            name, ResolvedComponent.RESPONSE, schema=response, object=name
        )
        self.registry.register_on_missing(component)
        return component.ref


def _derived(view: Any, method: str, operation: dict[str, Any]) -> set[int]:
    """The statuses that follow from how the view is built, whatever its services do."""
    statuses = set()
    security = operation.get("security", [])
    if security:
        # Authentication reads PostgreSQL (tokens, sessions) on every request.
        statuses.add(503)
        if {} not in security:
            statuses.add(401)
    if view.get_throttles():
        statuses.add(429)  # throttles run after authentication: signed-in callers only
    if "requestBody" in operation:
        statuses |= {400, 413}  # parse errors, validation; DATA_UPLOAD_MAX_MEMORY_SIZE
    paginator = getattr(view, "paginator", None)
    # Bad limit/offset values fall back to the defaults: they are never a 400.
    paging = (
        {p["name"] for p in paginator.get_schema_operation_parameters(view)} if paginator else set()
    )
    parameters = operation.get("parameters", [])
    if any(p["in"] == "query" and p["name"] not in paging for p in parameters):
        statuses.add(400)
    if any(p["in"] == "path" for p in parameters):
        statuses.add(404)  # no such object, or a value the route's converter refuses
    unsafe = method not in permissions.SAFE_METHODS
    if unsafe and any(isinstance(a, SessionAuthentication) for a in view.get_authenticators()):
        statuses.add(403)  # DRF checks CSRF for writes made with the session cookie
    if any(not isinstance(p, _AUTH_ONLY) for p in view.get_permissions()):
        statuses.add(403)
    return statuses
