"""The WebSocket envelope (config/realtime/envelope.py): every bad frame gets a stable code."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from config.errors import AppError, ErrorCode
from config.realtime.envelope import (
    MAX_SAFE_INTEGER,
    Command,
    Limits,
    encode_ack,
    encode_error,
    encode_event,
    parse_command,
    peek_id,
)


def frame(**fields: object) -> str:
    return json.dumps({"type": "session.heartbeat", **fields})


def code_of(text: str | bytes, limits: Limits = Limits()) -> ErrorCode:  # noqa: B008
    with pytest.raises(AppError) as caught:
        parse_command(text, limits)
    return caught.value.code


def nested(depth: int) -> str:
    """A command whose deepest container sits at ``depth`` (the envelope object is level 1)."""
    inner = "[" * (depth - 2) + "]" * (depth - 2) if depth > 2 else ""
    return '{"type":"a.b","data":{"k":' + (inner or "1") + "}}"


# --- valid frames ---------------------------------------------------------------------------


def test_parse_command_reads_id_type_and_data():
    command = parse_command('{"id": "c17", "type": "collab.op.submit", "data": {"version": 3}}')

    assert command == Command(type="collab.op.submit", data={"version": 3}, id="c17")


def test_parse_command_allows_leaving_out_id_and_data():
    assert parse_command('{"type": "session.heartbeat"}') == Command(type="session.heartbeat")


def test_parse_command_accepts_utf8_bytes():
    command = parse_command('{"type": "a.b", "data": {"name": "Zoë"}}'.encode())

    assert command.data == {"name": "Zoë"}


# --- unusable frames ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["{", "not json", "{'type': 'a.b'}", '{"type": "a.b"} x', " "])
def test_parse_command_refuses_bad_json(text):
    assert code_of(text) is ErrorCode.BAD_JSON


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe", b'{"type": "a.b", "data": {"x": "\xc3"}}', b"\xed\xa0\x80"]
)
def test_parse_command_refuses_invalid_utf8_bytes(raw):
    assert code_of(raw) is ErrorCode.BAD_JSON


@pytest.mark.parametrize("text", ["[]", '"session.heartbeat"', "1", "null", "true"])
def test_parse_command_refuses_frames_that_are_not_objects(text):
    assert code_of(text) is ErrorCode.BAD_FRAME


def test_parse_command_refuses_extra_keys():
    assert code_of(frame(data={}, handler="websocket_disconnect")) is ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    "command_id", ["", "x" * 65, "a b", "c1\n", "c/1", "é", 5, ["c1"], {"id": "c1"}, True]
)
def test_parse_command_refuses_bad_ids(command_id):
    assert code_of(frame(id=command_id)) is ErrorCode.BAD_FRAME


@pytest.mark.parametrize("command_id", ["c", "x" * 64, "A-z_0.9:c"])
def test_parse_command_accepts_ids_of_1_to_64_allowed_characters(command_id):
    assert parse_command(frame(id=command_id)).id == command_id


@pytest.mark.parametrize(
    "command_type",
    [
        "heartbeat",
        "Session.heartbeat",
        "a.b.c.d",
        "1a.b",
        "a..b",
        "a.b.",
        "a-b.c",
        "session.heartbeat\n",
        "a." + "b" * 33,
        "websocket.disconnect ",
        5,
        None,
    ],
)
def test_parse_command_refuses_bad_types(command_type):
    assert code_of(json.dumps({"type": command_type})) is ErrorCode.BAD_FRAME


def test_parse_command_refuses_a_missing_type():
    assert code_of('{"id": "c1", "data": {}}') is ErrorCode.BAD_FRAME


@pytest.mark.parametrize("data", [[], "x", 1, None, [{"a": 1}]])
def test_parse_command_refuses_data_that_is_not_an_object(data):
    assert code_of(frame(data=data)) is ErrorCode.BAD_FRAME


# --- size -----------------------------------------------------------------------------------


def padded(size: int, char: str = "a") -> str:
    """A valid frame of exactly ``size`` UTF-8 bytes: as many ``char`` as fit, then ASCII."""
    head, tail = '{"type":"a.b","data":{"p":"', '"}}'
    room = size - len(head) - len(tail)
    width = len(char.encode())
    return head + char * (room // width) + "a" * (room % width) + tail


def test_parse_command_accepts_a_frame_of_exactly_the_limit():
    limits = Limits(max_bytes=1000)

    assert parse_command(padded(1000), limits).type == "a.b"
    assert parse_command(padded(1000).encode(), limits).type == "a.b"


def test_parse_command_refuses_text_over_the_limit():
    assert code_of(padded(1001), Limits(max_bytes=1000)) is ErrorCode.TOO_LARGE


def test_parse_command_refuses_bytes_over_the_limit():
    assert code_of(padded(1001).encode(), Limits(max_bytes=1000)) is ErrorCode.TOO_LARGE


@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_parse_command_counts_multibyte_characters_by_their_utf8_bytes(char):
    at_limit, over = padded(1000, char), padded(1001, char)
    # Far fewer characters than bytes: a character count would let both through.
    assert len(over) < 700

    assert parse_command(at_limit, Limits(max_bytes=1000)).data["p"].startswith(char)
    assert code_of(over, Limits(max_bytes=1000)) is ErrorCode.TOO_LARGE
    assert code_of(over.encode(), Limits(max_bytes=1000)) is ErrorCode.TOO_LARGE


def test_parse_command_does_not_count_ascii_text_four_times():
    # 1000 ASCII characters: over a 4-bytes-per-character bound, exactly at the byte limit.
    assert parse_command(padded(1000), Limits(max_bytes=1000)).type == "a.b"


def test_parse_command_refuses_oversize_text_with_lone_surrogates_by_code():
    text = '"' + "\ud800" * 40 + '"'

    assert code_of(text, Limits(max_bytes=64)) is ErrorCode.TOO_LARGE


# --- depth ----------------------------------------------------------------------------------


def test_parse_command_accepts_nesting_up_to_the_depth_limit():
    assert parse_command(nested(32)).type == "a.b"


@pytest.mark.parametrize("depth", [33, 100, 10_000])
def test_parse_command_refuses_nesting_beyond_the_depth_limit(depth):
    assert code_of(nested(depth)) is ErrorCode.TOO_DEEP


def test_parse_command_refuses_very_deep_objects_without_recursion_error():
    text = '{"type":"a.b","data":' + '{"a":' * 10_000 + "1" + "}" * 10_000 + "}"

    assert code_of(text) is ErrorCode.TOO_DEEP
    assert code_of(text.encode()) is ErrorCode.TOO_DEEP


def test_parse_command_uses_the_configured_depth():
    assert parse_command(nested(5), Limits(max_depth=5)).type == "a.b"
    assert code_of(nested(6), Limits(max_depth=5)) is ErrorCode.TOO_DEEP


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_parse_command_refuses_non_finite_numbers(literal):
    assert code_of('{"type":"a.b","data":{"x":' + literal + "}}") is ErrorCode.INVALID


def test_parse_command_refuses_a_5000_digit_integer_as_bad_json():
    assert code_of('{"type":"a.b","data":{"x":' + "9" * 5000 + "}}") is ErrorCode.BAD_JSON


@pytest.mark.parametrize("number", [2**53, -(2**53), 10**300, 2**64])
def test_parse_command_refuses_integers_beyond_2_53(number):
    assert code_of(frame(data={"x": [number]})) is ErrorCode.INVALID


@pytest.mark.parametrize("number", [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0, 1e300, -0.0])
def test_parse_command_accepts_safe_numbers(number):
    assert parse_command(frame(data={"x": number})).data == {"x": number}


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "a.b", "type": "a.c"}',
        '{"type": "a.b", "data": {"x": 1, "x": 2}}',
        '{"type": "a.b", "data": {"y": [{"k": 1, "k": 1}]}}',
    ],
)
def test_parse_command_refuses_duplicate_keys(text):
    assert code_of(text) is ErrorCode.BAD_JSON


@pytest.mark.parametrize(
    "text",
    [
        r'{"type": "a.b", "data": {"x": "\ud800"}}',
        r'{"type": "a.b", "data": {"x": ["ok", "a\udfffb"]}}',
        r'{"type": "a.b", "data": {"\udc00": 1}}',
    ],
)
def test_parse_command_refuses_lone_surrogates(text):
    # They cannot be encoded as UTF-8: the channel layer, PostgreSQL and Daphne would all fail.
    assert code_of(text) is ErrorCode.INVALID


def test_parse_command_accepts_escaped_surrogate_pairs():
    command = parse_command(r'{"type": "a.b", "data": {"x": "\ud83d\ude00"}}')

    assert command.data == {"x": "😀"}


# --- properties -----------------------------------------------------------------------------


# st.characters() and st.text() leave out surrogates; ask for them explicitly.
any_character = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.sampled_from(['"', "{", "}", "[", "]", ":", ",", "\\", "€"]),
)


@given(st.lists(any_character, max_size=80).map("".join))
@example("\ud800" * 40)  # used to raise UnicodeEncodeError from the size check
def test_parse_command_raises_nothing_but_app_error_on_any_text(text):
    with contextlib.suppress(AppError):
        parse_command(text, Limits(max_bytes=64, max_depth=4))


@given(st.binary())
def test_parse_command_raises_nothing_but_app_error_on_any_bytes(raw):
    with contextlib.suppress(AppError):
        parse_command(raw, Limits(max_bytes=256, max_depth=4))


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
json_fragments = st.sampled_from(
    ['{"', '"type"', ":", ",", "}", "[", "]", '"a.b"', "NaN", "1e400", '"\\ud800"', "9" * 40]
)


@given(st.lists(json_fragments | json_values.map(json.dumps), max_size=12).map("".join))
def test_parse_command_raises_nothing_but_app_error_on_json_like_text(text):
    with contextlib.suppress(AppError):
        parse_command(text, Limits(max_bytes=512, max_depth=6))


command_types = st.from_regex(r"\A[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,8}){1,2}\Z")
command_ids = st.none() | st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z")


@given(command_types, st.dictionaries(st.text(max_size=8), json_values, max_size=5), command_ids)
def test_parse_command_round_trips_any_valid_command(command_type, data, command_id):
    envelope = {"type": command_type, "data": data}
    if command_id is not None:
        envelope["id"] = command_id

    command = parse_command(json.dumps(envelope, ensure_ascii=False))

    assert command == Command(type=command_type, data=data, id=command_id)


# --- peek_id --------------------------------------------------------------------------------


def test_peek_id_names_the_id_of_a_frame_that_failed_validation():
    assert peek_id('{"id": "c9", "type": "nope"}') == "c9"
    assert peek_id(b'{"id": "c9", "data": []}') == "c9"


@pytest.mark.parametrize(
    "raw", ["{", "[]", '{"id": 5}', '{"id": "a b"}', '{"id": "c1\\n"}', "[" * 10_000, b"\xff"]
)
def test_peek_id_gives_none_for_unusable_ids(raw):
    assert peek_id(raw) is None


# --- server frames --------------------------------------------------------------------------


def test_encode_ack_has_type_id_and_data():
    assert json.loads(encode_ack("c17", {"version": 4})) == {
        "type": "ack",
        "id": "c17",
        "data": {"version": 4},
    }
    assert json.loads(encode_ack(None)) == {"type": "ack", "id": None, "data": {}}


def test_encode_error_carries_the_error_payload():
    error = AppError(ErrorCode.RATE_LIMITED, "Slow down.", retry_after=1.23456)

    assert json.loads(encode_error("c1", error)) == {
        "type": "error",
        "id": "c1",
        "error": {
            "code": "rate_limited",
            "message": "Slow down.",
            "retry": True,
            "retry_after": 1.235,
        },
    }


def test_encode_error_never_contains_exception_text():
    try:
        raise ValueError("secret: /etc/passwd line 3")
    except ValueError:
        frame_text = encode_error("c1", AppError(ErrorCode.INTERNAL))

    assert json.loads(frame_text)["error"] == {
        "code": "internal",
        "message": "Internal.",
        "retry": True,
    }
    assert "secret" not in frame_text
    assert "Traceback" not in frame_text


def test_encode_event_puts_stream_and_seq_before_data():
    text = encode_event("collab.op.applied", {"op": [1, "é"]}, stream="collab.doc.42", seq=108)

    assert text == (
        '{"type":"collab.op.applied","stream":"collab.doc.42","seq":108,"data":{"op":[1,"é"]}}'
    )


def test_encode_event_leaves_out_stream_and_seq_when_not_given():
    assert json.loads(encode_event("presence.signal.received", {})) == {
        "type": "presence.signal.received",
        "data": {},
    }
