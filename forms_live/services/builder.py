"""Builders' changes to a form: add, remove, move and change fields, change the form itself,
resolve conflicts. Each is one revision of the form, under its row lock, with the form's
conflict policy deciding what a change made at an older base revision does.

    result = field_change(user=ann, form_id=7, base_revision=12, client_msg_id="c-3",
                          key="email", prop="label", value="Work e-mail")
    result.outcome      # "applied", "merged", "unchanged" or "conflict"
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from config.errors import AppError, ErrorCode
from forms_live import merge
from forms_live.models import ConflictStatus, FieldConflict, Form, FormChange, FormField
from forms_live.permissions import can_build, can_manage
from forms_live.selectors import conflict_payload, field_payload, fields_of, form_for_user, user_ref
from forms_live.services import checks
from forms_live.services.events import ChangeResult, _append, _original
from forms_live.validation import CHOICE_TYPES, RULES, check_definition

ADDED, REMOVED, MOVED = "forms.field.added", "forms.field.removed", "forms.field.moved"
CHANGED, FORM_CHANGED = "forms.field.changed", "forms.form.changed"
OPENED, RESOLVED = "forms.conflict.opened", "forms.conflict.resolved"


def _retrying(write):  # type: ignore[no-untyped-def]
    """Run a change; if another socket committed the same key meanwhile (the unique key on
    FormChange), run it again: it then finds the original and answers with it."""

    def run(**kwargs: Any) -> ChangeResult:
        try:
            return write(**kwargs)
        except IntegrityError:
            return write(**kwargs)

    run.__doc__, run.__name__ = write.__doc__, write.__name__
    return run


def _begin(user: Any, form_id: int, base: object, key: object, need=can_build):  # type: ignore[no-untyped-def]
    """Checks common to every change; the locked form and the original result, if any."""
    base, key = checks.revision(base), checks.client_msg_id(key)
    form, _ = form_for_user(user=user, form_id=form_id, need=need, lock=True)
    if base > form.revision:
        raise AppError(ErrorCode.CONFLICT, f"The form is at revision {form.revision}; resync.")
    return form, base, key, _original(form, user, key)


def _field(form: Form, key: object) -> FormField:
    field = FormField.objects.filter(form=form, key=checks.field_key(key)).first()
    if field is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such field.")
    return field


def _check_definition(field_type: str, rules: dict, options: list) -> None:  # type: ignore[type-arg]
    problems = check_definition(field_type, rules, options)
    if problems:
        raise AppError(ErrorCode.INVALID, " ".join(problems), details={"problems": problems})


# --- fields ------------------------------------------------------------------------------------


@_retrying
@transaction.atomic
def field_add(
    *,
    user: Any,
    form_id: int,
    base_revision: object,
    client_msg_id: object,
    key: object,
    type: object,
    label: object,
    help: object = "",
    required: object = False,
    rules: object = None,
    options: object = None,
    position: object = None,
) -> ChangeResult:
    """A new field, at ``position`` (the end by default)."""
    form, base, msg_id, original = _begin(user, form_id, base_revision, client_msg_id)
    if original is not None:
        return original
    key = checks.field_key(key)
    values = {
        "type": checks.prop_value("type", type),
        "label": checks.prop_value("label", label),
        "help": checks.prop_value("help", help),
        "required": checks.prop_value("required", required),
        "rules": checks.prop_value("rules", {} if rules is None else rules),
        "options": checks.prop_value("options", [] if options is None else options),
    }
    _check_definition(values["type"], values["rules"], values["options"])
    fields = fields_of(form.pk)
    if any(field.key == key for field in fields):
        raise AppError(ErrorCode.CONFLICT, f"The form already has a field {key!r}.")
    if len(fields) >= checks.MAX_FIELDS:
        raise AppError(ErrorCode.INVALID, f"A form holds at most {checks.MAX_FIELDS} fields.")
    at = len(fields) if position is None else min(checks.position(position), len(fields))
    revision = form.revision + 1
    field = FormField(
        form=form, key=key, position=at, changed_at={p: revision for p in checks.PROPS}, **values
    )
    fields.insert(at, field)
    field.save()
    _renumber(fields)
    data = {"field": field_payload(field), "order": [f.key for f in fields], "by": user_ref(user)}
    data["outcome"] = "applied"
    return ChangeResult(
        data, _append(form, user, ADDED, data, key=msg_id, base=base, field=key), "applied"
    )


@_retrying
@transaction.atomic
def field_remove(
    *, user: Any, form_id: int, base_revision: object, client_msg_id: object, key: object
) -> ChangeResult:
    """Remove a field (values already given to it stay in submissions)."""
    form, base, msg_id, original = _begin(user, form_id, base_revision, client_msg_id)
    if original is not None:
        return original
    field = _field(form, key)
    field.delete()
    fields = fields_of(form.pk)
    _renumber(fields)
    data = {"key": field.key, "order": [f.key for f in fields], "by": user_ref(user)}
    data["outcome"] = "applied"
    revision = _append(form, user, REMOVED, data, key=msg_id, base=base, field=field.key)
    return ChangeResult(data, revision, "applied")


@_retrying
@transaction.atomic
def field_move(
    *,
    user: Any,
    form_id: int,
    base_revision: object,
    client_msg_id: object,
    key: object,
    position: object,
) -> ChangeResult:
    """Move a field to ``position``; concurrent moves: the later one decides the order."""
    form, base, msg_id, original = _begin(user, form_id, base_revision, client_msg_id)
    if original is not None:
        return original
    field, at = _field(form, key), checks.position(position)
    fields = [f for f in fields_of(form.pk) if f.pk != field.pk]
    fields.insert(min(at, len(fields)), field)
    _renumber(fields)
    data = {"key": field.key, "order": [f.key for f in fields], "by": user_ref(user)}
    data["outcome"] = "applied"
    revision = _append(form, user, MOVED, data, key=msg_id, base=base, field=field.key)
    return ChangeResult(data, revision, "applied")


def _renumber(fields: list[FormField]) -> None:
    moved = []
    for index, field in enumerate(fields):
        if field.position != index:
            field.position = index
            moved.append(field)
    FormField.objects.bulk_update(moved, ["position"])


@_retrying
@transaction.atomic
def field_change(
    *,
    user: Any,
    form_id: int,
    base_revision: object,
    client_msg_id: object,
    key: object,
    prop: object,
    value: object,
) -> ChangeResult:
    """Change one property of a field, made at ``base_revision``: the form's policy decides
    what happens when someone changed the same property since (forms_live/merge.py)."""
    form, base, msg_id, original = _begin(user, form_id, base_revision, client_msg_id)
    if original is not None:
        return original
    field = _field(form, key)
    proposed = checks.prop_value(prop, value)
    prop = str(prop)
    current = getattr(field, prop)
    concurrent = field.changed_at.get(prop, 0) > base
    base_value = _value_at(form, field, prop, base) if concurrent else current
    kind = checks.PROP_KIND.get(prop, "scalar")
    decision = merge.decide(
        form.conflict_policy,
        kind,
        base=base_value,
        current=current,
        proposed=proposed,
        concurrent=concurrent,
    )
    if decision.outcome == "unchanged":
        data = {"key": field.key, "prop": prop, "value": current, "outcome": "unchanged"}
        return ChangeResult(data, None, "unchanged")
    if decision.outcome == "conflict":
        return _open_conflict(form, field, prop, base, current, proposed, user, msg_id)
    return _set(form, field, prop, decision.value, user, msg_id, base, decision.outcome)


def _set(
    form: Form,
    field: FormField,
    prop: str,
    value: Any,
    user: Any,
    msg_id: str,
    base: int,
    outcome: str,
    event_type: str = CHANGED,
    extra: dict[str, Any] | None = None,
) -> ChangeResult:
    # A merge of two valid values can be invalid (two labels of 150 characters merge into 300).
    value = checks.prop_value(prop, value)
    setattr(field, prop, value)
    changed = [prop] if prop != "type" else _retype(field)
    _check_definition(field.type, field.rules, field.options)
    field.changed_at = {**field.changed_at, **{p: form.revision + 1 for p in changed}}
    field.save(update_fields=[*changed, "changed_at"])
    data = {
        "key": field.key,
        "prop": prop,
        "value": value,
        "outcome": outcome,
        "by": user_ref(user),
        "field": field_payload(field),  # the whole field: a type change also moves others
        **(extra or {}),
    }
    revision = _append(form, user, event_type, data, key=msg_id, base=base, field=field.key)
    return ChangeResult(data, revision, outcome)


def _retype(field: FormField) -> list[str]:
    """A new type keeps the rules it understands and gets options only if it is a choice
    (a first one when it had none, as a form editor offers "Option 1"): the properties set."""
    field.rules = {name: v for name, v in field.rules.items() if name in RULES[field.type]}
    if field.type in CHOICE_TYPES:
        field.options = field.options or ["Option 1"]
    else:
        field.options = []
    return ["type", "rules", "options"]


def _value_at(form: Form, field: FormField, prop: str, base: int) -> Any:
    """The property's value at the base revision: its last change up to then, else the value
    the field was added with. A key removed and added again is another field: a base from
    before its latest addition did not see this field, and what the key held before is not
    this field's past."""
    last = (
        FormChange.objects.filter(
            Q(type=ADDED) | Q(type__in=(CHANGED, RESOLVED), data__prop=prop, revision__lte=base),
            form=form,
            field_key=field.key,
        )
        .order_by("-revision")
        .first()
    )
    if last is None or last.revision > base:
        raise AppError(ErrorCode.CONFLICT, "That field did not exist at your base revision.")
    return last.data["field"][prop] if last.type == ADDED else last.data["value"]


