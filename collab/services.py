"""Writes to documents. Each commits, then broadcasts (DESIGN sections 5 and 6).

    result = operation_submit(
        document_id=42, base_version=7, op=[3, "hi"], client_id="c-9f2", seq=12, user=user
    )
    result.version      # the version this op produced; the same for a resubmission

Ops on one document are serialised by a row lock on the document, so any number of workers
may submit to it at once; an op made at an older version is transformed through every op
committed after it, as ShareDB's server does.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from collab import ot
from collab.models import Document, DocumentMember, DocumentVersion, Operation, Role
from collab.permissions import can_edit, can_manage
from collab.selectors import (
    content_at,
    document_for_user,
    op_applied_data,
    operations_between,
)
from comments.services import target_threads_delete
from config.errors import AppError, ErrorCode
from config.members import member_delete, member_upsert
from config.realtime.broadcast import broadcast_on_commit
from config.realtime.groups import group_name
from monitoring import metrics
from monitoring.events import audit

MAX_CLIENT_ID = 64
MAX_TITLE = 200


def document_group(document_id: int) -> str:
    """The channel-layer group of a document's sockets, also the stream name of its ops."""
    return group_name("collab", "doc", document_id)


@dataclass(frozen=True, slots=True)
class OpResult:
    version: int
    duplicate: bool = False


# --- documents ---------------------------------------------------------------------------------


@transaction.atomic
def document_create(*, owner: Any, title: str, content: str = "") -> Document:
    """A new document owned by ``owner``; initial content is its first op, so replaying the
    stored ops from an empty text always gives the snapshot."""
    document = Document.objects.create(title=_title(title), owner=owner)
    DocumentMember.objects.create(document=document, user=owner, role=Role.OWNER)
    if content:
        _check_size(len(content))
        ot.validate([content], doc_length=0)
        _commit(document, [content], user=owner, client_id=f"create-{uuid.uuid4().hex}", seq=1)
    return document


def document_update(*, user: Any, document_id: int, title: str) -> Document:
    document, _ = document_for_user(user=user, document_id=document_id, need=can_manage)
    document.title = _title(title)
    document.save(update_fields=["title", "updated_at"])
    return document


@transaction.atomic
def document_delete(*, user: Any, document_id: int) -> None:
    document, _ = document_for_user(user=user, document_id=document_id, need=can_manage)
    # Comment threads name their target by id, not by foreign key: they go in this transaction.
    target_threads_delete(target_kind="document", target_id=document.pk)
    audit("document_deleted", actor=user, document_id=document.pk, title=document.title)
    document.delete()


def _name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_TITLE:
        raise AppError(ErrorCode.INVALID, f"'name' must be 1 to {MAX_TITLE} characters.")
    return name.strip()


def _title(title: object) -> str:
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
        raise AppError(ErrorCode.INVALID, f"'title' must be 1 to {MAX_TITLE} characters.")
    return title.strip()


# --- members -----------------------------------------------------------------------------------


@transaction.atomic
def member_set(*, user: Any, document_id: int, member_id: int, role: str) -> DocumentMember:
    """Add a member or change their role (owner only). A document always keeps one owner."""
    document, _ = document_for_user(user=user, document_id=document_id, need=can_manage)
    member, changed = member_upsert(
        DocumentMember, document, member_id=member_id, role=role, noun="document"
    )
    if changed:
        audit(
            "document_member_set", actor=user, document_id=document.pk, user_id=member_id, role=role
        )
    return member


@transaction.atomic
def member_remove(*, user: Any, document_id: int, member_id: int) -> None:
    document, _ = document_for_user(user=user, document_id=document_id, need=can_manage)
    member_delete(DocumentMember, document, member_id=member_id, noun="document")
    audit("document_member_removed", actor=user, document_id=document.pk, user_id=member_id)


# --- operations --------------------------------------------------------------------------------


def operation_submit(
    *, document_id: int, base_version: object, op: object, client_id: object, seq: object, user: Any
) -> OpResult:
    """Commit one op (DESIGN section 6), or answer a resubmission with its original result."""
    _check_submission(base_version, client_id, seq)
    ot.validate(op)
    started = time.perf_counter()
    try:
        result = _submit(document_id, base_version, op, client_id, seq, user)  # type: ignore[arg-type]
    except IntegrityError:
        # Two sockets resubmitting one (client_id, seq) at once: the loser finds the winner.
        result = _submit(document_id, base_version, op, client_id, seq, user)  # type: ignore[arg-type]
    metrics.OP_COMMIT_SECONDS.observe(time.perf_counter() - started)
    return result


