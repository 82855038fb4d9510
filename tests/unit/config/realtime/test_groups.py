"""Channel-layer group names (config/realtime/groups.py)."""

from __future__ import annotations

import pytest

from config.realtime.groups import MAX_GROUP_NAME, group_name


def test_group_name_joins_app_entity_and_key():
    assert group_name("collab", "doc", 42) == "collab.doc.42"
    assert group_name("presence", "room", "lobby.main") == "presence.room.lobby.main"


@pytest.mark.parametrize(
    ("app", "entity", "key"),
    [
        ("collab", "doc", "4 2"),
        ("collab", "doc", "42\n"),
        ("collab", "dóc", 1),
        ("", "doc", 1),
        ("collab", "doc", "x" * MAX_GROUP_NAME),
    ],
)
def test_group_name_refuses_names_channels_would_reject(app, entity, key):
    with pytest.raises(ValueError, match="Not a valid group name"):
        group_name(app, entity, key)
