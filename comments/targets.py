"""What comment threads attach to, and who may do what there. Pure.

A thread's target is an object of another app, named by kind and id (``document`` 42). The app
that owns a kind registers, when it starts, how to read users' roles on its objects (owner,
editor or viewer, as on documents and forms) and, for text, how to move an anchor through later
edits. Comments import no app; a kind nobody registered has no threads.

    TARGET_KINDS.register(TargetKind("document", roles=document_roles, move_anchors=...))
    kind = TARGET_KINDS.get("document")
    kind.roles(42, [7, 9])        # {7: "owner"}: 9 may not see document 42

Comment visibility follows its target (DESIGN section 8): whoever may see the target may read
and write its threads; editors and owners, and the thread's author, resolve it; the target's
owner may delete anyone's comment there.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

OWNER, EDITOR, VIEWER = "owner", "editor", "viewer"


@dataclass(frozen=True, slots=True)
class Anchor:
    """Code points ``[start, end)`` of a text at ``version``."""

    start: int
    end: int
    version: int


# (target id, user ids) -> {user id: role} for those who may see the target.
RolesReader = Callable[[int, Collection[int]], dict[int, str]]
# (target id, anchors) -> each anchor moved to the target's current version, in the same order.
AnchorMover = Callable[[int, list[Anchor]], list[Anchor]]


@dataclass(frozen=True, slots=True)
class TargetKind:
    name: str  # "document", "form", "form_field"
    roles: RolesReader
    move_anchors: AnchorMover | None = None  # None: this kind has no text to anchor in

    def role(self, target_id: int, user_id: int) -> str | None:
        return self.roles(target_id, [user_id]).get(user_id)


class TargetKinds:
    def __init__(self) -> None:
        self._kinds: dict[str, TargetKind] = {}

    def register(self, kind: TargetKind) -> None:
        self._kinds[kind.name] = kind

    def get(self, name: str) -> TargetKind | None:
        return self._kinds.get(name)


TARGET_KINDS = TargetKinds()


def can_read(role: str | None) -> bool:
    return role is not None


def can_resolve(role: str | None, *, is_thread_author: bool) -> bool:
    return role in (OWNER, EDITOR) or (role is not None and is_thread_author)


def can_delete(role: str | None, *, is_comment_author: bool) -> bool:
    return role is not None and (is_comment_author or role == OWNER)
