"""REST for documents: the documents, their members, their op history and their versions.

Every route takes the document through ``document_for_user`` or a service that does: a document
the caller is not a member of answers 404, as one that does not exist; a role too low answers
403. Edits made here commit and broadcast exactly as edits made over the WebSocket do.
"""

from __future__ import annotations

from django.db.models import F
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from collab.models import Document, Role
from collab.permissions import can_view
from collab.selectors import (
    content_at,
    document_for_user,
    documents_for_user,
    op_applied_data,
    operations_between,
)
from collab.serializers import (
    MAX_OPERATIONS_PAGE,
    DocumentDetailOutputSerializer,
    DocumentInputSerializer,
    DocumentMemberInputSerializer,
    DocumentMemberOutputSerializer,
    DocumentOutputSerializer,
    DocumentUpdateInputSerializer,
    DocumentVersionInputSerializer,
    DocumentVersionOutputSerializer,
    OperationRangeOutputSerializer,
    OperationRangeQuerySerializer,
    VersionContentOutputSerializer,
    VersionRestoreOutputSerializer,
)
from collab.services import (
    document_create,
    document_delete,
    document_update,
    member_remove,
    member_set,
    version_create,
    version_restore,
)
from config.rest import ServiceViewSet

# The URLs' converter admits 0 to 2**63 - 1; without these the schema would call them strings.
DOCUMENT_ID = OpenApiParameter("document_id", int, OpenApiParameter.PATH)
USER_ID = OpenApiParameter("user_id", int, OpenApiParameter.PATH)
VERSION = OpenApiParameter("version", int, OpenApiParameter.PATH, description="A version number.")


def _with_role(document: Document, role: str) -> Document:
    document.role = role  # type: ignore[attr-defined]
    return document


class CollabViewSet(ServiceViewSet):
    """Document routes: every action takes the document through ``document_for_user``."""


