"""Fuzz a client frame from the socket to the point where a handler would call the database.

The bytes are one WebSocket frame: text when they are UTF-8 (what Daphne hands a consumer),
else bytes. ``parse_command`` with the consumers' Limits turns it into a command or refuses it
with a parser code; ``peek_id`` never fails. A command of a known type then goes through the pure
input checks its handler and service run before the database (``VALIDATORS``, one entry per
command of every routed consumer; None where the handler checks inline). They may refuse with
``AppError`` of any code but internal/unavailable; what they accept must fit where it is stored.

    python -m tests.fuzz.harness_envelope .fuzz/envelope -max_total_time=60
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.fuzz.common import SERVER_FAULTS, django_setup, expect, fuzz, instrumented

with instrumented(__name__ == "__main__"):
    django_setup()
    from collab import ot
    from collab.consumers import _cursor_input
    from collab.models import Operation
    from collab.services import _check_size, _check_submission
    from comments.mentions import MAX_MENTIONS, mentioned_usernames
    from comments.models import Comment
    from comments.services.checks import _client_msg_id, _id, _reaction_kind, _text
    from config.errors import AppError, ErrorCode
    from config.realtime.consumer import RealtimeConsumer
    from config.realtime.envelope import ID_PATTERN, TYPE_PATTERN, parse_command, peek_id
    from forms_live import merge
    from forms_live.models import FormChange, FormField
    from forms_live.services import checks as form_checks
    from forms_live.services.builder import _check_definition
    from forms_live.validation import CODES, FieldSpec, check_value, progress
    from monitoring.consumers import _choices
    from monitoring.models import EventKind, Severity
    from presence.consumers import _choice, _label, _user_ids
    from presence.rooms import parse_room, parse_room_state

Validator = Callable[[dict[str, Any]], None]

LIMITS = RealtimeConsumer._limits()
PARSER_CODES = frozenset(
    {
        ErrorCode.BAD_JSON,
        ErrorCode.BAD_FRAME,
        ErrorCode.TOO_LARGE,
        ErrorCode.TOO_DEEP,
        ErrorCode.INVALID,
    }
)
# A document and the op committed while the client's op was in flight: the server moves every
# submitted op and cursor past it, as it does past any op newer than the client's base.
DOCUMENT = "Hello, w\u00f6rld \U0001f44b\n"
COMMITTED = [7, -1, "W", 6, "!"]  # "Hello, W\u00f6rld \U0001f44b!\n"


def fits(model: Any, field: str, value: str) -> None:
    """A string a check accepted fits its column (PostgreSQL refuses a longer one: a 500)."""
    limit = model._meta.get_field(field).max_length
    expect(len(value) <= limit, f"{model.__name__}.{field} takes {limit} characters", value)


# --- collab ----------------------------------------------------------------------------------


def op_submit(data: dict[str, Any]) -> None:
    _check_submission(data.get("version"), data.get("client_id"), data.get("seq"))
    fits(Operation, "client_id", data["client_id"])
    op = data.get("op")
    ot.validate(op)
    moved = ot.transform(op, COMMITTED, "left")
    content = ot.apply(ot.apply(DOCUMENT, COMMITTED), moved)
    _check_size(len(content))
    ot.normalize(moved)


def cursor_set(data: dict[str, Any]) -> None:
    _, cursor, selection, client_id = _cursor_input(data)
    if client_id is not None:
        fits(Operation, "client_id", client_id)
    for position in (cursor, *selection):
        moved = ot.transform_cursor(position, COMMITTED)
        expect(moved >= 0, "a cursor moved before the start", position, moved)


# --- presence --------------------------------------------------------------------------------


def status_set(data: dict[str, Any]) -> None:
    _choice(data.get("status"))


def activity_set(data: dict[str, Any]) -> None:
    _label(data, "activity")
    _label(data, "location")


def room_join(data: dict[str, Any]) -> None:
    parse_room(data.get("room"))
    parse_room_state(data.get("state", "viewing"))


def room_update(data: dict[str, Any]) -> None:
    parse_room_state(data.get("state"))


def users_watch(data: dict[str, Any]) -> None:
    ids = _user_ids(data)
    expect(len(ids) == len(set(ids)), "watched ids repeat", ids)


# --- comments --------------------------------------------------------------------------------


def comment_create(data: dict[str, Any]) -> None:
    text = _text(data.get("body"), data.get("code", ""), data.get("code_language", ""))
    fits(Comment, "code_language", text.code_language)
    fits(Comment, "client_msg_id", _client_msg_id(data.get("client_msg_id")))
    if data.get("parent_id") is not None:
        _id(data["parent_id"], "parent_id")
    names = mentioned_usernames(text.body)
    expect(len(names) <= MAX_MENTIONS, "too many mentions", names)


def comment_edit(data: dict[str, Any]) -> None:
    _id(data.get("comment_id"), "comment_id")
    # None keeps the stored snippet; an empty one stands in for it here.
    code, language = data.get("code"), data.get("code_language")
    text = _text(data.get("body"), "" if code is None else code, language or "")
    fits(Comment, "code_language", text.code_language)


def comment_delete(data: dict[str, Any]) -> None:
    _id(data.get("comment_id"), "comment_id")


def reaction_set(data: dict[str, Any]) -> None:
    _reaction_kind(data.get("kind"))
    _id(data.get("comment_id"), "comment_id")


# --- forms -----------------------------------------------------------------------------------

# A field of each type, as a respondent's values meet them (FormFillConsumer).
FORM_FIELDS = {
    spec.key: spec
    for spec in (
        FieldSpec("name", "text", True, {"min_length": 2, "max_length": 40, "pattern": "[A-Z].*"}),
        FieldSpec("bio", "long_text", rules={"max_length": 500}),
        FieldSpec("age", "number", True, {"min": 18, "max": 130, "integer": True}),
        FieldSpec("email", "email", True, {"max_length": 80}),
        FieldSpec("colour", "single_choice", options=("red", "green")),
        FieldSpec("tags", "multiple_choice", rules={"max_selected": 2}, options=("a", "b", "c")),
        FieldSpec("agree", "checkbox", True),
        FieldSpec("day", "date", rules={"min": "2024-01-01", "max": "2024-12-31"}),
    )
}
# A field property's value at the change's base and now, for field.change under "merge".
PROPERTY_HISTORY = {
    "label": ("Name", "Full name"),
    "help": ("", "As on your passport"),
    "options": (["red", "green"], ["red", "green", "blue"]),
}


def change_checks(data: dict[str, Any]) -> None:
    form_checks.revision(data.get("base_revision"))
    fits(FormChange, "client_msg_id", form_checks.client_msg_id(data.get("client_msg_id")))


def field_add(data: dict[str, Any]) -> None:
    change_checks(data)
    key = form_checks.field_key(data.get("key"))
    fits(FormField, "key", key)
    rules, options = data.get("rules"), data.get("options")  # None: not given, as in the service
    given = {
        "type": data.get("type"),
        "label": data.get("label"),
        "help": data.get("help", ""),
        "required": data.get("required", False),
        "rules": {} if rules is None else rules,
        "options": [] if options is None else options,
    }
    values = {prop: form_checks.prop_value(prop, value) for prop, value in given.items()}
    fits(FormField, "label", values["label"])
    _check_definition(values["type"], values["rules"], values["options"])
    if data.get("position") is not None:
        form_checks.position(data["position"])
    # check_definition's promise: a field it passes takes any value without failing.
    spec = FieldSpec(
        key, values["type"], values["required"], values["rules"], tuple(values["options"])
    )
    for value in data.values():
        answer_check(spec, value)


def field_remove(data: dict[str, Any]) -> None:
    change_checks(data)
    form_checks.field_key(data.get("key"))


def field_move(data: dict[str, Any]) -> None:
    field_remove(data)
    form_checks.position(data.get("position"))


def field_change(data: dict[str, Any]) -> None:
    field_remove(data)
    prop = data.get("prop")
    proposed = form_checks.prop_value(prop, data.get("value"))
    if prop == "label":
        fits(FormField, "label", proposed)
    if prop in PROPERTY_HISTORY:
        base, current = PROPERTY_HISTORY[prop]
        kind = form_checks.PROP_KIND[prop]
        decision = merge.decide(
            "merge", kind, base=base, current=current, proposed=proposed, concurrent=True
        )
        merged = form_checks.prop_value(prop, decision.value)  # as _set checks it again
        if prop == "label":
            fits(FormField, "label", merged)


def conflict_resolve(data: dict[str, Any]) -> None:
    form_checks.client_msg_id(data.get("client_msg_id"))


def form_change(data: dict[str, Any]) -> None:
    change_checks(data)
    form_checks.form_prop_value(data.get("prop"), data.get("value"))


def answer_check(spec: FieldSpec, value: Any) -> None:
    codes = check_value(spec, value)
    expect(set(codes) <= set(CODES), "a code outside validation.CODES", spec, value, codes)


def submission_update(data: dict[str, Any]) -> None:
    values = data.get("values")
    if not isinstance(values, dict):
        return  # refused inline by the service
    for key, value in values.items():
        if key in FORM_FIELDS:
            answer_check(FORM_FIELDS[key], value)
    share = progress(list(FORM_FIELDS.values()), values)
    expect(0 <= share <= 100, "progress out of 0..100", share)


# --- monitoring ------------------------------------------------------------------------------


def events_filter(data: dict[str, Any]) -> None:
    _choices(data.get("kinds", []), EventKind.values, "kinds")
    _choices(data.get("severities", []), Severity.values, "severities")


# Every command of every routed consumer (tests/unit/test_fuzz_harnesses.py checks the set).
# None: the handler checks its input inline, or takes none.
VALIDATORS: dict[str, Validator | None] = {
    "session.heartbeat": None,
    "collab.op.submit": op_submit,
    "collab.cursor.set": cursor_set,
    "presence.status.set": status_set,
    "presence.activity.set": activity_set,
    "presence.room.join": room_join,
    "presence.room.update": room_update,
    "presence.room.leave": None,
    "presence.user.watch": users_watch,
    "presence.user.unwatch": users_watch,
    "presence.signal.send": None,
    "comments.comment.create": comment_create,
    "comments.comment.edit": comment_edit,
    "comments.comment.delete": comment_delete,
    "comments.reaction.add": reaction_set,
    "comments.reaction.remove": reaction_set,
    "comments.thread.resolve": None,
    "comments.thread.reopen": None,
    "comments.typing.start": None,
    "comments.typing.stop": None,
    "comments.presence.set": None,
    "comments.notifications.read": None,
    "comments.target.watch": None,
    "comments.target.unwatch": None,
    "forms.field.add": field_add,
    "forms.field.remove": field_remove,
    "forms.field.move": field_move,
    "forms.field.change": field_change,
    "forms.field.focus": None,
    "forms.conflict.resolve": conflict_resolve,
    "forms.form.change": form_change,
    "forms.submission.update": submission_update,
    "forms.submission.submit": None,
    "monitoring.events.filter": events_filter,
}


def TestOneInput(data: bytes) -> None:
    try:
        frame: str | bytes = data.decode("utf-8")
    except UnicodeDecodeError:
        frame = data
    found = peek_id(frame)
    expect(found is None or bool(ID_PATTERN.match(found)), "peek_id found a bad id", found)
    try:
        command = parse_command(frame, LIMITS)
    except AppError as error:
        expect(error.code in PARSER_CODES, "the parser refused with a foreign code", error.code)
        return
    expect(bool(TYPE_PATTERN.match(command.type)), "a bad type passed", command.type)
    expect(command.id is None or bool(ID_PATTERN.match(command.id)), "a bad id passed")
    expect(isinstance(command.data, dict), "data is not an object", command.data)
    validate = VALIDATORS.get(command.type)
    if validate is None:
        return
    try:
        validate(command.data)
    except AppError as error:
        expect(error.code.value not in SERVER_FAULTS, "client input earned a server fault")


def _frame(type_: str, data: dict[str, Any], command_id: str | None = "c1") -> bytes:
    return json.dumps({"id": command_id, "type": type_, "data": data}).encode()


# One accepted command of each type with a validator, and a few near misses: the fuzzer
# mutates from inside every validator instead of first having to guess a type.
SEEDS = [
    _frame("session.heartbeat", {"active": True}, None),
    _frame("collab.op.submit", {"version": 3, "op": [5, "!", -2], "client_id": "c", "seq": 1}),
    _frame("collab.cursor.set", {"version": 3, "cursor": 9, "selection": [2, 9]}),
    _frame("presence.status.set", {"status": "busy"}),
    _frame("presence.activity.set", {"activity": "reading", "location": "docs"}),
    _frame("presence.room.join", {"room": "lobby.main", "state": "editing:email"}),
    _frame("presence.room.join", {"room": "document.42"}),
    _frame("presence.room.update", {"room": "lobby.main", "state": "typing"}),
    _frame("presence.user.watch", {"ids": [1, 2, 2]}),
    _frame("presence.user.unwatch", {"ids": [2]}),
    _frame(
        "comments.comment.create",
        {
            "body": "thanks @ada and @bob.smith, cc @ada!",
            "client_msg_id": "m1",
            "parent_id": 7,
            "code": "x = 1",
            "code_language": "Python",
        },
    ),
    _frame("comments.comment.edit", {"comment_id": 7, "body": "edited", "code": None}),
    _frame("comments.comment.delete", {"comment_id": 7}),
    _frame("comments.reaction.add", {"comment_id": 7, "kind": "like"}),
    _frame("comments.reaction.remove", {"comment_id": 7, "kind": "like"}),
    _frame(
        "forms.field.add",
        {
            "base_revision": 3,
            "client_msg_id": "f1",
            "key": "size",
            "type": "multiple_choice",
            "label": "Size",
            "help": "Pick",
            "required": True,
            "rules": {"min_selected": 1, "max_selected": 2},
            "options": ["s", "m", "l"],
            "position": 0,
        },
    ),
    _frame(
        "forms.field.add",
        {
            "base_revision": 0,
            "client_msg_id": "f2",
            "key": "code",
            "type": "text",
            "label": "Code",
            "rules": {"pattern": "[A-Z]{2}[0-9]+", "min_length": 3},
        },
    ),
    _frame("forms.field.remove", {"base_revision": 3, "client_msg_id": "f3", "key": "size"}),
    _frame(
        "forms.field.move",
        {"base_revision": 3, "client_msg_id": "f4", "key": "size", "position": 2},
    ),
    _frame(
        "forms.field.change",
        {"base_revision": 3, "client_msg_id": "f5", "key": "n", "prop": "label", "value": "N?"},
    ),
    _frame(
        "forms.field.change",
        {
            "base_revision": 3,
            "client_msg_id": "f6",
            "key": "colour",
            "prop": "options",
            "value": ["green", "pink"],
        },
    ),
    _frame(
        "forms.conflict.resolve",
        {"client_msg_id": "f8", "conflict_id": 1, "resolution": "custom", "value": "x"},
    ),
    _frame(
        "forms.form.change",
        {"base_revision": 3, "client_msg_id": "f7", "prop": "status", "value": "published"},
    ),
    _frame(
        "forms.submission.update",
        {
            "values": {
                "name": "Ada",
                "age": 36.5,
                "email": "ada@example.com",
                "tags": ["a", "c"],
                "agree": True,
                "day": "2024-02-29",
            }
        },
    ),
    _frame("monitoring.events.filter", {"kinds": ["login_failed"], "severities": "warning"}),
    b'{"type": "x.y", "data": {"a": [[[1e400]]]}}',
    b'{"id": "\\ud800", "type": "presence.status.set", "data": {"status": "away"}}',
]


if __name__ == "__main__":
    fuzz(TestOneInput, SEEDS)
