"""Respondents filling a published form, and owners moving submissions on.

    submission = submission_start(user=bob, form_id=7, user_agent="Mozilla/5.0 ...")
    result = submission_update(user=bob, form_id=7, token=submission.token,
                               values={"email": "bob@example"})
    result.data["errors"]      # {"email": ["email"]}: live feedback, the same rules as submit
    submission_submit(user=bob, form_id=7, token=submission.token)  # INVALID unless all valid

Every change raises the submission's ``revision`` and, after commit, reaches the respondent's
sockets and the form's dashboards (``forms.submission.changed``, stream ``forms.submission.<id>``,
seq = revision). The server is the authority: a submission is submitted only when every value
passes ``forms_live/validation.py``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from user_agents import parse as parse_user_agent

from config.errors import AppError, ErrorCode
from config.realtime.broadcast import broadcast_on_commit, group_send_on_commit
from forms_live.models import Form, Submission, SubmissionStatus
from forms_live.permissions import can_build
from forms_live.selectors import (
    field_spec,
    fields_of,
    form_for_user,
    form_to_fill,
    respondent_payload,
    submission_payload,
)
from forms_live.services.events import (
    FORM_VIEWED,
    dashboard_group,
    respondent_group,
    submission_stream,
)
from forms_live.validation import check_value, check_values, progress
from monitoring.events import record
from monitoring.models import EventKind

MAX_USER_AGENT = 512
MAX_VALUES = 200  # keys per update
# Where owners may move a submission, from where.
NEXT_STATUS = {
    SubmissionStatus.PROCESSING: {SubmissionStatus.SUBMITTED},
    SubmissionStatus.COMPLETED: {SubmissionStatus.SUBMITTED, SubmissionStatus.PROCESSING},
}


@dataclass(frozen=True, slots=True)
class SubmissionResult:
    data: dict[str, Any]  # the submission, as the respondent and dashboards see it
    revision: int
    duplicate: bool = False


@transaction.atomic
def form_viewed(*, form_id: int) -> None:
    """A fill page opened: the top of the funnel. Its dashboards recount (a message to their
    consumers, not a frame: they send the figures, not the view)."""
    Form.objects.filter(pk=form_id).update(views=F("views") + 1)
    group_send_on_commit(dashboard_group(form_id), {"type": FORM_VIEWED})


@transaction.atomic
def submission_start(
    *, user: Any, form_id: int, user_agent: str = "", token: object = None
) -> Submission:
    """The respondent's submission to a published form: theirs if they have one (by account,
    or by ``token`` on an anonymous form), else a new one with its device read from the
    User-Agent. A token that is not theirs is NOT_FOUND."""
    _signed_in(user)
    form = form_to_fill(form_id=form_id)
    if token is not None:
        if not isinstance(token, str):
            raise AppError(ErrorCode.INVALID, "'token' must be your submission's token.")
        mine = Submission.objects.filter(form=form, token=token)
        if not form.anonymous:
            mine = mine.filter(respondent_id=user.pk)
        found = mine.first()
        if found is None:
            raise AppError(ErrorCode.NOT_FOUND, "No such submission.")
        return found
    if not form.anonymous:
        found = Submission.objects.filter(form=form, respondent_id=user.pk).first()
        if found is not None:
            return found
    device = parse_user_agent((user_agent or "")[:MAX_USER_AGENT])
    kind = (
        "bot"
        if device.is_bot
        else "mobile"
        if device.is_mobile
        else "tablet"
        if device.is_tablet
        else "desktop"
        if device.is_pc
        else "other"
    )
    try:
        with transaction.atomic():
            submission = Submission.objects.create(
                form=form,
                respondent=None if form.anonymous else user,
                token=secrets.token_urlsafe(24),
                browser=device.browser.family[:64],
                os=device.os.family[:64],
                device_type=kind,
                revision=1,  # its first state: clients keep what is above what they had
            )
    except IntegrityError:
        # The respondent's other tab started one at the same moment (one per respondent and
        # form): that one is theirs.
        return Submission.objects.get(form=form, respondent_id=user.pk)
    _announce(submission)
    return submission


def _signed_in(user: Any) -> None:
    # Routes require it already; without it "no respondent" would match anonymous rows.
    if not getattr(user, "is_authenticated", False):
        raise AppError(ErrorCode.NOT_FOUND, "No such submission.")


def _mine(user: Any, form_id: int, token: object) -> tuple[Form, Submission]:
    """The form and the respondent's submission (locked), or NOT_FOUND."""
    _signed_in(user)
    form = form_to_fill(form_id=form_id)
    if not isinstance(token, str):
        raise AppError(ErrorCode.INVALID, "'token' must be your submission's token.")
    # The respondent comes with it: every answer names them (submission_payload).
    mine = (
        Submission.objects.select_for_update(of=("self",))
        .select_related("respondent")
        .filter(form=form, token=token)
    )
    if not form.anonymous:
        mine = mine.filter(respondent_id=user.pk)
    submission = mine.first()
    if submission is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such submission.")
    return form, submission


