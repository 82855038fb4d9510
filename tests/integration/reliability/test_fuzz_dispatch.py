"""RELIABILITY.md P9 (the Hypothesis part): random frames at the envelope parser and at every
consumer, through the real ASGI app, Redis layer and PostgreSQL.

The parser property is pure: whatever text or bytes arrive, ``parse_command`` returns a valid
``Command`` or raises ``AppError`` with one of the parser's codes, and ``peek_id`` never raises.

The dispatch property holds for every routed consumer, on one socket per consumer. Frames:
PER_TYPE envelopes of each of its command types (the payload mostly valid but for one field),
then JUNK_EXAMPLES of text, binary, any JSON, random types and other consumers' types. Each is
answered by an ack, events, or an error frame with a stable code other than ``internal`` or
``unavailable``; the socket is never closed (1011 or otherwise); nothing is logged at ERROR or
with a traceback; and a heartbeat sent right after it is acknowledged. The fixed sweep of every
field of every command is in test_protocol_malformed.py (P6); this one explores what that list
did not think of.

Hypothesis runs in a worker thread and drives the sockets on the test's event loop, so one
socket serves every example (a handshake per example would cost more than the examples).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collab.consumers import DocumentConsumer
from comments.consumers import NotificationConsumer, ThreadConsumer
from config.errors import AppError, ErrorCode
from config.realtime.envelope import (
    ID_PATTERN,
    MAX_SAFE_INTEGER,
    TYPE_PATTERN,
    Limits,
    parse_command,
    peek_id,
)
from forms_live.consumers import FormDashboardConsumer, FormEditConsumer, FormFillConsumer
from monitoring.consumers import StaffEventsConsumer
from presence.consumers import PresenceConsumer
from tests.integration.reliability.test_protocol_malformed import (
    log_problems,
    make_world,
    routed_consumers,
    unlimited,  # noqa: F401 - a fixture, used by name
    valid_commands,
)
from tests.integration.ws import TIMEOUT

# Per consumer: this many frames of each of its command types, and this many of junk.
PER_TYPE = 15
JUNK_EXAMPLES = 15
PARSER_CODES = {
    ErrorCode.BAD_JSON,
    ErrorCode.BAD_FRAME,
    ErrorCode.TOO_LARGE,
    ErrorCode.TOO_DEEP,
    ErrorCode.INVALID,
}
# Error codes a random frame may earn; "internal" and "unavailable" are server faults here.
STABLE_CODES = {code.value for code in ErrorCode} - {"internal", "unavailable"}

# --- strategies -----------------------------------------------------------------------------


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats()  # NaN and infinities included: json.dumps writes them, the server refuses them
    | st.text(max_size=20)
)
ANY_JSON = st.recursive(SCALARS, containers, max_leaves=12)
# What the parser must accept and hand over unchanged.
SAFE_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
SAFE_JSON = st.recursive(SAFE_SCALARS, containers, max_leaves=12)
# The usual suspects for a field of the wrong type or size.
CONFUSERS = st.sampled_from(
    [None, True, False, 0, -1, 1.5, MAX_SAFE_INTEGER, "", "x" * 300, "\u0000", [], {}, [None]]
)
# A field's value: mostly one the parser lets through to the handler, where the field checks are.
FIELD_VALUES = st.one_of(CONFUSERS, SAFE_SCALARS, SAFE_JSON, ANY_JSON)
COMMAND_IDS = st.from_regex(ID_PATTERN, fullmatch=True) | ANY_JSON
RANDOM_TYPES = st.from_regex(TYPE_PATTERN, fullmatch=True) | st.text(max_size=24) | SCALARS


def payloads(valid: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A command's payload: valid but for one field (drawn most), any of its fields dropped or
    random, random fields of its names and others, or not an object at all."""
    one_field_off = st.sampled_from(sorted(valid)).flatmap(
        lambda key: FIELD_VALUES.map(lambda value: {**valid, key: value})
    )
    per_field = {key: st.just(value) | FIELD_VALUES for key, value in valid.items()}
    names = st.sampled_from(sorted(valid)) | st.text(max_size=8) if valid else st.text(max_size=8)
    return st.one_of(
        *([one_field_off] * 3 if valid else []),
        st.fixed_dictionaries({}, optional=per_field),
        st.dictionaries(names, FIELD_VALUES, max_size=5),
        ANY_JSON,
    )


def envelopes(type_: str, valid: dict[str, Any]) -> st.SearchStrategy[str]:
    """Frames of one known type: any id or none, the payload mostly nearly valid."""
    return st.fixed_dictionaries(
        {"type": st.just(type_), "data": payloads(valid)},
        optional={"id": COMMAND_IDS},
    ).map(json.dumps)


def random_envelopes() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"type": RANDOM_TYPES},
        optional={"id": COMMAND_IDS, "data": ANY_JSON, "zz": ANY_JSON},
    )


def junk_frames(other_types: list[str]) -> st.SearchStrategy[str | bytes]:
    """Anything but a command of the consumer's own: text, bytes, any JSON, random envelopes,
    and the other consumers' commands (unknown here)."""
    return st.one_of(
        st.text(max_size=80),
        st.binary(max_size=80),
        ANY_JSON.map(json.dumps),
        random_envelopes().map(json.dumps),
        st.builds(
            lambda type_, data: json.dumps({"type": type_, "id": "x", "data": data}),
            st.sampled_from(other_types),
            ANY_JSON,
        ),
    )


