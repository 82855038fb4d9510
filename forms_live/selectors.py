"""Reads of forms, fields, changes, conflicts and submissions, with the permission checks every
caller needs, and the one shape each takes on the wire (events, acks, snapshots and REST).

    form, role = form_for_user(user=user, form_id=7, need=can_build)
    form_payload(form, fields)   # {"id", "title", "status", "conflict_policy", "revision", ...}
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from django.db.models import F, QuerySet

from config.errors import AppError, ErrorCode
from forms_live.analytics import FormStats, SubmissionFacts
from forms_live.models import (
    FieldConflict,
    Form,
    FormChange,
    FormField,
    FormMember,
    FormStatus,
    Submission,
)
from forms_live.permissions import can_view
from forms_live.validation import FieldSpec


def form_roles(form_id: int, user_ids: Collection[int]) -> dict[int, str]:
    """The roles of these users on a form, for those who have one (comments' targets)."""
    members = FormMember.objects.filter(form_id=form_id, user_id__in=list(user_ids))
    return dict(members.values_list("user_id", "role"))


def form_role(*, user: Any, form_id: int) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return form_roles(form_id, [user.pk]).get(user.pk)


def form_for_user(
    *,
    user: Any,
    form_id: int,
    need: Callable[[str | None], bool] = can_view,
    lock: bool = False,
) -> tuple[Form, str]:
    """The form and the user's role, in one query; NOT_FOUND if they may not see it as a
    member, FORBIDDEN if they may see it but not do what ``need`` asks. ``lock`` takes the
    form's row lock (inside a transaction), which orders its changes across workers."""
    forms = Form.objects.select_for_update(of=("self",)) if lock else Form.objects.all()
    form = (
        forms.filter(pk=form_id, members__user_id=user.pk).annotate(role=F("members__role")).first()
        if getattr(user, "is_authenticated", False)
        else None
    )
    role = None if form is None else form.role
    if not can_view(role):
        raise AppError(ErrorCode.NOT_FOUND, "No such form.")
    if not need(role):
        raise AppError(ErrorCode.FORBIDDEN, "Your role on this form does not allow that.")
    return form, role  # type: ignore[return-value]


def form_to_fill(*, form_id: int, lock: bool = False) -> Form:
    """A form anyone signed in may fill: published. Any other answers NOT_FOUND, as one that
    does not exist (a draft is nobody's business but its members')."""
    forms = Form.objects.select_for_update() if lock else Form.objects.all()
    form = forms.filter(pk=form_id, status=FormStatus.PUBLISHED).first()
    if form is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such form.")
    return form


def forms_for_user(*, user: Any) -> QuerySet[Form]:
    return Form.objects.filter(members__user_id=user.pk).annotate(role=F("members__role"))


def fields_of(form_id: int) -> list[FormField]:
    return list(FormField.objects.filter(form_id=form_id).order_by("position", "id"))


def field_spec(field: FormField) -> FieldSpec:
    return FieldSpec(
        key=field.key,
        type=field.type,
        required=field.required,
        rules=field.rules,
        options=tuple(field.options),
    )


# --- payloads ----------------------------------------------------------------------------------


def user_ref(user: Any) -> dict[str, Any] | None:
    return None if user is None else {"id": user.pk, "username": user.get_username()}


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


FIELD_PROPS = ("type", "label", "help", "required", "rules", "options")


def field_payload(field: FormField) -> dict[str, Any]:
    return {
        "key": field.key,
        **{prop: getattr(field, prop) for prop in FIELD_PROPS},
        "position": field.position,
    }


def form_payload(form: Form, fields: list[FormField] | None = None) -> dict[str, Any]:
    payload = {
        "id": form.pk,
        "title": form.title,
        "status": form.status,
        "conflict_policy": form.conflict_policy,
        "anonymous": form.anonymous,
        "revision": form.revision,
        "created_at": _time(form.created_at),
        "updated_at": _time(form.updated_at),
    }
    if fields is not None:
        payload["fields"] = [field_payload(field) for field in fields]
    return payload


def conflict_payload(conflict: FieldConflict) -> dict[str, Any]:
    return {
        "id": conflict.pk,
        "field": conflict.field.key,
        "prop": conflict.prop,
        "base_revision": conflict.base_revision,
        "current_value": conflict.current_value,
        "current_by": user_ref(conflict.current_by),
        "proposed_value": conflict.proposed_value,
        "proposed_by": user_ref(conflict.proposed_by),
        "status": conflict.status,
        "resolution": conflict.resolution,
        "resolved_value": conflict.resolved_value,
        "resolved_by": user_ref(conflict.resolved_by),
        "created_at": _time(conflict.created_at),
        "resolved_at": _time(conflict.resolved_at),
    }


def submission_payload(submission: Submission) -> dict[str, Any]:
    """As owners and editors see it; on an anonymous form nobody is named. The token, the
    respondent's only key to it on an anonymous form, is in ``respondent_payload`` alone."""
    return {
        "id": submission.pk,
        "form_id": submission.form_id,
        "respondent": user_ref(submission.respondent),
        "status": submission.status,
        "values": submission.values,
        "errors": submission.errors,
        "progress": submission.progress,
        "last_field": submission.last_field,
        "revision": submission.revision,
        "device": {
            "browser": submission.browser,
            "os": submission.os,
            "type": submission.device_type,
        },
        "started_at": _time(submission.started_at),
        "submitted_at": _time(submission.submitted_at),
        "completed_at": _time(submission.completed_at),
    }


def respondent_payload(submission: Submission) -> dict[str, Any]:
    """As the respondent sees it: with the token that resumes it."""
    return {**submission_payload(submission), "token": submission.token}


# --- resume ------------------------------------------------------------------------------------


def changes_between(*, form_id: int, after: int, upto: int | None = None) -> list[FormChange]:
    changes = FormChange.objects.filter(form_id=form_id, revision__gt=after).select_related(
        "author"
    )
    if upto is not None:
        changes = changes.filter(revision__lte=upto)
    return list(changes.order_by("revision"))


# --- analytics ---------------------------------------------------------------------------------


def form_stats(*, form_id: int, now: float) -> FormStats:
    """The form's funnel from its submissions (one query, a few columns per submission)."""
    views = Form.objects.filter(pk=form_id).values_list("views", flat=True).first() or 0
    rows = Submission.objects.filter(form_id=form_id).values_list(
        "status", "started_at", "submitted_at", "last_field", "updated_at"
    )
    facts = [
        SubmissionFacts(
            status=status,
            started_at=started.timestamp(),
            submitted_at=None if submitted is None else submitted.timestamp(),
            last_field=last_field or None,
            # Someone still typing an hour after they started has not abandoned the form.
            last_active_at=updated.timestamp(),
        )
        for status, started, submitted, last_field, updated in rows.iterator(chunk_size=2000)
    ]
    return FormStats.of(facts, views=views, now=now)


# --- socket openings ---------------------------------------------------------------------------

LATEST_SUBMISSIONS = 50


def form_revision(*, form_id: int) -> int:
    revision = Form.objects.filter(pk=form_id).values_list("revision", flat=True).first()
    if revision is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such form.")
    return revision


def edit_snapshot(*, form_id: int) -> dict[str, Any]:
    """What a builder's socket gets on join: the form with its fields, the open conflicts."""
    form = Form.objects.filter(pk=form_id).first()
    if form is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such form.")
    conflicts = FieldConflict.objects.filter(form=form, status="open").select_related(
        "field", "current_by", "proposed_by", "resolved_by"
    )
    return {
        "form": form_payload(form, fields_of(form.pk)),
        "conflicts": [conflict_payload(c) for c in conflicts],
        "revision": form.revision,
    }


def dashboard_snapshot(*, form_id: int, now: float) -> dict[str, Any]:
    """What a dashboard gets on join: the form, its analytics, the latest submissions."""
    form = Form.objects.filter(pk=form_id).first()
    if form is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such form.")
    latest = Submission.objects.filter(form=form).select_related("respondent")
    return {
        "form": form_payload(form, fields_of(form.pk)),
        "analytics": form_stats(form_id=form_id, now=now).summary(),
        "submissions": [submission_payload(s) for s in latest[:LATEST_SUBMISSIONS]],
    }
