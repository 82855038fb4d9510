"""REST for building a form: its fields, its change history, and the conflicts the manual
policy opens. Every change is one revision of the form, made by the same services as over the
builders' socket, and answers what that socket's ack holds (``base.change_body``)."""

from __future__ import annotations

from django.db.models import prefetch_related_objects
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from forms_live.models import FieldConflict
from forms_live.permissions import can_build, can_view
from forms_live.selectors import (
    changes_between,
    conflict_payload,
    field_payload,
    fields_of,
    form_for_user,
    user_ref,
)
from forms_live.serializers import (
    MAX_CHANGES_PAGE,
    ChangeOutputSerializer,
    ConflictOutputSerializer,
    ConflictQuerySerializer,
    ConflictResolveInputSerializer,
    FieldChangeInputSerializer,
    FieldInputSerializer,
    FieldListOutputSerializer,
    FieldMoveInputSerializer,
    FieldRemoveQuerySerializer,
    FormChangeQuerySerializer,
    FormChangeRangeOutputSerializer,
)
from forms_live.services import (
    conflict_resolve,
    field_add,
    field_change,
    field_move,
    field_remove,
)
from forms_live.views.base import CONFLICT_ID, FIELD_KEY, FORM_ID, FormsViewSet, change_body

KEY_AGAIN = "The same `client_msg_id` again answers the original change, with `duplicate: true`."


class FieldViewSet(FormsViewSet):
    """A form's fields, in order: every member reads them; owners and editors change them."""

    # One answer with every field (at most 200) and the revision: not pages. Without this the
    # schema described offset pages for list (found by schemathesis).
    pagination_class = None

    inputs = {
        "create": FieldInputSerializer,
        "partial_update": FieldChangeInputSerializer,
        "move": FieldMoveInputSerializer,
        "destroy": FieldRemoveQuerySerializer,
    }
    writes = frozenset({"create", "partial_update", "move", "destroy"})

    @extend_schema(
        parameters=[FORM_ID],
        responses={200: FieldListOutputSerializer},
        description="All of them (a form holds at most 200), with the revision they are at.",
    )
    def list(self, request: Request, form_id: int) -> Response:
        form, _ = form_for_user(user=request.user, form_id=form_id, need=can_view)
        fields = [field_payload(field) for field in fields_of(form.pk)]
        return Response({"revision": form.revision, "results": fields})

    @extend_schema(
        parameters=[FORM_ID],
        request=FieldInputSerializer,
        responses={201: ChangeOutputSerializer, 200: ChangeOutputSerializer},
        description=f"Add a field at `position` (default: the end). 200: {KEY_AGAIN}",
    )
    def create(self, request: Request, form_id: int) -> Response:
        result = field_add(user=request.user, form_id=form_id, **self.valid(request.data))
        return Response(change_body(result), status=200 if result.duplicate else 201)

    @extend_schema(
        parameters=[FORM_ID, FIELD_KEY],
        request=FieldChangeInputSerializer,
        responses={200: ChangeOutputSerializer},
        description="Change one property. When someone changed it since `base_revision`, the "
        "form's policy decides: lww (this change wins), merge (text and options keep both "
        "changes), manual (`outcome: conflict`, the current value stays, a conflict opens). "
        + KEY_AGAIN,
    )
    def partial_update(self, request: Request, form_id: int, key: str) -> Response:
        data = self.valid(request.data)
        result = field_change(user=request.user, form_id=form_id, key=key, **data)
        return Response(change_body(result))

    @extend_schema(
        parameters=[FORM_ID, FIELD_KEY],
        request=FieldMoveInputSerializer,
        responses={200: ChangeOutputSerializer},
        description=f"Concurrent moves: the later one decides the order. {KEY_AGAIN}",
    )
    def move(self, request: Request, form_id: int, key: str) -> Response:
        data = self.valid(request.data)
        result = field_move(user=request.user, form_id=form_id, key=key, **data)
        return Response(change_body(result))

    @extend_schema(
        parameters=[FORM_ID, FIELD_KEY, FieldRemoveQuerySerializer],
        responses={200: ChangeOutputSerializer},
        description="`base_revision` and `client_msg_id` in the query: DELETE bodies are "
        "dropped by some clients and proxies. Values already given stay in submissions. "
        + KEY_AGAIN,
    )
    def destroy(self, request: Request, form_id: int, key: str) -> Response:
        data = self.valid(request.query_params)
        result = field_remove(user=request.user, form_id=form_id, key=key, **data)
        return Response(change_body(result))


class FormChangeViewSet(FormsViewSet):
    """A form's builder changes by revision, as its builders' socket got them: resume by REST.
    Not ``list``: its pages are revision ranges, not the project's offset pages."""

    inputs = {"history": FormChangeQuerySerializer}

    @extend_schema(
        parameters=[FORM_ID, FormChangeQuerySerializer],
        responses={200: FormChangeRangeOutputSerializer},
    )
    def history(self, request: Request, form_id: int) -> Response:
        form, _ = form_for_user(user=request.user, form_id=form_id, need=can_view)
        since, current = self.valid(request.query_params)["since"], form.revision
        if since > current:
            raise serializers.ValidationError({"since": f"This form has revisions 0 to {current}."})
        upto = min(current, since + MAX_CHANGES_PAGE)
        changes = changes_between(form_id=form.pk, after=since, upto=upto)
        # changes_between leaves the authors out: one query for all of them, not one per row.
        prefetch_related_objects(changes, "author")
        results = [
            {
                "revision": change.revision,
                "type": change.type,
                "data": change.data,
                "author": user_ref(change.author),
                "created_at": change.created_at.isoformat(),
            }
            for change in changes
        ]
        more = upto < current
        return Response(
            {"from": since, "to": upto, "revision": current, "more": more, "results": results}
        )


class ConflictViewSet(FormsViewSet):
    """The conflicts the manual policy opened, newest first; owners and editors settle them."""

    inputs = {"list": ConflictQuerySerializer, "resolve": ConflictResolveInputSerializer}
    writes = frozenset({"resolve"})

    @extend_schema(
        parameters=[FORM_ID, ConflictQuerySerializer],
        responses={200: ConflictOutputSerializer(many=True)},
        description="Owners and editors.",
    )
    def list(self, request: Request, form_id: int) -> Response:
        form, _ = form_for_user(user=request.user, form_id=form_id, need=can_build)
        wanted = self.valid(request.query_params)["status"]
        conflicts = FieldConflict.objects.filter(form=form).select_related(
            "field", "current_by", "proposed_by", "resolved_by"
        )
        if wanted is not None:
            conflicts = conflicts.filter(status=wanted)
        page = self.paginate_queryset(conflicts)
        return self.get_paginated_response([conflict_payload(c) for c in page])  # type: ignore[union-attr]

    @extend_schema(
        parameters=[FORM_ID, CONFLICT_ID],
        request=ConflictResolveInputSerializer,
        responses={200: ChangeOutputSerializer},
        description="Owners and editors: keep the `current` value, take the `proposed` one, or "
        f"set a `custom` `value`. A resolved conflict is a conflict (409). {KEY_AGAIN}",
    )
    def resolve(self, request: Request, form_id: int, conflict_id: int) -> Response:
        data = self.valid(request.data)
        result = conflict_resolve(
            user=request.user, form_id=form_id, conflict_id=conflict_id, **data
        )
        return Response(change_body(result), status=status.HTTP_200_OK)