@transaction.atomic
def submission_update(
    *, user: Any, form_id: int, token: object, values: object
) -> SubmissionResult:
    """Set some values of one's submission in progress; each comes back with its validation
    codes, and the progress with them (nothing is refused for being invalid: the respondent
    is still typing)."""
    form, submission = _mine(user, form_id, token)
    if submission.status != SubmissionStatus.IN_PROGRESS:
        raise AppError(ErrorCode.CONFLICT, "This submission was sent already.")
    if not isinstance(values, dict) or not values or len(values) > MAX_VALUES:
        raise AppError(
            ErrorCode.INVALID, f"'values' must map 1 to {MAX_VALUES} field keys to values."
        )
    specs = {field.key: field_spec(field) for field in fields_of(form.pk)}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise AppError(ErrorCode.INVALID, "Unknown fields.", details={"unknown": unknown[:20]})
    merged = {**submission.values, **values}
    errors = {**submission.errors}
    for key, value in values.items():
        errors[key] = check_value(specs[key], value)
    submission.values = merged
    submission.errors = {key: codes for key, codes in errors.items() if codes}
    submission.progress = progress(list(specs.values()), merged)
    submission.last_field = list(values)[-1]
    return _save(submission, ["values", "errors", "progress", "last_field"], respondent=True)


def submission_submit(*, user: Any, form_id: int, token: object) -> SubmissionResult:
    """Send one's submission: only when every value passes (INVALID with each field's codes
    otherwise, which are also stored and pushed as feedback). Sending it again answers with it
    as it is."""
    result, errors = _submit(user, form_id, token)
    if errors:
        raise AppError(ErrorCode.INVALID, "Some values are not valid.", details={"errors": errors})
    return result


@transaction.atomic
def _submit(user: Any, form_id: int, token: object) -> tuple[SubmissionResult, dict[str, Any]]:
    form, submission = _mine(user, form_id, token)
    if submission.status != SubmissionStatus.IN_PROGRESS:
        payload = respondent_payload(submission)
        return SubmissionResult(payload, submission.revision, duplicate=True), {}
    specs = [field_spec(field) for field in fields_of(form.pk)]
    keys = {spec.key for spec in specs}
    # Values of fields removed since are not part of the answer.
    submission.values = {k: v for k, v in submission.values.items() if k in keys}
    errors = {key: codes for key, codes in check_values(specs, submission.values).items() if codes}
    submission.errors = errors
    submission.progress = progress(specs, submission.values)
    if errors:
        return _save(submission, ["values", "errors", "progress"], respondent=True), errors
    submission.status, submission.submitted_at = SubmissionStatus.SUBMITTED, timezone.now()
    fields = ["values", "errors", "progress", "status", "submitted_at"]
    result = _save(submission, fields, respondent=True)
    # The audit line names no one on an anonymous form: not the account, not the address.
    details = {"form_id": form.pk, "submission_id": submission.pk, "anonymous": form.anonymous}
    record(EventKind.FORM_SUBMITTED, actor=None if form.anonymous else user, details=details)
    return result, {}


@transaction.atomic
def submission_set_status(
    *, user: Any, form_id: int, submission_id: object, status: object
) -> SubmissionResult:
    """Owners and editors move a sent submission on: processing, then completed."""
    form, _ = form_for_user(user=user, form_id=form_id, need=can_build)
    if status not in NEXT_STATUS:
        raise AppError(ErrorCode.INVALID, "'status' must be processing or completed.")
    if type(submission_id) is not int:
        raise AppError(ErrorCode.INVALID, "'submission_id' must be an integer.")
    submission = (
        Submission.objects.select_for_update(of=("self",))
        .select_related("respondent")
        .filter(pk=submission_id, form=form)
        .first()
    )
    if submission is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such submission.")
    if submission.status == status:
        return SubmissionResult(submission_payload(submission), submission.revision, duplicate=True)
    if submission.status not in NEXT_STATUS[status]:  # type: ignore[index]
        raise AppError(
            ErrorCode.CONFLICT, f"A submission {submission.status} cannot become {status}."
        )
    submission.status = status
    fields = ["status"]
    if status == SubmissionStatus.COMPLETED:
        submission.completed_at = timezone.now()
        fields.append("completed_at")
    return _save(submission, fields)


def _save(
    submission: Submission, fields: list[str], *, respondent: bool = False
) -> SubmissionResult:
    """Store, announce after commit, and answer as the caller may see it (the respondent with
    the token, builders without)."""
    submission.revision += 1
    submission.save(update_fields=[*fields, "revision", "updated_at"])
    _announce(submission)
    payload = respondent_payload(submission) if respondent else submission_payload(submission)
    return SubmissionResult(payload, submission.revision)


def _announce(submission: Submission) -> None:
    stream = submission_stream(submission.pk)
    for group, data in (
        (respondent_group(submission.token), respondent_payload(submission)),
        (dashboard_group(submission.form_id), submission_payload(submission)),
    ):
        broadcast_on_commit(
            group,
            "forms.submission.changed",
            {"submission": data},
            stream=stream,
            seq=submission.revision,
            dedupe=True,
        )
