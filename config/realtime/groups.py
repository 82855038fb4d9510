"""Channel-layer group names: ``<app>.<entity>.<id>``, within Channels' rules; and how often a
worker renews its sockets' memberships so that the layer never forgets one.

group_name("collab", "doc", 42)        # "collab.doc.42"
group_name("presence", "room", "lobby.main")
renewal_interval(86400)                # 28800.0: every 8 h for the core Redis layer's day
"""

from __future__ import annotations

import re

# Channels accepts ASCII letters, digits, hyphens, underscores and periods, under 100 chars.
_PART = re.compile(r"^[A-Za-z0-9_.-]+\Z")
MAX_GROUP_NAME = 99
# Renewals go out at least this far apart, whatever the expiry: each costs a Redis round trip
# per membership of the worker.
MIN_RENEWAL_SECONDS = 1.0


def group_name(app: str, entity: str, key: str | int) -> str:
    name = f"{app}.{entity}.{key}"
    if len(name) > MAX_GROUP_NAME or not all(_PART.match(str(p)) for p in (app, entity, key)):
        raise ValueError(f"Not a valid group name: {name!r}")
    return name


def renewal_interval(group_expiry: float | None) -> float | None:
    """Seconds between renewals of a worker's group memberships, or None when the layer keeps
    members for good (the pub/sub layer has no ``group_expiry``).

    RedisChannelLayer (and the in-memory layer) drop a member ``group_expiry`` seconds after
    its last ``group_add``, and a socket may live longer than that: renewing at a third of the
    expiry leaves a member that misses one renewal (a busy loop, a Redis blip) another chance.
    """
    if group_expiry is None:
        return None
    return max(MIN_RENEWAL_SECONDS, group_expiry / 3)
