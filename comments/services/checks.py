"""Checks of a write's input, shared by the services.

    text = _text(body, code, code_language)  # Text(body, code, code_language lowercased)
    key = _client_msg_id(client_msg_id)      # 1 to MAX_CLIENT_MSG_ID characters
    thread_id = _id(thread_id, "thread_id")  # a positive integer that fits a bigint

Each returns the value it checked, or raises ``AppError`` INVALID or TOO_LARGE.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from comments.models import MAX_BODY, ReactionKind
from config.errors import AppError, ErrorCode

MAX_CLIENT_MSG_ID = 64
MAX_CODE_LANGUAGE = 32


@dataclass(frozen=True, slots=True)
class Text:
    body: str
    code: str
    code_language: str


def _text(body: object, code: object = "", code_language: object = "") -> Text:
    if not isinstance(body, str) or not body.strip():
        raise AppError(ErrorCode.INVALID, "'body' must be text and not empty.")
    if len(body) > MAX_BODY:
        raise AppError(ErrorCode.TOO_LARGE, f"'body' is limited to {MAX_BODY} characters.")
    code = "" if code is None else code
    code_language = "" if code_language is None else code_language
    if not isinstance(code, str) or not isinstance(code_language, str):
        raise AppError(ErrorCode.INVALID, "'code' and 'code_language' must be text.")
    if len(code) > settings.COMMENTS_MAX_CODE_CHARS:
        limit = settings.COMMENTS_MAX_CODE_CHARS
        raise AppError(ErrorCode.TOO_LARGE, f"'code' is limited to {limit} characters.")
    if len(code_language) > MAX_CODE_LANGUAGE or not all(
        ch.isascii() and (ch.isalnum() or ch in "+#-._") for ch in code_language
    ):
        raise AppError(ErrorCode.INVALID, "'code_language' must be up to 32 of [A-Za-z0-9+#-._].")
    if code_language and not code:
        raise AppError(ErrorCode.INVALID, "'code_language' needs 'code'.")
    if "\x00" in body or "\x00" in code:  # PostgreSQL text cannot hold NUL: a DataError, a 500
        raise AppError(ErrorCode.INVALID, "'body' and 'code' must not contain NUL characters.")
    return Text(body=body, code=code, code_language=code_language.lower())


def _client_msg_id(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CLIENT_MSG_ID or "\x00" in value:
        raise AppError(
            ErrorCode.INVALID, f"'client_msg_id' must be 1 to {MAX_CLIENT_MSG_ID} characters."
        )
    return value


def _id(value: object, name: str) -> int:
    if type(value) is not int or not 0 < value < 2**63:
        raise AppError(ErrorCode.INVALID, f"'{name}' must be a positive integer.")
    return value


def _reaction_kind(value: object) -> str:
    if value not in ReactionKind.values:
        raise AppError(
            ErrorCode.INVALID, f"'kind' must be one of: {', '.join(ReactionKind.values)}."
        )
    return value  # type: ignore[return-value]
