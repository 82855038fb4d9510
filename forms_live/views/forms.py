"""REST for forms and their members: list, create, read, change, delete; who builds them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from forms_live.models import Role
from forms_live.permissions import can_view
from forms_live.selectors import fields_of, form_for_user, form_payload, forms_for_user
from forms_live.serializers import (
    ChangeOutputSerializer,
    FormChangeInputSerializer,
    FormDetailOutputSerializer,
    FormInputSerializer,
    FormMemberInputSerializer,
    FormMemberOutputSerializer,
    FormOutputSerializer,
)
from forms_live.services import form_change, form_create, form_delete, member_remove, member_set
from forms_live.views.base import FORM_ID, USER_ID, FormsViewSet, change_body


class FormViewSet(FormsViewSet):
    """The caller's forms: list and create; read, change one property at a time, delete."""

    inputs = {"create": FormInputSerializer, "partial_update": FormChangeInputSerializer}
    writes = frozenset({"create", "partial_update", "destroy"})

    @extend_schema(responses={200: FormOutputSerializer(many=True)})
    def list(self, request: Request) -> Response:
        # The join that picks the caller's memberships also carries their role: one query.
        page = self.paginate_queryset(forms_for_user(user=request.user))
        rows = [{**form_payload(form), "role": form.role} for form in page]  # type: ignore[union-attr]
        return self.get_paginated_response(rows)

    @extend_schema(request=FormInputSerializer, responses={201: FormDetailOutputSerializer})
    def create(self, request: Request) -> Response:
        form = form_create(owner=request.user, **self.valid(request.data))
        body = {**form_payload(form, []), "role": Role.OWNER}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[FORM_ID], responses={200: FormDetailOutputSerializer})
    def retrieve(self, request: Request, form_id: int) -> Response:
        form, role = form_for_user(user=request.user, form_id=form_id, need=can_view)
        return Response({**form_payload(form, fields_of(form.pk)), "role": role})

    @extend_schema(
        parameters=[FORM_ID],
        request=FormChangeInputSerializer,
        responses={200: ChangeOutputSerializer},
        description="One property per request, as the builders' socket changes it: `title` "
        "(editors and owners); `status`, `conflict_policy`, `anonymous` (owners). The same "
        "`client_msg_id` again answers the original change, with `duplicate: true`.",
    )
    def partial_update(self, request: Request, form_id: int) -> Response:
        result = form_change(user=request.user, form_id=form_id, **self.valid(request.data))
        return Response(change_body(result))

    @extend_schema(
        parameters=[FORM_ID],
        responses={204: None},
        description="Owners. Its fields, changes, submissions and comment threads go with it.",
    )
    def destroy(self, request: Request, form_id: int) -> Response:
        form_delete(user=request.user, form_id=form_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FormMemberViewSet(FormsViewSet):
    """Who builds or watches a form and with what role; the owner adds, changes and removes
    them. Respondents are no members: anyone signed in fills a published form."""

    inputs = {"create": FormMemberInputSerializer}
    writes = frozenset({"create", "destroy"})

    @extend_schema(parameters=[FORM_ID], responses={200: FormMemberOutputSerializer(many=True)})
    def list(self, request: Request, form_id: int) -> Response:
        form, _ = form_for_user(user=request.user, form_id=form_id, need=can_view)
        page = self.paginate_queryset(form.members.select_related("user"))
        return self.get_paginated_response(FormMemberOutputSerializer(page, many=True).data)

    @extend_schema(
        parameters=[FORM_ID],
        request=FormMemberInputSerializer,
        responses={200: FormMemberOutputSerializer},
        description="Add a member, or change a member's role. Owners. A form keeps one owner.",
    )
    def create(self, request: Request, form_id: int) -> Response:
        data = self.valid(request.data)
        member = member_set(
            user=request.user, form_id=form_id, member_id=data["user_id"], role=data["role"]
        )
        return Response(FormMemberOutputSerializer(member).data)

    @extend_schema(
        parameters=[FORM_ID, USER_ID],
        responses={204: None},
        description="Owners. Removing the last owner is a conflict.",
    )
    def destroy(self, request: Request, form_id: int, user_id: int) -> Response:
        member_remove(user=request.user, form_id=form_id, member_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