class DocumentViewSet(CollabViewSet):
    """The caller's documents: list and create; read, rename (owner) and delete (owner)."""

    inputs = {"create": DocumentInputSerializer, "partial_update": DocumentUpdateInputSerializer}

    @extend_schema(responses={200: DocumentOutputSerializer(many=True)})
    def list(self, request: Request) -> Response:
        # The join that picks the caller's memberships also carries their role: one query.
        documents = (
            documents_for_user(user=request.user).annotate(role=F("members__role")).defer("content")
        )
        page = self.paginate_queryset(documents)
        return self.get_paginated_response(DocumentOutputSerializer(page, many=True).data)

    @extend_schema(request=DocumentInputSerializer, responses={201: DocumentDetailOutputSerializer})
    def create(self, request: Request) -> Response:
        data = self.valid(request.data)
        document = document_create(owner=request.user, title=data["title"], content=data["content"])
        body = DocumentDetailOutputSerializer(_with_role(document, Role.OWNER)).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[DOCUMENT_ID], responses={200: DocumentDetailOutputSerializer})
    def retrieve(self, request: Request, document_id: int) -> Response:
        document, role = document_for_user(user=request.user, document_id=document_id)
        return Response(DocumentDetailOutputSerializer(_with_role(document, role)).data)

    @extend_schema(
        parameters=[DOCUMENT_ID],
        request=DocumentUpdateInputSerializer,
        responses={200: DocumentDetailOutputSerializer},
    )
    def partial_update(self, request: Request, document_id: int) -> Response:
        data = self.valid(request.data)
        document = document_update(user=request.user, document_id=document_id, title=data["title"])
        # document_update lets only owners (can_manage) through.
        return Response(DocumentDetailOutputSerializer(_with_role(document, Role.OWNER)).data)

    @extend_schema(parameters=[DOCUMENT_ID], responses={204: None})
    def destroy(self, request: Request, document_id: int) -> Response:
        document_delete(user=request.user, document_id=document_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentMemberViewSet(CollabViewSet):
    """Who may see a document and with what role; the owner adds, changes and removes them."""

    inputs = {"create": DocumentMemberInputSerializer}

    @extend_schema(
        parameters=[DOCUMENT_ID], responses={200: DocumentMemberOutputSerializer(many=True)}
    )
    def list(self, request: Request, document_id: int) -> Response:
        document, _ = document_for_user(user=request.user, document_id=document_id)
        page = self.paginate_queryset(document.members.select_related("user"))
        return self.get_paginated_response(DocumentMemberOutputSerializer(page, many=True).data)

    @extend_schema(
        parameters=[DOCUMENT_ID],
        request=DocumentMemberInputSerializer,
        responses={200: DocumentMemberOutputSerializer},
        description="Add a member, or change a member's role. Owner only.",
    )
    def create(self, request: Request, document_id: int) -> Response:
        data = self.valid(request.data)
        member = member_set(
            user=request.user, document_id=document_id, member_id=data["user_id"], role=data["role"]
        )
        return Response(DocumentMemberOutputSerializer(member).data)

    @extend_schema(parameters=[DOCUMENT_ID, USER_ID], responses={204: None})
    def destroy(self, request: Request, document_id: int, user_id: int) -> Response:
        member_remove(user=request.user, document_id=document_id, member_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OperationViewSet(CollabViewSet):
    """The committed ops of a document by version range, as ``collab.op.applied`` carries them.
    Not ``list``: its pages are version ranges, not the project's offset pages."""

    inputs = {"history": OperationRangeQuerySerializer}

    @extend_schema(
        parameters=[DOCUMENT_ID, OperationRangeQuerySerializer],
        responses={200: OperationRangeOutputSerializer},
    )
    def history(self, request: Request, document_id: int) -> Response:
        document, _ = document_for_user(user=request.user, document_id=document_id)
        query = self.valid(request.query_params, current=document)
        after, asked = query["from"], query["to"]
        upto = min(asked, after + MAX_OPERATIONS_PAGE)
        operations = operations_between(document_id=document.pk, after=after, upto=upto)
        return Response(
            {
                "from": after,
                "to": upto,
                "version": document.version,
                "more": upto < asked,
                "results": [op_applied_data(operation) for operation in operations],
            }
        )


class DocumentVersionViewSet(CollabViewSet):
    """Saved versions (named ones and periodic snapshots), text at any version, restore."""

    inputs = {"create": DocumentVersionInputSerializer}

    @extend_schema(
        parameters=[DOCUMENT_ID], responses={200: DocumentVersionOutputSerializer(many=True)}
    )
    def list(self, request: Request, document_id: int) -> Response:
        document, _ = document_for_user(user=request.user, document_id=document_id)
        versions = document.versions.select_related("created_by").defer("content")
        page = self.paginate_queryset(versions)
        return self.get_paginated_response(DocumentVersionOutputSerializer(page, many=True).data)

    @extend_schema(
        parameters=[DOCUMENT_ID],
        request=DocumentVersionInputSerializer,
        responses={201: DocumentVersionOutputSerializer},
        description="Name the current text. Editors and owners.",
    )
    def create(self, request: Request, document_id: int) -> Response:
        data = self.valid(request.data)
        saved = version_create(user=request.user, document_id=document_id, name=data["name"])
        body = DocumentVersionOutputSerializer(saved).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[DOCUMENT_ID, VERSION], responses={200: VersionContentOutputSerializer}
    )
    def content(self, request: Request, document_id: int, version: int) -> Response:
        document, _ = document_for_user(user=request.user, document_id=document_id, need=can_view)
        text = content_at(document=document, version=version)
        return Response({"version": version, "content": text})

    @extend_schema(
        parameters=[DOCUMENT_ID, VERSION],
        request=None,
        responses={200: VersionRestoreOutputSerializer},
        description="Bring back the text of a version as a new op. Editors and owners.",
    )
    def restore(self, request: Request, document_id: int, version: int) -> Response:
        result = version_restore(user=request.user, document_id=document_id, version=version)
        return Response({"version": result.version})
