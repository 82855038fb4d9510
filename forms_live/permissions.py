"""Who may do what with a form, by role. Shared by services, consumers, views and room rules.

Members build and watch (owner, editor) or only look (viewer); respondents are any signed-in
user, on a published form, and see only their own submission.
"""

from __future__ import annotations

from forms_live.models import Role

BUILD_ROLES = frozenset({Role.OWNER, Role.EDITOR})


def can_view(role: str | None) -> bool:
    return role is not None


def can_build(role: str | None) -> bool:
    """Change fields, resolve conflicts, watch the dashboard, move submissions on."""
    return role in BUILD_ROLES


def can_manage(role: str | None) -> bool:
    """Rename, publish, change the policy, members, delete: the owner only."""
    return role == Role.OWNER