@transaction.atomic
def _submit(
    document_id: int, base_version: int, op: list, client_id: str, seq: int, user: Any
) -> OpResult:
    # The row lock serialises submits to one document across every worker.
    document, _ = document_for_user(user=user, document_id=document_id, need=can_edit, lock=True)
    committed = (
        Operation.objects.filter(document=document, client_id=client_id, seq=seq)
        .values_list("version", flat=True)
        .first()
    )
    if committed is not None:
        return OpResult(version=committed, duplicate=True)
    if base_version > document.version:
        raise AppError(
            ErrorCode.CONFLICT,
            f"Base version {base_version} is newer than the document ({document.version}).",
        )
    if base_version < document.version:
        concurrent = operations_between(document_id=document.pk, after=base_version)
        if not concurrent or concurrent[0].version != base_version + 1:
            raise AppError(ErrorCode.CONFLICT, "Base version is older than the kept history.")
        for other in concurrent:
            op = ot.transform(op, other.op, "left")
    version = _commit(document, op, user=user, client_id=client_id, seq=seq)
    return OpResult(version=version)


def _commit(document: Document, op: list, *, user: Any, client_id: str, seq: int) -> int:
    """Apply, store, snapshot now and then, and broadcast after commit. Caller holds the lock."""
    content = ot.apply(document.content, op)
    _check_size(len(content))
    document.content = content
    document.version += 1
    document.save(update_fields=["content", "version", "updated_at"])
    operation = Operation.objects.create(
        document=document,
        version=document.version,
        op=ot.normalize(op),
        author=user,
        client_id=client_id,
        seq=seq,
    )
    if document.version % settings.COLLAB_SNAPSHOT_EVERY == 0:
        DocumentVersion.objects.create(document=document, version=document.version, content=content)
    group = document_group(document.pk)
    broadcast_on_commit(
        group,
        "collab.op.applied",
        op_applied_data(operation),
        stream=group,
        seq=document.version,
        dedupe=True,
    )
    return document.version


def _check_submission(base_version: object, client_id: object, seq: object) -> None:
    if type(base_version) is not int or base_version < 0:
        raise AppError(ErrorCode.INVALID, "'version' must be the version the op was made at.")
    # NUL: PostgreSQL text cannot hold it, and the insert would fail as an internal error.
    if (
        not isinstance(client_id, str)
        or not 1 <= len(client_id) <= MAX_CLIENT_ID
        or "\x00" in client_id
    ):
        raise AppError(ErrorCode.INVALID, f"'client_id' must be 1 to {MAX_CLIENT_ID} characters.")
    if type(seq) is not int or not 0 < seq < 2**53:
        raise AppError(ErrorCode.INVALID, "'seq' must be a positive integer.")


def _check_size(length: int) -> None:
    if length > settings.COLLAB_MAX_DOCUMENT_CHARS:
        raise AppError(
            ErrorCode.TOO_LARGE,
            f"Documents are limited to {settings.COLLAB_MAX_DOCUMENT_CHARS} characters.",
        )


# --- versions ----------------------------------------------------------------------------------


@transaction.atomic
def version_create(*, user: Any, document_id: int, name: str) -> DocumentVersion:
    """Name the current text, so it can be found and restored later."""
    document, _ = document_for_user(user=user, document_id=document_id, need=can_edit, lock=True)
    return DocumentVersion.objects.create(
        document=document,
        version=document.version,
        content=document.content,
        name=_name(name),
        created_by=user,
    )


@transaction.atomic
def version_restore(*, user: Any, document_id: int, version: int) -> OpResult:
    """Bring back the text of ``version`` as a new op: every client converges on it as on any
    other edit, and history keeps what was undone."""
    document, _ = document_for_user(user=user, document_id=document_id, need=can_edit, lock=True)
    old = content_at(document=document, version=version)
    if old == document.content:
        return OpResult(version=document.version, duplicate=True)
    op = ot.normalize([part for part in (-len(document.content), old) if part])
    client_id = f"restore-{uuid.uuid4().hex}"
    return OpResult(version=_commit(document, op, user=user, client_id=client_id, seq=1))