def _open_conflict(
    form: Form,
    field: FormField,
    prop: str,
    base: int,
    current: Any,
    proposed: Any,
    user: Any,
    msg_id: str,
) -> ChangeResult:
    # Who made the value kept: the last change of this property (of any other is not theirs).
    last = (
        FormChange.objects.filter(
            Q(type=ADDED) | Q(type__in=(CHANGED, RESOLVED), data__prop=prop),
            form=form,
            field_key=field.key,
        )
        .order_by("-revision")
        .first()
    )
    conflict = FieldConflict.objects.create(
        form=form,
        field=field,
        prop=prop,
        base_revision=base,
        current_value=current,
        current_by=None if last is None else last.author,
        proposed_value=proposed,
        proposed_by=user,
    )
    data = {"conflict": conflict_payload(conflict), "outcome": "conflict"}
    revision = _append(form, user, OPENED, data, key=msg_id, base=base, field=field.key)
    return ChangeResult(data, revision, "conflict")


@_retrying
@transaction.atomic
def conflict_resolve(
    *,
    user: Any,
    form_id: int,
    conflict_id: object,
    resolution: object,
    client_msg_id: object,
    value: object = None,
) -> ChangeResult:
    """Settle an open conflict: keep the current value, take the proposed one, or set
    another (``custom`` with ``value``). The field property changes like any change."""
    form, _, msg_id, original = _begin(user, form_id, 0, client_msg_id)
    if original is not None:
        return original
    if type(conflict_id) is not int:
        raise AppError(ErrorCode.INVALID, "'conflict_id' must be an integer.")
    conflict = (
        FieldConflict.objects.select_for_update()
        .select_related("field")
        .filter(pk=conflict_id, form=form)
        .first()
    )
    if conflict is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such conflict.")
    if conflict.status != ConflictStatus.OPEN:
        raise AppError(ErrorCode.CONFLICT, "This conflict is resolved already.")
    if resolution == "current":
        chosen = getattr(conflict.field, conflict.prop)
    elif resolution == "proposed":
        chosen = checks.prop_value(conflict.prop, conflict.proposed_value)
    elif resolution == "custom":
        chosen = checks.prop_value(conflict.prop, value)
    else:
        raise AppError(ErrorCode.INVALID, "'resolution' must be current, proposed or custom.")
    conflict.status, conflict.resolution = ConflictStatus.RESOLVED, resolution
    conflict.resolved_value, conflict.resolved_by = chosen, user
    conflict.resolved_at = timezone.now()
    conflict.save()
    extra = {"conflict": conflict_payload(conflict)}
    return _set(
        form,
        conflict.field,
        conflict.prop,
        chosen,
        user,
        msg_id,
        form.revision,
        "resolved",
        RESOLVED,
        extra,
    )


