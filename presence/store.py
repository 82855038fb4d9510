"""Where presence lives: Redis for N workers, process memory for the embedded default.

Both backends keep the same four things, and one test suite runs against both
(tests/integration/presence/test_store.py):

- each user's live connections (``ConnectionState`` per connection id) and their ``Choice``;
- the view last published for each user, with its version (what observers were last told);
- a liveness index of every connection, ``"<user>:<connection>"`` scored by when it lapses,
  refreshed in bulk by the worker that holds the socket;
- per room, the same members scored the same way.

A worker killed without running ``disconnect`` stops refreshing; its connections lapse, and
any other worker's reaper claims them (each exactly once), drops them, and publishes.

    store = get_presence_store()
    await store.save_connection(7, "c1", connection, expires=now + 30)
    change = await store.publish(7, decide, now=now)   # (before, after, version) or None
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from config.realtime.kv import BuiltOnStore, RedisStore
from presence.state import (
    Choice,
    ConnectionState,
    PublicView,
    dump_connection,
    dump_view,
    load_connection,
    load_view,
    next_version,
)

Member = tuple[int, str]  # (user id, connection id)
Decide = Callable[[dict[str, ConnectionState], Choice], PublicView]
Published = tuple[PublicView, PublicView, int]  # before, after, version of after
# A user's choice and published view outlive their connections by this much, so "invisible"
# still holds when they come back tomorrow.
USER_KEEP_SECONDS = 30 * 86400
CHOICE_FIELD = "choice"
CONNECTION_FIELD = "c:"


def member_key(member: Member) -> str:
    return f"{member[0]}:{member[1]}"


def parse_member(text: str) -> Member:
    user, _, connection = text.partition(":")
    return int(user), connection


class PresenceStore(Protocol):
    async def save_connection(
        self, user_id: int, connection_id: str, connection: ConnectionState, *, expires: float
    ) -> None:
        """Write one connection (its rooms included) and mark it live until ``expires``."""

    async def enter_room(
        self, member: Member, room: str, *, cap: int | None, expires: float, now: float
    ) -> bool:
        """Add to the room's index; False, changing nothing, when ``cap`` users are already in."""

    async def leave_room(self, member: Member, room: str) -> None: ...

    async def drop_connection(self, member: Member) -> None:
        """Forget a connection that closed: its entry, liveness and rooms."""

    async def refresh(
        self, members: Sequence[Member], rooms: Mapping[str, Sequence[Member]], *, expires: float
    ) -> list[Member]:
        """Keep live connections live; returns those that had lapsed (a reaper took them)."""

    async def claim_expired(self, *, now: float, limit: int = 500) -> list[Member]:
        """Drop connections that lapsed; each is returned to exactly one caller."""

    async def publish(self, user_id: int, decide: Decide, *, now: float) -> Published | None:
        """Store ``decide(connections, choice)`` if it differs from the stored view, atomically:
        of two workers deciding the same transition, one publishes and the other gets None."""

    async def save_and_publish(
        self,
        user_id: int,
        connection_id: str,
        connection: ConnectionState,
        *,
        expires: float,
        decide: Decide,
        now: float,
    ) -> Published | None:
        """``save_connection`` then ``publish``, in fewer round trips."""

    async def room_views(self, room: str, *, now: float) -> dict[int, PublicView]:
        """The published views of the users with a live connection in the room."""

    async def set_choice(self, user_id: int, choice: Choice) -> None: ...

    async def user(self, user_id: int) -> tuple[dict[str, ConnectionState], Choice]: ...

    async def views(self, user_ids: Iterable[int]) -> dict[int, PublicView]: ...

    async def room_user_ids(self, room: str, *, now: float) -> set[int]: ...

    async def online_user_ids(self, *, now: float) -> set[int]: ...


# --- Redis ---------------------------------------------------------------------------------------

# Claim (or drop) a connection and everything that names it, atomically: a worker that comes
# back from a stall and re-saves its connection cannot interleave with a half-done drop.
# Room keys are derived inside the script, so this needs one Redis (or Sentinel), not Cluster.
_DROP = """
if ARGV[4] == 'claim' then
  -- Only while still lapsed: a refresh may have landed since the reaper listed it.
  local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not score or tonumber(score) > tonumber(ARGV[5]) then return false end
end
redis.call('ZREM', KEYS[1], ARGV[1])
local text = redis.call('HGET', KEYS[2], ARGV[2])
if not text then return '' end
redis.call('HDEL', KEYS[2], ARGV[2])
for room, _ in pairs(cjson.decode(text)['rooms']) do
  redis.call('ZREM', ARGV[3] .. room, ARGV[1])
end
return text
"""

