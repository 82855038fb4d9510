"""REST for a form's submissions, as owners and editors watch them: list, read, move on
(processing, completed), export as CSV; and the form's analytics.

Viewers see neither submissions nor figures: they look at how the form is built, not at who
answered it. Respondents fill over the fill socket and never see others' submissions here.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from config.errors import AppError, ErrorCode
from forms_live.models import Submission
from forms_live.permissions import can_build
from forms_live.selectors import fields_of, form_for_user, form_stats, submission_payload
from forms_live.serializers import (
    AnalyticsOutputSerializer,
    SubmissionChangeOutputSerializer,
    SubmissionOutputSerializer,
    SubmissionQuerySerializer,
    SubmissionStatusInputSerializer,
)
from forms_live.services import submission_set_status
from forms_live.views.base import FORM_ID, SUBMISSION_ID, FormsViewSet

EXPORT_CHUNK = 500  # submissions read per query while the CSV streams
EXPORT_COLUMNS = (
    "id",
    "respondent",
    "status",
    "started_at",
    "submitted_at",
    "completed_at",
    "progress",
    "browser",
    "os",
    "device_type",
)
# A spreadsheet runs a cell starting with these as a formula (CSV injection): such text cells
# get a leading quote, which spreadsheets hide. Tab and CR are OWASP's additions to = + - @.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class SubmissionViewSet(FormsViewSet):
    """A form's submissions, newest first. Owners and editors."""

    inputs = {"list": SubmissionQuerySerializer, "status": SubmissionStatusInputSerializer}
    writes = frozenset({"status"})

    @extend_schema(
        parameters=[FORM_ID, SubmissionQuerySerializer],
        responses={200: SubmissionOutputSerializer(many=True)},
    )
    def list(self, request: Request, form_id: int) -> Response:
        form, _ = form_for_user(user=request.user, form_id=form_id, need=can_build)
        wanted = self.valid(request.query_params)["status"]
        submissions = Submission.objects.filter(form=form).select_related("respondent")
        if wanted is not None:
            submissions = submissions.filter(status=wanted)
        page = self.paginate_queryset(submissions)
        return self.get_paginated_response([submission_payload(s) for s in page])  # type: ignore[union-attr]

    @extend_schema(parameters=[FORM_ID, SUBMISSION_ID], responses={200: SubmissionOutputSerializer})
    def retrieve(self, request: Request, form_id: int, submission_id: int) -> Response:
        form, _ = form_for_user(user=request.user, form_id=form_id, need=can_build)
        found = Submission.objects.select_related("respondent").filter(pk=submission_id, form=form)
        submission = found.first()
        if submission is None:
            raise AppError(ErrorCode.NOT_FOUND, "No such submission.")
        return Response(submission_payload(submission))

    @extend_schema(
        parameters=[FORM_ID, SUBMISSION_ID],
        request=SubmissionStatusInputSerializer,
        responses={200: SubmissionChangeOutputSerializer},
        description="Move a sent submission on: submitted → processing → completed (or "
        "straight to completed). Asking for the status it has answers it, `duplicate: true`; "
        "any other move is a conflict (409).",
    )
    def status(self, request: Request, form_id: int, submission_id: int) -> Response:
        wanted = self.valid(request.data)["status"]
        result = submission_set_status(
            user=request.user, form_id=form_id, submission_id=submission_id, status=wanted
        )
        body = {"submission": result.data, "revision": result.revision}
        return Response({**body, "duplicate": result.duplicate})


class SubmissionExportViewSet(FormsViewSet):
    """Every submission of a form as CSV, streamed. Owners and editors."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # A CSV answers whatever the client accepts; only errors are rendered (as JSON).
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[FORM_ID],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="One row per submission, oldest first: "
                f"{', '.join(EXPORT_COLUMNS)}, then one column per current field key. "
                'Multiple choices are joined with "; "; respondent is empty on anonymous '
                "forms; text that a spreadsheet would run as a formula starts with a quote.",
            )
        },
    )
    def export(self, request: Request, form_id: int) -> StreamingHttpResponse:
        form, _ = form_for_user(user=request.user, form_id=form_id, need=can_build)
        keys = [field.key for field in fields_of(form.pk)]
        response = StreamingHttpResponse(
            _csv_chunks(form.pk, keys), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="form-{form.pk}-submissions.csv"'
        response["Cache-Control"] = "private, no-cache"
        response["X-Content-Type-Options"] = "nosniff"
        return response


class AnalyticsViewSet(FormsViewSet):
    """The form's funnel, as its dashboard socket shows it. Owners and editors."""

    @extend_schema(parameters=[FORM_ID], responses={200: AnalyticsOutputSerializer})
    def retrieve(self, request: Request, form_id: int) -> Response:
        form, _ = form_for_user(user=request.user, form_id=form_id, need=can_build)
        return Response(form_stats(form_id=form.pk, now=time.time()).summary())


# --- CSV -----------------------------------------------------------------------------------------


class _Echo:
    """csv.writer's file: hands each written row back instead of keeping it."""

    def write(self, text: str) -> str:
        return text


async def _csv_chunks(form_id: int, keys: list[str]) -> AsyncIterator[str]:
    """Asynchronous, so Daphne sends each chunk as it is read: a synchronous iterator would be
    read whole into memory first (Django's StreamingHttpResponse under ASGI). Pages by id, so
    each query is short and the export never holds a cursor open between chunks."""
    writer = csv.writer(_Echo())
    yield writer.writerow([*EXPORT_COLUMNS, *keys])
    after = 0
    while True:
        chunk = await sync_to_async(_submissions_after)(form_id, after)
        if not chunk:
            return
        yield "".join(writer.writerow(_row(submission, keys)) for submission in chunk)
        after = chunk[-1].pk


def _submissions_after(form_id: int, after: int) -> list[Submission]:
    submissions = Submission.objects.filter(form_id=form_id, pk__gt=after).select_related(
        "respondent"
    )
    return list(submissions.defer("errors").order_by("pk")[:EXPORT_CHUNK])


def _row(submission: Submission, keys: list[str]) -> list[Any]:
    respondent = submission.respondent  # never stored on an anonymous form
    fixed = [
        submission.pk,
        "" if respondent is None else respondent.get_username(),
        submission.status,
        submission.started_at.isoformat(),
        _time(submission.submitted_at),
        _time(submission.completed_at),
        submission.progress,
        submission.browser,
        submission.os,
        submission.device_type,
    ]
    return [_cell(value) for value in (*fixed, *(submission.values.get(k) for k in keys))]


def _time(value: Any) -> str:
    return "" if value is None else value.isoformat()


def _cell(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value  # a number is never run as a formula, and -3 must stay -3
    text = _plain(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(_plain(item) for item in value)  # a multiple choice's options
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