# --- the form itself ---------------------------------------------------------------------------


@_retrying
@transaction.atomic
def form_change(
    *,
    user: Any,
    form_id: int,
    base_revision: object,
    client_msg_id: object,
    prop: object,
    value: object,
) -> ChangeResult:
    """Rename (editors), publish, close, change the policy or anonymity (the owner)."""
    need = can_manage if checks.FORM_PROPS.get(str(prop)) == "owner" else can_build
    form, base, msg_id, original = _begin(user, form_id, base_revision, client_msg_id, need)
    if original is not None:
        return original
    value = checks.form_prop_value(prop, value)
    prop = str(prop)
    if prop == "anonymous" and value != form.anonymous and form.submissions.exists():
        # Off would lock anonymous respondents out of their answers; on would leave names on
        # those already given.
        raise AppError(ErrorCode.CONFLICT, "A form's anonymity is fixed once it has answers.")
    if getattr(form, prop) == value:
        data = {"prop": prop, "value": value, "outcome": "unchanged"}
        return ChangeResult(data, None, "unchanged")
    setattr(form, prop, value)
    form.save(update_fields=[prop, "updated_at"])
    data = {"prop": prop, "value": value, "outcome": "applied", "by": user_ref(user)}
    return ChangeResult(
        data, _append(form, user, FORM_CHANGED, data, key=msg_id, base=base), "applied"
    )
