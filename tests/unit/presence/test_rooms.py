"""Room names and who may join them (presence/rooms.py)."""

from __future__ import annotations

import pytest

from config.errors import AppError, ErrorCode
from presence.rooms import Room, parse_room


def test_parse_room_reads_kind_and_key():
    room = parse_room("lobby.main")

    assert room == Room(kind="lobby", key="main")
    assert room.name == "lobby.main"
    assert room.group == "presence.room.lobby.main"


@pytest.mark.parametrize("key", ["a", "A-z_09", "k" * 64])
def test_parse_room_accepts_keys_of_1_to_64_allowed_characters(key):
    assert parse_room(f"lobby.{key}").key == key


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        ["lobby.main"],
        "",
        "lobby",
        "lobby.",
        ".main",
        "lobby.main.x",
        "Lobby.main",
        "lobby.ma in",
        "lobby.main\n",
        "lobby." + "k" * 65,
        "lobby.mäin",
        "a" * 17 + ".main",
    ],
)
def test_parse_room_refuses_malformed_names_as_invalid(value):
    with pytest.raises(AppError) as caught:
        parse_room(value)

    assert caught.value.code is ErrorCode.INVALID


@pytest.mark.parametrize("value", ["nosuchkind.42", "widget.7", "gadget.x"])
def test_parse_room_answers_not_found_for_kinds_that_are_not_open(value):
    with pytest.raises(AppError) as caught:
        parse_room(value)

    assert caught.value.code is ErrorCode.NOT_FOUND
    assert "42" not in caught.value.message


def test_room_groups_are_valid_channel_layer_group_names():
    from config.realtime.groups import group_name

    room = parse_room("lobby." + "k" * 64)

    assert group_name("presence", "room", room.name) == room.group
