"""Group names, results, and appending a form change (the builders' stream).

result = _append(form, user, "forms.field.changed", data, key="m-7", base=12, field="email")
result.revision    # the change's revision: the form's, one more than before
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.realtime.broadcast import broadcast_on_commit
from config.realtime.groups import group_name
from forms_live.models import Form, FormChange


def form_group(form_id: int) -> str:
    """The builders' sockets of a form, also the stream name of its changes (seq = revision)."""
    return group_name("forms", "form", form_id)


# To dashboards' consumers (a layer message, not a frame): a fill page opened, the views changed.
FORM_VIEWED = "forms.form.viewed"


def dashboard_group(form_id: int) -> str:
    return group_name("forms", "dashboard", form_id)


def respondent_group(token: str) -> str:
    """The sockets of one submission's respondent."""
    return group_name("forms", "fill", token)


def submission_stream(submission_id: int) -> str:
    return group_name("forms", "submission", submission_id)


@dataclass(frozen=True, slots=True)
class ChangeResult:
    data: dict[str, Any]
    revision: int | None  # the change made; None when nothing changed
    outcome: str  # "applied" | "merged" | "unchanged" | "conflict"
    duplicate: bool = False


def _append(
    form: Form,
    user: Any,
    event_type: str,
    data: dict[str, Any],
    *,
    key: str,
    base: int,
    field: str = "",
) -> int:
    """Store the form's next change and broadcast it after commit. Caller holds the lock."""
    form.revision += 1
    Form.objects.filter(pk=form.pk).update(revision=form.revision)
    FormChange.objects.create(
        form=form,
        revision=form.revision,
        author=user,
        client_msg_id=key,
        base_revision=base,
        type=event_type,
        field_key=field,
        data=data,
    )
    group = form_group(form.pk)
    broadcast_on_commit(group, event_type, data, stream=group, seq=form.revision, dedupe=True)
    return form.revision


def _original(form: Form, user: Any, key: str) -> ChangeResult | None:
    """The change this key already made, if any: a resubmission is answered with it."""
    change = FormChange.objects.filter(form=form, author=user, client_msg_id=key).first()
    if change is None:
        return None
    outcome = change.data.get("outcome", "applied")
    return ChangeResult(change.data, change.revision, outcome, duplicate=True)
