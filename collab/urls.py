"""REST routes of documents (DESIGN section 4), mounted at ``/api/collab/``."""

from __future__ import annotations

from django.urls import path, register_converter

from collab.serializers import MAX_ID
from collab.views import (
    DocumentMemberViewSet,
    DocumentVersionViewSet,
    DocumentViewSet,
    OperationViewSet,
)


class IdConverter:
    """0 to 2**63 - 1. A larger number is no route, so a 404, never a bigint error as a 500."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "collab_id")

DOCUMENT = "documents/<collab_id:document_id>/"

urlpatterns = [
    path(
        "documents/",
        DocumentViewSet.as_view({"get": "list", "post": "create"}),
        name="collab-documents",
    ),
    path(
        DOCUMENT,
        DocumentViewSet.as_view(
            {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
        ),
        name="collab-document",
    ),
    path(
        f"{DOCUMENT}members/",
        DocumentMemberViewSet.as_view({"get": "list", "post": "create"}),
        name="collab-members",
    ),
    path(
        f"{DOCUMENT}members/<collab_id:user_id>/",
        DocumentMemberViewSet.as_view({"delete": "destroy"}),
        name="collab-member",
    ),
    path(
        f"{DOCUMENT}operations/",
        OperationViewSet.as_view({"get": "history"}),
        name="collab-operations",
    ),
    path(
        f"{DOCUMENT}versions/",
        DocumentVersionViewSet.as_view({"get": "list", "post": "create"}),
        name="collab-versions",
    ),
    path(
        f"{DOCUMENT}versions/<collab_id:version>/content/",
        DocumentVersionViewSet.as_view({"get": "content"}),
        name="collab-version-content",
    ),
    path(
        f"{DOCUMENT}versions/<collab_id:version>/restore/",
        DocumentVersionViewSet.as_view({"post": "restore"}),
        name="collab-version-restore",
    ),
]