# --- the parser, pure -------------------------------------------------------------------------

RAW_FRAMES = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    ANY_JSON.map(json.dumps),
    random_envelopes().map(json.dumps),
)


@settings(max_examples=200, deadline=None)
@given(raw=RAW_FRAMES, max_depth=st.integers(min_value=1, max_value=6))
def test_parse_command_returns_a_command_or_raises_a_parser_error(raw, max_depth):
    try:
        command = parse_command(raw, Limits(max_bytes=256, max_depth=max_depth))
    except AppError as error:
        assert error.code in PARSER_CODES, error
    else:
        assert TYPE_PATTERN.match(command.type)
        assert command.id is None or ID_PATTERN.match(command.id)
        assert isinstance(command.data, dict)
    found = peek_id(raw)
    assert found is None or ID_PATTERN.match(found)


@settings(max_examples=100, deadline=None)
@given(
    envelope=st.fixed_dictionaries(
        {"type": st.from_regex(TYPE_PATTERN, fullmatch=True)},
        optional={
            "id": st.from_regex(ID_PATTERN, fullmatch=True),
            "data": st.dictionaries(st.text(max_size=8), SAFE_JSON, max_size=4),
        },
    ),
    as_bytes=st.booleans(),
)
def test_parse_command_hands_a_valid_envelope_over_unchanged(envelope, as_bytes):
    text = json.dumps(envelope)
    command = parse_command(text.encode() if as_bytes else text)
    assert (command.type, command.id, command.data) == (
        envelope["type"],
        envelope.get("id"),
        envelope.get("data", {}),
    )


# --- every consumer ---------------------------------------------------------------------------


async def exchange(comm: Any, frame: str | bytes, probe_id: str) -> list[str]:
    """Send the frame, then a heartbeat; what went wrong between them, until its ack."""
    key = "bytes" if isinstance(frame, bytes) else "text"
    await comm.send_input({"type": "websocket.receive", key: frame})
    await comm.send_to(text_data=json.dumps({"id": probe_id, "type": "session.heartbeat"}))
    problems = []
    while True:
        message = await comm.receive_output(timeout=TIMEOUT)
        if message["type"] == "websocket.close":
            return [*problems, f"socket closed with {message.get('code')}"]
        text = message.get("text") or ""
        reply = json.loads(text)
        if "Traceback" in text:
            problems.append(f"traceback in {text[:300]}")
        if reply.get("type") == "error" and reply["error"].get("code") not in STABLE_CODES:
            problems.append(f"error frame {reply}")
        if reply.get("id") == probe_id and reply.get("type") in ("ack", "error"):
            if reply["type"] != "ack":
                problems.append(f"the heartbeat after it was answered {reply}")
            return problems


SOCKETS = [
    (PresenceConsumer, "owner", "/ws/presence/"),
    (DocumentConsumer, "owner", "/ws/collab/documents/{document}/"),
    (ThreadConsumer, "owner", "/ws/comments/threads/{thread}/"),
    (NotificationConsumer, "owner", "/ws/comments/notifications/"),
    (FormEditConsumer, "owner", "/ws/forms/{form}/edit/"),
    (FormFillConsumer, "other", "/ws/forms/{form}/fill/"),
    (FormDashboardConsumer, "owner", "/ws/forms/{form}/dashboard/"),
    (StaffEventsConsumer, "staff", "/ws/monitoring/events/"),
]


@pytest.mark.usefixtures("unlimited")
async def test_random_frames_get_a_stable_answer_and_leave_every_socket_working(
    ws_user, ws_other_user, open_ws, caplog
):
    # One test for all consumers: one world to build and one database flush, not eight.
    assert {consumer for consumer, _, _ in SOCKETS} == set(routed_consumers())
    caplog.set_level(logging.ERROR)
    ids = await sync_to_async(make_world)(ws_user, ws_other_user)
    users = {"owner": ws_user, "other": ws_other_user, "staff": ids["staff"]}
    commands = valid_commands(ids)
    loop = asyncio.get_running_loop()
    run = uuid.uuid4().hex[:6]
    sent = 0

    def fuzz(comm: Any, strategy: st.SearchStrategy[str | bytes], examples: int) -> None:
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(frame=strategy)
        def answers(frame: str | bytes) -> None:
            nonlocal sent
            sent += 1
            probe = f"probe:{run}:{sent}"
            done = asyncio.run_coroutine_threadsafe(exchange(comm, frame, probe), loop)
            assert done.result(timeout=30) == [], (comm.scope["path"], frame)

        answers()

    expected = 0
    for consumer, who, path in SOCKETS:
        comm, _ = await open_ws(users[who], path.format(**ids))
        own = sorted(consumer.command_table)
        assert set(own) <= commands.keys(), consumer.__name__
        # Hypothesis runs in a thread: the sockets live on this loop, which must stay free.
        for type_ in own:  # a run per type, so that none goes untried
            await asyncio.to_thread(fuzz, comm, envelopes(type_, commands[type_]), PER_TYPE)
        others = sorted(commands.keys() - set(own))
        await asyncio.to_thread(fuzz, comm, junk_frames(others), JUNK_EXAMPLES)
        expected += PER_TYPE * len(own) + JUNK_EXAMPLES

    assert sent >= expected
    assert log_problems(caplog) == []
