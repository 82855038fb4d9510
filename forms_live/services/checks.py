"""Input checks of builder and fill commands: the stable ``invalid`` answers."""

from __future__ import annotations

import re
from typing import Any

from config.errors import AppError, ErrorCode
from forms_live.models import MAX_KEY, MAX_TITLE, ConflictPolicy, FieldType, FormStatus

MAX_CLIENT_MSG_ID = 64
MAX_HELP = 2000
MAX_FIELDS = 200
_KEY = re.compile(rf"[a-z][a-z0-9_]{{0,{MAX_KEY - 1}}}")

# What each field property may hold, beyond what validation.check_definition says of the whole.
PROPS = ("type", "label", "help", "required", "rules", "options")
# How concurrent changes of a property combine under the "merge" policy (merge.KINDS).
PROP_KIND = {"label": "text", "help": "text", "options": "options"}
FORM_PROPS = {
    "title": "editor",
    "status": "owner",
    "conflict_policy": "owner",
    "anonymous": "owner",
}


def client_msg_id(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CLIENT_MSG_ID or "\x00" in value:
        raise AppError(
            ErrorCode.INVALID, f"'client_msg_id' must be 1 to {MAX_CLIENT_MSG_ID} characters."
        )
    return value


def revision(value: object) -> int:
    if type(value) is not int or not 0 <= value < 2**53:
        raise AppError(ErrorCode.INVALID, "'base_revision' must be the form revision you saw.")
    return value


def field_key(value: object) -> str:
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise AppError(
            ErrorCode.INVALID,
            f"'key' must be 1 to {MAX_KEY} of [a-z0-9_], starting with a letter.",
        )
    return value


def position(value: object) -> int:
    if type(value) is not int or not 0 <= value < MAX_FIELDS:
        raise AppError(ErrorCode.INVALID, f"'position' must be 0 to {MAX_FIELDS - 1}.")
    return value


def _text(name: str, value: object, *, low: int, high: int) -> str:
    # Blank does not count towards the minimum, but it is stored: a label's column holds
    # MAX_TITLE characters (PostgreSQL refuses more, a 500), so the maximum bounds it all.
    if not isinstance(value, str) or len(value) > high or len(value.strip()) < low:
        raise AppError(ErrorCode.INVALID, f"'{name}' must be text of {low} to {high} characters.")
    if "\x00" in value:
        raise AppError(ErrorCode.INVALID, f"'{name}' may not hold NUL characters.")
    return value


def prop_value(prop: object, value: object) -> Any:
    """A field property's new value, checked for its own shape (the field as a whole is
    checked with validation.check_definition)."""
    if prop == "type":
        if value not in FieldType.values:
            raise AppError(
                ErrorCode.INVALID, f"'type' must be one of: {', '.join(FieldType.values)}."
            )
        return value
    if prop == "label":
        return _text("label", value, low=1, high=MAX_TITLE)
    if prop == "help":
        return _text("help", value, low=0, high=MAX_HELP)
    if prop == "required":
        if not isinstance(value, bool):
            raise AppError(ErrorCode.INVALID, "'required' must be true or false.")
        return value
    if prop == "rules":
        if not isinstance(value, dict):
            raise AppError(ErrorCode.INVALID, "'rules' must be an object.")
        return value
    if prop == "options":
        if not isinstance(value, list) or not all(isinstance(o, str) for o in value):
            raise AppError(ErrorCode.INVALID, "'options' must be a list of strings.")
        return value
    raise AppError(ErrorCode.INVALID, f"'prop' must be one of: {', '.join(PROPS)}.")


def form_prop_value(prop: object, value: object) -> Any:
    if prop == "title":
        return _text("title", value, low=1, high=MAX_TITLE).strip()
    if prop == "status":
        if value not in FormStatus.values:
            raise AppError(
                ErrorCode.INVALID, f"'status' must be one of: {', '.join(FormStatus.values)}."
            )
        return value
    if prop == "conflict_policy":
        if value not in ConflictPolicy.values:
            raise AppError(
                ErrorCode.INVALID,
                f"'conflict_policy' must be one of: {', '.join(ConflictPolicy.values)}.",
            )
        return value
    if prop == "anonymous":
        if not isinstance(value, bool):
            raise AppError(ErrorCode.INVALID, "'anonymous' must be true or false.")
        return value
    raise AppError(ErrorCode.INVALID, f"'prop' must be one of: {', '.join(FORM_PROPS)}.")
