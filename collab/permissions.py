"""Who may do what with a document, by role. Shared by viewsets, consumers and room rules."""

from __future__ import annotations

from collab.models import Role

EDIT_ROLES = frozenset({Role.OWNER, Role.EDITOR})


def can_view(role: str | None) -> bool:
    return role is not None


def can_edit(role: str | None) -> bool:
    return role in EDIT_ROLES


def can_manage(role: str | None) -> bool:
    """Rename, delete, change members: the owner only."""
    return role == Role.OWNER
