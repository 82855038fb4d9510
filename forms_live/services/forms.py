"""Forms and their members: create, delete, add or change members (the owner)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from comments.services import target_threads_delete
from config.errors import AppError, ErrorCode
from forms_live.models import ConflictPolicy, Form, FormMember, Role
from forms_live.permissions import can_manage
from forms_live.selectors import form_for_user
from forms_live.services import checks


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
    form.delete()


@transaction.atomic
def member_set(*, user: Any, form_id: int, member_id: int, role: str) -> FormMember:
    """Add a member or change their role (owner only). A form always keeps one owner."""
    form, _ = form_for_user(user=user, form_id=form_id, need=can_manage, lock=True)
    if role not in Role.values:
        raise AppError(ErrorCode.INVALID, f"'role' must be one of: {', '.join(Role.values)}.")
    if not get_user_model().objects.filter(pk=member_id, is_active=True).exists():
        raise AppError(ErrorCode.INVALID, "No such user.")
    member, created = FormMember.objects.get_or_create(
        form=form, user_id=member_id, defaults={"role": role}
    )
    if not created and member.role != role:
        if member.role == Role.OWNER:
            _keep_an_owner(form, leaving=member)
        member.role = role
        member.save(update_fields=["role"])
    return member


@transaction.atomic
def member_remove(*, user: Any, form_id: int, member_id: int) -> None:
    form, _ = form_for_user(user=user, form_id=form_id, need=can_manage, lock=True)
    member = FormMember.objects.filter(form=form, user_id=member_id).first()
    if member is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such member.")
    if member.role == Role.OWNER:
        _keep_an_owner(form, leaving=member)
    member.delete()


def _keep_an_owner(form: Form, *, leaving: FormMember) -> None:
    """Refuse to lose the last owner; when the named owner steps down, name another."""
    other = (
        FormMember.objects.filter(form=form, role=Role.OWNER)
        .exclude(pk=leaving.pk)
        .order_by("id")
        .first()
    )
    if other is None:
        raise AppError(ErrorCode.CONFLICT, "A form must keep at least one owner.")
    if form.owner_id == leaving.user_id:
        form.owner_id = other.user_id
        form.save(update_fields=["owner", "updated_at"])
