"""REST routes of forms (DESIGN section 4), mounted at ``/api/forms/``."""

from __future__ import annotations

from django.urls import path, register_converter

import config.rest  # noqa: F401  (registers the bigid route converter)
from forms_live.models import MAX_KEY
from forms_live.views import (
    AnalyticsViewSet,
    ConflictViewSet,
    FieldViewSet,
    FormChangeViewSet,
    FormMemberViewSet,
    FormViewSet,
    SubmissionExportViewSet,
    SubmissionViewSet,
)


class FieldKeyConverter:
    """A field key as ``services.checks.field_key`` admits it: anything else names no field, so
    it is no route (404), not a bad request."""

    regex = f"[a-z][a-z0-9_]{{0,{MAX_KEY - 1}}}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(FieldKeyConverter, "fieldkey")

FORM = "<bigid:form_id>/"
FIELD = f"{FORM}fields/<fieldkey:key>/"
SUBMISSION = f"{FORM}submissions/<bigid:submission_id>/"

urlpatterns = [
    path("", FormViewSet.as_view({"get": "list", "post": "create"}), name="forms-forms"),
    path(
        FORM,
        FormViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="forms-form",
    ),
    path(
        f"{FORM}members/",
        FormMemberViewSet.as_view({"get": "list", "post": "create"}),
        name="forms-members",
    ),
    path(
        f"{FORM}members/<bigid:user_id>/",
        FormMemberViewSet.as_view({"delete": "destroy"}),
        name="forms-member",
    ),
    path(
        f"{FORM}fields/",
        FieldViewSet.as_view({"get": "list", "post": "create"}),
        name="forms-fields",
    ),
    path(
        FIELD,
        FieldViewSet.as_view({"patch": "partial_update", "delete": "destroy"}),
        name="forms-field",
    ),
    path(f"{FIELD}move/", FieldViewSet.as_view({"post": "move"}), name="forms-field-move"),
    path(
        f"{FORM}changes/",
        FormChangeViewSet.as_view({"get": "history"}),
        name="forms-changes",
    ),
    path(
        f"{FORM}conflicts/",
        ConflictViewSet.as_view({"get": "list"}),
        name="forms-conflicts",
    ),
    path(
        f"{FORM}conflicts/<bigid:conflict_id>/resolve/",
        ConflictViewSet.as_view({"post": "resolve"}),
        name="forms-conflict-resolve",
    ),
    path(
        f"{FORM}submissions/",
        SubmissionViewSet.as_view({"get": "list"}),
        name="forms-submissions",
    ),
    path(
        f"{FORM}submissions/export/",
        SubmissionExportViewSet.as_view({"get": "export"}),
        name="forms-submissions-export",
    ),
    path(SUBMISSION, SubmissionViewSet.as_view({"get": "retrieve"}), name="forms-submission"),
    path(
        f"{SUBMISSION}status/",
        SubmissionViewSet.as_view({"post": "status"}),
        name="forms-submission-status",
    ),
    path(
        f"{FORM}analytics/",
        AnalyticsViewSet.as_view({"get": "retrieve"}),
        name="forms-analytics",
    ),
]
