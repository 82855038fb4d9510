"""Channel-layer group names: ``<app>.<entity>.<id>``, within Channels' rules.

group_name("collab", "doc", 42)        # "collab.doc.42"
group_name("presence", "room", "lobby.main")
"""

from __future__ import annotations

import re

# Channels accepts ASCII letters, digits, hyphens, underscores and periods, under 100 chars.
_PART = re.compile(r"^[A-Za-z0-9_.-]+\Z")
MAX_GROUP_NAME = 99


def group_name(app: str, entity: str, key: str | int) -> str:
    name = f"{app}.{entity}.{key}"
    if len(name) > MAX_GROUP_NAME or not all(_PART.match(str(p)) for p in (app, entity, key)):
        raise ValueError(f"Not a valid group name: {name!r}")
    return name
