"""REST routes of documents (DESIGN section 4), mounted at ``/api/collab/``."""

from __future__ import annotations

from django.urls import path

import config.rest  # noqa: F401  (registers the bigid route converter)
from collab.views import (
    DocumentMemberViewSet,
    DocumentVersionViewSet,
    DocumentViewSet,
    OperationViewSet,
)

DOCUMENT = "documents/<bigid:document_id>/"

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
        f"{DOCUMENT}members/<bigid:user_id>/",
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
        f"{DOCUMENT}versions/<bigid:version>/content/",
        DocumentVersionViewSet.as_view({"get": "content"}),
        name="collab-version-content",
    ),
    path(
        f"{DOCUMENT}versions/<bigid:version>/restore/",
        DocumentVersionViewSet.as_view({"post": "restore"}),
        name="collab-version-restore",
    ),
]
