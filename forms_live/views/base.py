"""What the forms viewsets share: their base class (input serializers by action, the write
throttle), the path parameters of the schema, and the body of a builder change.

    class FieldViewSet(FormsViewSet):
        inputs = {"create": FieldInputSerializer}  # self.valid(request.data) checks with it
        writes = frozenset({"create"})             # these also count against forms_write
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter

from config.api import SharedRateThrottle
from config.rest import ServiceViewSet
from forms_live.services import ChangeResult

# The URLs' converters admit 0 to 2**63 - 1 and field keys; without these the schema would call
# the ids strings.
FORM_ID = OpenApiParameter("form_id", int, OpenApiParameter.PATH)
USER_ID = OpenApiParameter("user_id", int, OpenApiParameter.PATH)
CONFLICT_ID = OpenApiParameter("conflict_id", int, OpenApiParameter.PATH)
SUBMISSION_ID = OpenApiParameter("submission_id", int, OpenApiParameter.PATH)
FIELD_KEY = OpenApiParameter("key", str, OpenApiParameter.PATH, description="A field's key.")


class FormWriteThrottle(SharedRateThrottle):
    """Every write to forms over REST, counted together per user, on top of the default."""

    scope = "forms_write"


class FormsViewSet(ServiceViewSet):
    """Forms routes: writes also count against the shared ``forms_write`` rate."""

    write_throttle = FormWriteThrottle


def change_body(result: ChangeResult) -> dict[str, Any]:
    """A builder change as REST answers it: the socket's ack, with the outcome beside it."""
    return {
        "data": result.data,
        "revision": result.revision,
        "outcome": result.outcome,
        "duplicate": result.duplicate,
    }
