"""Attachments: files on one's own comment, their type read from their bytes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction

from comments.files import HEAD_BYTES, sniff_content_type
from comments.models import Attachment
from comments.selectors import comment_of, comment_payload
from comments.services.comments import _editable, _live
from comments.services.events import Result, _append
from config.errors import AppError, ErrorCode

MAX_NAME = 200  # of an attachment


def attachment_add(
    *, user: Any, comment_id: object, upload: Any, in_thread: int | None = None
) -> Result:
    """A file on one's own comment: size and type (read from its bytes) within the settings.

    The file is written to storage before the row commits: if the transaction then fails,
    the file is removed again, so storage holds no file without its row."""
    stored: list[str] = []
    try:
        return _attachment_add(user, comment_id, upload, in_thread, stored)
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise


@transaction.atomic
def _attachment_add(
    user: Any, comment_id: object, upload: Any, in_thread: int | None, stored: list[str]
) -> Result:
    thread, _, comment = _editable(user, comment_id, in_thread)
    if comment.author_id != user.pk:
        raise AppError(ErrorCode.FORBIDDEN, "Only the author adds files to a comment.")
    _live(comment)
    limit = settings.COMMENTS_MAX_ATTACHMENT_BYTES
    if upload.size > limit:
        raise AppError(ErrorCode.TOO_LARGE, f"Files are limited to {limit} bytes.")
    if upload.size == 0:
        raise AppError(ErrorCode.INVALID, "The file is empty.")
    if comment.attachments.count() >= settings.COMMENTS_MAX_ATTACHMENTS:
        raise AppError(
            ErrorCode.INVALID, f"A comment holds at most {settings.COMMENTS_MAX_ATTACHMENTS} files."
        )
    name = (upload.name or "file").rsplit("/", 1)[-1][-MAX_NAME:]
    upload.seek(0)
    content_type = sniff_content_type(upload.read(HEAD_BYTES), name=name)
    upload.seek(0)
    if content_type not in settings.COMMENTS_ATTACHMENT_TYPES:
        allowed = ", ".join(settings.COMMENTS_ATTACHMENT_TYPES)
        raise AppError(ErrorCode.INVALID, f"Files must be one of: {allowed}.")
    attachment = Attachment(comment=comment, name=name, size=upload.size, content_type=content_type)
    attachment.file.save(upload.name or "file", upload, save=False)
    stored.append(attachment.file.name)
    attachment.save()
    payload = comment_payload(comment_of(comment.pk))
    return Result(
        payload, _append(thread, "comments.attachment.added", {"comment": payload}, comment=comment)
    )
