"""The WebSocket envelope: one frame shape for every app (DESIGN section 4). Pure.

Client -> server, a command (``id`` may be left out for fire-and-forget signals):

    {"id": "c17", "type": "collab.op.submit", "data": {"version": 3, "op": [1, "hi"]}}

Server -> client, a reply or an event:

    {"type": "ack", "id": "c17", "data": {"version": 4}}
    {"type": "error", "id": "c17", "error": {"code": "rate_limited", "message": "..."}}
    {"type": "collab.op.applied", "stream": "collab.doc.42", "seq": 108, "data": {...}}

``parse_command`` turns raw frame text into a ``Command`` or raises ``AppError`` with a stable
code; nothing a client sends can make it raise anything else. Usage:

    command = parse_command(text, limits=Limits())
    frame = encode_ack(command.id, {"version": 4})
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from config.errors import AppError, ErrorCode

# \Z, not $: "$" also matches before a trailing newline.
TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_]{0,31}){1,2}\Z")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
# JSON escapes can produce lone surrogates, which no UTF-8 encoder downstream (channel layer,
# PostgreSQL, Daphne) accepts.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# JavaScript clients cannot hold integers beyond 2**53 exactly; refusing them keeps every client
# seeing the same number the server stored.
MAX_SAFE_INTEGER = 2**53 - 1
ENVELOPE_KEYS = frozenset({"id", "type", "data"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 65536
    max_depth: int = 32


@dataclass(frozen=True, slots=True)
class Command:
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


def parse_command(text: str | bytes, limits: Limits = Limits()) -> Command:
    """Validate one client frame. Raises AppError(BAD_JSON, TOO_LARGE, TOO_DEEP, BAD_FRAME...)."""
    if isinstance(text, bytes):
        if len(text) > limits.max_bytes:
            raise AppError(ErrorCode.TOO_LARGE, f"Frames are limited to {limits.max_bytes} bytes.")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise AppError(ErrorCode.BAD_JSON, "Frames must be UTF-8 JSON text.") from None
    # A str is at most 4 bytes per character; only count bytes when that bound is too coarse.
    too_long = len(text) * 4 > limits.max_bytes
    if too_long and len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise AppError(ErrorCode.TOO_LARGE, f"Frames are limited to {limits.max_bytes} bytes.")
    value = loads_strict(text)
    check_value(value, limits.max_depth)
    return _command_from(value)


def loads_strict(text: str) -> Any:
    """json.loads that refuses NaN/Infinity, duplicate keys and parser recursion blow-ups."""
    try:
        return json.loads(
            text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicate_keys
        )
    except RecursionError:
        raise AppError(ErrorCode.TOO_DEEP, "The message is nested too deeply.") from None
    except AppError:
        raise
    except ValueError:
        # Includes JSONDecodeError and Python's cap on huge integer literals.
        raise AppError(ErrorCode.BAD_JSON, "The message is not valid JSON.") from None


def check_value(value: Any, max_depth: int) -> None:
    """Refuse nesting deeper than max_depth, non-finite floats and unsafe integers.

    Iterative on purpose: a recursive walk is what a deep message is trying to overflow.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = [*node, *node.values()]  # keys too: they must be valid strings
        elif isinstance(node, list):
            children = node
        else:
            _check_scalar(node)
            continue
        if depth > max_depth:
            raise AppError(ErrorCode.TOO_DEEP, f"Messages may nest at most {max_depth} levels.")
        stack.extend((child, depth + 1) for child in children)


def _check_scalar(node: Any) -> None:
    if isinstance(node, str):
        if node.isascii() or not _LONE_SURROGATE.search(node):
            return
        raise AppError(ErrorCode.INVALID, "Strings must not contain lone surrogates.")
    if isinstance(node, bool) or node is None:
        return
    if isinstance(node, int):
        if -MAX_SAFE_INTEGER <= node <= MAX_SAFE_INTEGER:
            return
        raise AppError(ErrorCode.INVALID, "Integers must be within +/-(2**53 - 1).")
    if isinstance(node, float) and not math.isfinite(node):
        raise AppError(ErrorCode.INVALID, "Numbers must be finite.")


def _command_from(value: Any) -> Command:
    if not isinstance(value, dict):
        raise AppError(ErrorCode.BAD_FRAME, "A frame is a JSON object with 'type' and 'data'.")
    extra = value.keys() - ENVELOPE_KEYS
    if extra:
        raise AppError(ErrorCode.BAD_FRAME, f"Unexpected keys: {', '.join(sorted(extra))}.")
    command_id = value.get("id")
    if command_id is not None and not (
        isinstance(command_id, str) and ID_PATTERN.match(command_id)
    ):
        raise AppError(ErrorCode.BAD_FRAME, "'id' must be 1-64 characters of [A-Za-z0-9_.:-].")
    command_type = value.get("type")
    if not isinstance(command_type, str) or not TYPE_PATTERN.match(command_type):
        raise AppError(
            ErrorCode.BAD_FRAME, "'type' must look like 'app.entity.verb' or 'session.verb'."
        )
    data = value.get("data", {})
    if not isinstance(data, dict):
        raise AppError(ErrorCode.BAD_FRAME, "'data' must be a JSON object.")
    return Command(type=command_type, data=data, id=command_id)


def peek_id(text: str | bytes) -> str | None:
    """Best-effort command id of a frame that failed validation, so the error can name it."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    command_id = value.get("id") if isinstance(value, dict) else None
    return command_id if isinstance(command_id, str) and ID_PATTERN.match(command_id) else None


def _refuse_constant(name: str) -> Any:
    raise AppError(ErrorCode.INVALID, f"{name} is not a number this protocol accepts.")


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise AppError(ErrorCode.BAD_JSON, "An object repeats a key.")
    return result


# Server -> client frames. Compact separators: these go out once per delivery.
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_ack(command_id: str | None, data: dict[str, Any] | None = None) -> str:
    return _dumps({"type": "ack", "id": command_id, "data": data or {}})


def encode_error(command_id: str | None, error: AppError) -> str:
    return _dumps({"type": "error", "id": command_id, "error": error.as_payload()})


def encode_event(
    event_type: str, data: dict[str, Any], *, stream: str | None = None, seq: int | None = None
) -> str:
    frame: dict[str, Any] = {"type": event_type}
    if stream is not None:
        frame["stream"] = stream
    if seq is not None:
        frame["seq"] = seq
    frame["data"] = data
    return _dumps(frame)
