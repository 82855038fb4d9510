"""Forms and their members: create, delete, add or change members (the owner)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from comments.services import target_threads_delete
from config.members import member_delete, member_upsert
from forms_live.models import ConflictPolicy, Form, FormMember, Role
from forms_live.permissions import can_manage
from forms_live.selectors import form_for_user
from forms_live.services import checks
from monitoring.events import audit


@transaction.atomic
def form_create(
    *,
    owner: Any,
    title: object,
    conflict_policy: object = ConflictPolicy.MERGE,
    anonymous: object = False,
) -> Form:
    """A new draft form owned by ``owner``."""
    form = Form.objects.create(
        owner=owner,
        title=checks.form_prop_value("title", title),
        conflict_policy=checks.form_prop_value("conflict_policy", conflict_policy),
        anonymous=checks.form_prop_value("anonymous", anonymous),
    )
    FormMember.objects.create(form=form, user=owner, role=Role.OWNER)
    return form


@transaction.atomic
def form_delete(*, user: Any, form_id: int) -> None:
    form, _ = form_for_user(user=user, form_id=form_id, need=can_manage, lock=True)
    # Comment threads name their target by id, not by foreign key: they go in this transaction.
    target_threads_delete(target_kind="form", target_id=form.pk)
    target_threads_delete(target_kind="form_field", target_id=form.pk)
    audit("form_deleted", actor=user, form_id=form.pk, title=form.title)
    form.delete()


@transaction.atomic
def member_set(*, user: Any, form_id: int, member_id: int, role: str) -> FormMember:
    """Add a member or change their role (owner only). A form always keeps one owner."""
    form, _ = form_for_user(user=user, form_id=form_id, need=can_manage, lock=True)
    member, changed = member_upsert(FormMember, form, member_id=member_id, role=role, noun="form")
    if changed:
        audit("form_member_set", actor=user, form_id=form.pk, user_id=member_id, role=role)
    return member


@transaction.atomic
def member_remove(*, user: Any, form_id: int, member_id: int) -> None:
    form, _ = form_for_user(user=user, form_id=form_id, need=can_manage, lock=True)
    member_delete(FormMember, form, member_id=member_id, noun="form")
    audit("form_member_removed", actor=user, form_id=form.pk, user_id=member_id)