# Enter a room unless it already holds ``cap`` other users: counting and adding in one step,
# so two workers admitting the last two joiners at once cannot overfill it.
_ENTER = """
local cap = tonumber(ARGV[4])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
  local users, count, present = {}, 0, false
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local user = string.match(member, '^(%d+):')
    if user == ARGV[5] then present = true end
    if not users[user] then users[user] = true; count = count + 1 end
  end
  if not present and count >= cap then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


# Store a view only if the stored one still has the version the caller read (0: none stored).
_SWAP = """
local current = redis.call('GET', KEYS[1])
local version = 0
if current then version = cjson.decode(current)['v'] end
if version ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


# A room's live users and their published views in one round trip (a join lists members).
_ROOM_VIEWS = """
local seen, found = {}, {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
  local user = string.match(member, '^(%d+):')
  if user and not seen[user] then
    seen[user] = true
    found[#found + 1] = user
    found[#found + 1] = redis.call('GET', ARGV[2] .. user) or ''
  end
end
return found
"""


class RedisPresenceStore:
    def __init__(self, store: RedisStore, prefix: str) -> None:
        self._store = store
        self.prefix = prefix

    def _user(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}"

    def _view(self, user_id: int | str) -> str:
        return f"{self.prefix}view:{user_id}"

    def _room(self, room: str) -> str:
        return f"{self.prefix}room:{room}"

    @property
    def _live(self) -> str:
        return f"{self.prefix}live"

    async def save_connection(
        self, user_id: int, connection_id: str, connection: ConnectionState, *, expires: float
    ) -> None:
        pipe = self._store.aclient().pipeline(transaction=False)
        self._save_commands(pipe, user_id, connection_id, connection, expires)
        await pipe.execute()

    def _save_commands(self, pipe, user_id, connection_id, connection, expires) -> None:  # type: ignore[no-untyped-def]
        member, user_key = member_key((user_id, connection_id)), self._user(user_id)
        pipe.hset(user_key, CONNECTION_FIELD + connection_id, dump_connection(connection))
        pipe.expire(user_key, USER_KEEP_SECONDS)
        pipe.zadd(self._live, {member: expires})
        for room in connection.rooms:
            pipe.zadd(self._room(room), {member: expires})

    async def save_and_publish(
        self,
        user_id: int,
        connection_id: str,
        connection: ConnectionState,
        *,
        expires: float,
        decide: Decide,
        now: float,
    ) -> Published | None:
        # The write and the read that follows it travel in one pipeline: one round trip, and a
        # read that certainly sees this write.
        pipe = self._store.aclient().pipeline(transaction=False)
        self._save_commands(pipe, user_id, connection_id, connection, expires)
        self._read_commands(pipe, user_id)
        *_, fields, stored = await pipe.execute()
        return await self._settle(user_id, decide, now, fields, stored)

    async def enter_room(
        self, member: Member, room: str, *, cap: int | None, expires: float, now: float
    ) -> bool:
        client = self._store.aclient()
        args = [member_key(member), expires, now, cap or 0, str(member[0])]
        return bool(await client.eval(_ENTER, 1, self._room(room), *args))

    async def leave_room(self, member: Member, room: str) -> None:
        await self._store.aclient().zrem(self._room(room), member_key(member))

    async def _remove(self, member: Member, mode: str, now: float = 0.0) -> bool:
        keys = [self._live, self._user(member[0])]
        args = [member_key(member), CONNECTION_FIELD + member[1], self._room(""), mode, now]
        return await self._store.aclient().eval(_DROP, 2, *keys, *args) is not None

    async def drop_connection(self, member: Member) -> None:
        await self._remove(member, "drop")

    async def refresh(
        self, members: Sequence[Member], rooms: Mapping[str, Sequence[Member]], *, expires: float
    ) -> list[Member]:
        if not members:
            return []
        keys = [member_key(m) for m in members]
        pipe = self._store.aclient().pipeline(transaction=False)
        pipe.zmscore(self._live, keys)
        pipe.zadd(self._live, dict.fromkeys(keys, expires))
        for room, in_room in rooms.items():
            pipe.zadd(self._room(room), {member_key(m): expires for m in in_room})
        for user_id in {m[0] for m in members}:
            pipe.expire(self._user(user_id), USER_KEEP_SECONDS)
        scores = (await pipe.execute())[0]
        return [m for m, score in zip(members, scores, strict=True) if score is None]

    async def claim_expired(self, *, now: float, limit: int = 500) -> list[Member]:
        client = self._store.aclient()
        lapsed = await client.zrangebyscore(self._live, "-inf", now, start=0, num=limit)
        claimed = []
        for text in lapsed:
            member = parse_member(text)
            if await self._remove(member, "claim", now):
                claimed.append(member)
        return claimed

    def _read_commands(self, pipe, user_id: int) -> None:  # type: ignore[no-untyped-def]
        pipe.hgetall(self._user(user_id))
        pipe.get(self._view(user_id))

    async def _read(self, user_id: int) -> tuple[dict[str, str], str | None]:
        pipe = self._store.aclient().pipeline(transaction=False)
        self._read_commands(pipe, user_id)
        fields, stored = await pipe.execute()
        return fields, stored

    async def publish(self, user_id: int, decide: Decide, *, now: float) -> Published | None:
        return await self._settle(user_id, decide, now, *await self._read(user_id))

    async def _settle(
        self, user_id: int, decide: Decide, now: float, fields: dict[str, str], stored: str | None
    ) -> Published | None:
        # Optimistic, on the view's version: decide from what was read, swap only if nobody
        # published since. Every writer publishes after its write, so the last successful swap
        # comes from a read that saw every write before it; two workers deciding one transition
        # both read version v, and only one swap from v succeeds: one broadcast per transition.
        client = self._store.aclient()
        for _ in range(20):
            before, version = load_view(stored)
            after = decide(*_parse_user(fields))
            if after == before:
                return None
            new_version = next_version(version, now)
            text = dump_view(after, new_version)
            if await client.eval(_SWAP, 1, self._view(user_id), version, text, USER_KEEP_SECONDS):
                return before, after, new_version
            fields, stored = await self._read(user_id)
        raise RuntimeError(f"presence of user {user_id} kept changing while publishing")

    async def set_choice(self, user_id: int, choice: Choice) -> None:
        pipe = self._store.aclient().pipeline(transaction=False)
        pipe.hset(self._user(user_id), CHOICE_FIELD, choice.value)
        pipe.expire(self._user(user_id), USER_KEEP_SECONDS)
        await pipe.execute()

    async def user(self, user_id: int) -> tuple[dict[str, ConnectionState], Choice]:
        return _parse_user(await self._store.aclient().hgetall(self._user(user_id)))

    async def views(self, user_ids: Iterable[int]) -> dict[int, PublicView]:
        ids = list(user_ids)
        if not ids:
            return {}
        texts = await self._store.aclient().mget([self._view(i) for i in ids])
        return {i: load_view(text)[0] for i, text in zip(ids, texts, strict=True)}

    async def room_views(self, room: str, *, now: float) -> dict[int, PublicView]:
        found = await self._store.aclient().eval(
            _ROOM_VIEWS, 1, self._room(room), now, self._view("")
        )
        pairs = zip(found[::2], found[1::2], strict=True)  # user, view, user, view...
        return {int(user): load_view(text or None)[0] for user, text in pairs}

    async def room_user_ids(self, room: str, *, now: float) -> set[int]:
        members = await self._store.aclient().zrangebyscore(self._room(room), now, "+inf")
        return {parse_member(m)[0] for m in members}

    async def online_user_ids(self, *, now: float) -> set[int]:
        members = await self._store.aclient().zrangebyscore(self._live, now, "+inf")
        return {parse_member(m)[0] for m in members}


