"""Members with roles on an object (a document, a form): the rules both apps share.

    member, changed = member_upsert(DocumentMember, document, member_id=9, role="editor",
                                    noun="document")   # changed: added, or a new role
    member_delete(DocumentMember, document, member_id=9, noun="document")

The object has an ``owner`` (a user) and ``updated_at``; its member model has a foreign key to
it, ``user`` and ``role``, with "owner" among the roles. An object always keeps one owner;
when its named owner steps down, the longest-standing other owner is named instead. Callers
check who may change members and hold the object's row lock.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import models

from config.errors import AppError, ErrorCode
from config.realtime.control import tell_workers_on_commit

OWNER = "owner"


def _parent_field(member_model: type[models.Model], parent: models.Model) -> str:
    for field in member_model._meta.get_fields():
        if getattr(field, "related_model", None) is type(parent) and field.many_to_one:
            return field.name
    raise TypeError(f"{member_model.__name__} has no foreign key to {type(parent).__name__}")


def member_upsert(
    member_model: type[models.Model], parent: models.Model, *, member_id: int, role: str, noun: str
) -> tuple[Any, bool]:
    """Add a member or change their role; also whether anything changed."""
    roles = member_model._meta.get_field("role").choices or []
    names = [value for value, _ in roles]
    if role not in names:
        raise AppError(ErrorCode.INVALID, f"'role' must be one of: {', '.join(names)}.")
    if not get_user_model().objects.filter(pk=member_id, is_active=True).exists():
        raise AppError(ErrorCode.INVALID, "No such user.")
    of_parent = {_parent_field(member_model, parent): parent}
    member, created = member_model.objects.select_for_update().get_or_create(  # type: ignore[attr-defined]
        **of_parent, user_id=member_id, defaults={"role": role}
    )
    if created or member.role == role:
        return member, created
    if member.role == OWNER:
        _keep_an_owner(member_model, parent, leaving=member, noun=noun)
    member.role = role
    member.save(update_fields=["role"])
    _recheck_sockets_on_commit(member_id)
    return member, True


def member_delete(
    member_model: type[models.Model], parent: models.Model, *, member_id: int, noun: str
) -> None:
    of_parent = {_parent_field(member_model, parent): parent}
    member = member_model.objects.select_for_update().filter(**of_parent, user_id=member_id).first()  # type: ignore[attr-defined]
    if member is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such member.")
    if member.role == OWNER:
        _keep_an_owner(member_model, parent, leaving=member, noun=noun)
    member.delete()
    _recheck_sockets_on_commit(member_id)


def _recheck_sockets_on_commit(user_id: int) -> None:
    """The member's open sockets authorize again once this commits: a removed member's socket
    on the object (or on its threads, its form's dashboard) closes instead of hearing on."""
    tell_workers_on_commit({"action": "recheck_user", "user_id": user_id})


def _keep_an_owner(
    member_model: type[models.Model], parent: Any, *, leaving: Any, noun: str
) -> None:
    """Refuse to lose the last owner; when the named owner steps down, name another."""
    of_parent = {_parent_field(member_model, parent): parent}
    other = (
        member_model.objects.filter(**of_parent, role=OWNER)  # type: ignore[attr-defined]
        .exclude(pk=leaving.pk)
        .order_by("id")
        .first()
    )
    if other is None:
        raise AppError(ErrorCode.CONFLICT, f"A {noun} must keep at least one owner.")
    if parent.owner_id == leaving.user_id:
        parent.owner_id = other.user_id
        parent.save(update_fields=["owner", "updated_at"])
