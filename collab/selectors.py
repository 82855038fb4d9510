"""Reads of documents, with the permission check every caller needs.

document, role = document_for_user(user=user, document_id=42, need=can_edit)
ops = operations_between(document_id=42, after=7, upto=12)   # versions 8..12, in order
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from django.db.models import F, QuerySet
from django.db.models.functions import Length

from collab import ot
from collab.models import Document, DocumentMember, DocumentVersion, Operation
from collab.permissions import can_view
from comments.targets import Anchor
from config.errors import AppError, ErrorCode
from config.realtime.resume import MAX_REPLAY, gap_free, replayable


def document_role(*, user: Any, document_id: int) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        DocumentMember.objects.filter(document_id=document_id, user_id=user.pk)
        .values_list("role", flat=True)
        .first()
    )


def document_roles(document_id: int, user_ids: Collection[int]) -> dict[int, str]:
    """The roles of these users on a document, for those who have one (comments' mentions)."""
    members = DocumentMember.objects.filter(document_id=document_id, user_id__in=list(user_ids))
    return dict(members.values_list("user_id", "role"))


def document_for_user(
    *,
    user: Any,
    document_id: int,
    need: Callable[[str | None], bool] = can_view,
    lock: bool = False,
) -> tuple[Document, str]:
    """The document and the user's role, in one query; NOT_FOUND if they may not see it,
    FORBIDDEN if they may see it but not do what ``need`` asks. ``lock`` takes the document's
    row lock (inside a transaction), which serialises writes to it across workers."""
    documents = Document.objects.all()
    if lock:
        documents = documents.select_for_update(of=("self",))
    document = (
        documents.filter(pk=document_id, members__user_id=user.pk)
        .annotate(role=F("members__role"))
        .first()
        if getattr(user, "is_authenticated", False)
        else None
    )
    role = None if document is None else document.role
    if not can_view(role):
        raise AppError(ErrorCode.NOT_FOUND, "No such document.")
    if not need(role):
        raise AppError(ErrorCode.FORBIDDEN, "Your role on this document does not allow that.")
    return document, role  # type: ignore[return-value]


def documents_for_user(*, user: Any) -> QuerySet[Document]:
    return Document.objects.filter(members__user_id=user.pk).select_related("owner")


def operations_between(*, document_id: int, after: int, upto: int | None = None) -> list[Operation]:
    """Committed ops with ``after < version <= upto``, in order."""
    ops = Operation.objects.filter(document_id=document_id, version__gt=after)
    if upto is not None:
        ops = ops.filter(version__lte=upto)
    return list(ops.select_related("author").order_by("version"))


def oldest_kept_version(*, document_id: int) -> int:
    """The version before the oldest op still stored: history reaches back to here."""
    first = (
        Operation.objects.filter(document_id=document_id)
        .order_by("version")
        .values_list("version", flat=True)
        .first()
    )
    return 0 if first is None else first - 1


def content_at(*, document: Document, version: int) -> str:
    """The document's text at ``version``: the nearest saved snapshot, then the ops after it."""
    if not 0 <= version <= document.version:
        raise AppError(ErrorCode.NOT_FOUND, f"This document has versions 0 to {document.version}.")
    if version == document.version:
        return document.content
    snapshot = (
        DocumentVersion.objects.filter(document=document, version__lte=version)
        .order_by("-version")
        .values_list("version", "content")
        .first()
    )
    start, text = snapshot if snapshot is not None else (0, "")
    if start < oldest_kept_version(document_id=document.pk):
        raise AppError(ErrorCode.NOT_FOUND, "That version is older than the kept history.")
    for operation in operations_between(document_id=document.pk, after=start, upto=version):
        text = ot.apply(text, operation.op)
    return text


def op_applied_data(operation: Operation) -> dict[str, Any]:
    """The data of ``collab.op.applied``, the same whether broadcast or replayed."""
    author = operation.author
    return {
        "op": operation.op,
        "version": operation.version,
        "client_id": operation.client_id,
        "seq": operation.seq,
        "author": None if author is None else {"id": author.pk, "username": author.get_username()},
    }


@dataclass(frozen=True, slots=True)
class Opening:
    """What a socket gets on join: the snapshot, or the ops it missed since ``since``."""

    version: int
    content: str | None  # None: replay ``missed`` instead
    missed: list[Operation]


def document_open(*, document_id: int, since: int | None) -> Opening:
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such document.")
    current = document.version
    if replayable(since, current, MAX_REPLAY):
        missed = operations_between(document_id=document_id, after=since, upto=current)
        if gap_free([op.version for op in missed], since, current):  # type: ignore[arg-type]
            return Opening(version=current, content=None, missed=missed)
    return Opening(version=current, content=document.content, missed=[])


def anchors_moved(document_id: int, anchors: list[Anchor]) -> list[Anchor]:
    """Ranges of the text at older versions, moved through every later op to the current
    version (one read of the ops for all of them). NOT_FOUND for a document that does not exist;
    INVALID for a version the document never had, or a range past the end of the text there;
    CONFLICT for a version older than the kept history."""
    document = (
        Document.objects.filter(pk=document_id)
        .annotate(length=Length("content"))
        .values("version", "length")
        .first()
    )
    if document is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such document.")
    current, length = document["version"], document["length"]
    if any(anchor.version > current for anchor in anchors):
        raise AppError(ErrorCode.INVALID, f"The document is at version {current}.")
    oldest = min((anchor.version for anchor in anchors), default=current)
    # ``upto``: ops committed since the document was read would not fit ``current`` and
    # ``length``, and would fail the count below as if history were missing.
    later = (
        operations_between(document_id=document_id, after=oldest, upto=current)
        if oldest < current
        else []
    )
    if len(later) != current - oldest:
        raise AppError(ErrorCode.CONFLICT, "That version is older than the kept history.")
    moved = []
    for anchor in anchors:
        start, end = anchor.start, anchor.end
        for operation in later[anchor.version - oldest :]:
            # Text typed at either edge of a range stays outside it: the start moves past an
            # insert there, the end stays before one. A point stays before text typed at it.
            point = start == end
            start = ot.transform_cursor(start, operation.op, is_own_op=not point)
            end = start if point else max(start, ot.transform_cursor(end, operation.op))
        if end > length:
            raise AppError(ErrorCode.INVALID, "The anchor reaches past the end of the text.")
        moved.append(Anchor(start=start, end=end, version=current))
    return moved