def _parse_user(fields: Mapping[str, str]) -> tuple[dict[str, ConnectionState], Choice]:
    connections = {
        name.removeprefix(CONNECTION_FIELD): load_connection(text)
        for name, text in fields.items()
        if name.startswith(CONNECTION_FIELD)
    }
    return connections, Choice(fields.get(CHOICE_FIELD, Choice.ONLINE))


# --- process memory ------------------------------------------------------------------------------


@dataclass
class _User:
    connections: dict[str, ConnectionState] = field(default_factory=dict)
    choice: Choice = Choice.ONLINE
    view: PublicView | None = None
    version: int = 0


class MemoryPresenceStore:
    """One process's presence. A lock, not the event loop, guards it: REST reads from threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[int, _User] = {}
        self._live: dict[Member, float] = {}
        self._rooms: dict[str, dict[Member, float]] = {}

    def _user(self, user_id: int) -> _User:
        return self._users.setdefault(user_id, _User())

    async def save_connection(
        self, user_id: int, connection_id: str, connection: ConnectionState, *, expires: float
    ) -> None:
        member = (user_id, connection_id)
        with self._lock:
            self._user(user_id).connections[connection_id] = connection
            self._live[member] = expires
            for room in connection.rooms:
                self._rooms.setdefault(room, {})[member] = expires

    async def enter_room(
        self, member: Member, room: str, *, cap: int | None, expires: float, now: float
    ) -> bool:
        with self._lock:
            entries = self._rooms.setdefault(room, {})
            for lapsed in [m for m, until in entries.items() if until < now]:
                del entries[lapsed]
            users = {user_id for user_id, _ in entries}
            if cap and member[0] not in users and len(users) >= cap:
                return False
            entries[member] = expires
            return True

    async def leave_room(self, member: Member, room: str) -> None:
        with self._lock:
            self._leave(member, room)

    def _leave(self, member: Member, room: str) -> None:
        entries = self._rooms.get(room, {})
        entries.pop(member, None)
        if not entries:
            self._rooms.pop(room, None)

    def _remove(self, member: Member) -> None:
        self._live.pop(member, None)
        user = self._users.get(member[0])
        connection = user.connections.pop(member[1], None) if user else None
        for room in connection.rooms if connection else ():
            self._leave(member, room)

    async def drop_connection(self, member: Member) -> None:
        with self._lock:
            self._remove(member)

    async def refresh(
        self, members: Sequence[Member], rooms: Mapping[str, Sequence[Member]], *, expires: float
    ) -> list[Member]:
        with self._lock:
            lapsed = [m for m in members if m not in self._live]
            self._live.update(dict.fromkeys(members, expires))
            for room, in_room in rooms.items():
                self._rooms.setdefault(room, {}).update(dict.fromkeys(in_room, expires))
        return lapsed

    async def claim_expired(self, *, now: float, limit: int = 500) -> list[Member]:
        with self._lock:
            lapsed = [m for m, until in self._live.items() if until <= now][:limit]
            for member in lapsed:
                self._remove(member)
        return lapsed

    async def publish(self, user_id: int, decide: Decide, *, now: float) -> Published | None:
        with self._lock:
            user = self._user(user_id)
            before = user.view if user.view is not None else load_view(None)[0]
            after = decide(dict(user.connections), user.choice)
            if after == before:
                return None
            user.view, user.version = after, next_version(user.version, now)
            if not user.connections and user.choice is Choice.ONLINE:
                # Gone and nothing to remember: a process that runs for months must not keep
                # every user it ever saw (versions stay monotonic: they come from the clock).
                del self._users[user_id]
            return before, after, user.version

    async def set_choice(self, user_id: int, choice: Choice) -> None:
        with self._lock:
            self._user(user_id).choice = choice

    async def user(self, user_id: int) -> tuple[dict[str, ConnectionState], Choice]:
        with self._lock:
            user = self._users.get(user_id) or _User()
            return dict(user.connections), user.choice

    async def views(self, user_ids: Iterable[int]) -> dict[int, PublicView]:
        with self._lock:
            found = {i: self._users.get(i) for i in user_ids}
        offline = load_view(None)[0]
        return {i: (u.view if u and u.view else offline) for i, u in found.items()}

    async def save_and_publish(
        self,
        user_id: int,
        connection_id: str,
        connection: ConnectionState,
        *,
        expires: float,
        decide: Decide,
        now: float,
    ) -> Published | None:
        await self.save_connection(user_id, connection_id, connection, expires=expires)
        return await self.publish(user_id, decide, now=now)

    async def room_views(self, room: str, *, now: float) -> dict[int, PublicView]:
        return await self.views(await self.room_user_ids(room, now=now))

    async def room_user_ids(self, room: str, *, now: float) -> set[int]:
        with self._lock:
            entries = dict(self._rooms.get(room, {}))
        return {user_id for (user_id, _), until in entries.items() if until >= now}

    async def online_user_ids(self, *, now: float) -> set[int]:
        with self._lock:
            return {user_id for (user_id, _), until in self._live.items() if until >= now}


_store: BuiltOnStore[PresenceStore] = BuiltOnStore(
    lambda shared: RedisPresenceStore(shared, shared.prefix + "presence:"), MemoryPresenceStore
)


def get_presence_store() -> PresenceStore:
    """The backend that matches the shared store: Redis when it is configured."""
    return _store.get()
