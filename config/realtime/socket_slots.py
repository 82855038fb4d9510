"""Sockets per user, counted across every worker: the cap of RELIABILITY.md S9 (e).

A user holds at most ``REALTIME_MAX_SOCKETS_PER_USER`` open sockets, all apps and all workers
together. Each socket claims a *slot* at its handshake, before it is accepted, and gives it back
when it ends. A slot is a member of the user's set scored by when it lapses: the worker that
holds the socket pushes that time forward every third of ``REALTIME_SOCKET_SLOT_TTL_SECONDS``,
so the slots of a worker killed with kill -9 lapse within the TTL instead of counting forever.

Two backends, as for the shared store (config/realtime/kv.py): a sorted set per user in Redis,
claimed by a script that drops lapsed slots, counts and adds in one step (two workers admitting
a user's last two handshakes at once cannot both pass), or process memory for the embedded
single-process default.

    slots = worker_slots()                                   # this event loop's
    if not await slots.claim(user_id=7, slot="host:123/ab12", cap=30, now=time.time()):
        ...                                                  # refuse the handshake (4409)
    await slots.release("host:123/ab12")                     # when the socket ends (or None)
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import Awaitable, Mapping
from typing import Protocol

from django.conf import settings

from config.realtime.kv import BuiltOnStore, RedisStore

log = logging.getLogger(__name__)


class SlotBackend(Protocol):
    async def claim(
        self, user_id: int, slot: str, *, cap: int, expires: float, now: float
    ) -> bool: ...
    async def release(self, user_id: int, slot: str) -> None: ...
    async def renew(self, held: Mapping[str, int], *, expires: float) -> list[str]: ...
    async def restore(self, held: Mapping[str, int], *, expires: float) -> None: ...
    async def count(self, user_id: int, *, now: float) -> int: ...


# Drop the user's lapsed slots, then add this one unless the user already holds ``cap``.
# Claiming a slot already held only moves its expiry (never refused: it is counted already).
_CLAIM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


# For each user's key: push the expiry of the listed slots that are still there, and list those
# that are not (XX semantics: a slot released meanwhile stays released); then renew the key's TTL.
# ARGV: expires, key TTL, then per key the number of its slots followed by the slots.
_RENEW = """
local expires, ttl, i, lapsed = ARGV[1], ARGV[2], 3, {}
for k = 1, #KEYS do
  local n = tonumber(ARGV[i])
  i = i + 1
  for j = 1, n do
    if redis.call('ZSCORE', KEYS[k], ARGV[i]) then
      redis.call('ZADD', KEYS[k], expires, ARGV[i])
    else
      lapsed[#lapsed + 1] = ARGV[i]
    end
    i = i + 1
  end
  redis.call('EXPIRE', KEYS[k], ttl)
end
return lapsed
"""
# Users per renewal script: a few thousand commands in Redis at a time, not a whole worker's.
RENEW_BATCH = 500


class RedisSlots:
    def __init__(self, store: RedisStore, prefix: str) -> None:
        self._store = store
        self.prefix = prefix

    def _key(self, user_id: int) -> str:
        return f"{self.prefix}{user_id}"

    @staticmethod
    def _key_ttl() -> int:
        # The whole set goes a second after its last slot would lapse: no key per user forever.
        return math.ceil(_ttl()) + 1

    async def claim(self, user_id: int, slot: str, *, cap: int, expires: float, now: float) -> bool:
        args = [slot, expires, now, cap, self._key_ttl()]
        client = self._store.aclient()
        return bool(await client.eval(_CLAIM, 1, self._key(user_id), *args))

    async def release(self, user_id: int, slot: str) -> None:
        await self._store.aclient().zrem(self._key(user_id), slot)

    async def renew(self, held: Mapping[str, int], *, expires: float) -> list[str]:
        """Push the expiry of these slots (slot -> user id) forward; returns those already gone
        (this worker stalled past the TTL and a claim dropped them, or they were released
        while this was on its way), which it leaves out."""
        by_user: dict[int, list[str]] = {}
        for slot, user_id in held.items():
            by_user.setdefault(user_id, []).append(slot)
        users = list(by_user.items())
        client, lapsed = self._store.aclient(), []
        # One script per batch of users, not three commands per user: at 20,000 sockets a
        # pipeline of 60,000 commands would hold the event loop while redis-py encodes it.
        for start in range(0, len(users), RENEW_BATCH):
            batch = users[start : start + RENEW_BATCH]
            keys = [self._key(user_id) for user_id, _ in batch]
            args: list[object] = [expires, self._key_ttl()]
            for _, slots in batch:
                args += [len(slots), *slots]
            lapsed += await client.eval(_RENEW, len(keys), *keys, *args)
        return lapsed

    async def restore(self, held: Mapping[str, int], *, expires: float) -> None:
        """Add back slots of sockets still open, whatever the cap: they are already in use."""
        pipe = self._store.aclient().pipeline(transaction=False)
        for slot, user_id in held.items():
            pipe.zadd(self._key(user_id), {slot: expires})
            pipe.expire(self._key(user_id), self._key_ttl())
        await pipe.execute()

    async def count(self, user_id: int, *, now: float) -> int:
        return await self._store.aclient().zcount(self._key(user_id), f"({now}", "+inf")


class MemorySlots:
    """The same in process memory, for the embedded default (one process: nothing to share)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[int, dict[str, float]] = {}  # user id -> slot -> lapses at

    async def claim(self, user_id: int, slot: str, *, cap: int, expires: float, now: float) -> bool:
        with self._lock:
            slots = {s: until for s, until in self._users.get(user_id, {}).items() if until > now}
            if slot not in slots and len(slots) >= cap:
                self._users[user_id] = slots
                return False
            slots[slot] = expires
            self._users[user_id] = slots
            return True

    async def release(self, user_id: int, slot: str) -> None:
        with self._lock:
            slots = self._users.get(user_id, {})
            slots.pop(slot, None)
            if not slots:
                self._users.pop(user_id, None)

    async def renew(self, held: Mapping[str, int], *, expires: float) -> list[str]:
        lapsed = []
        with self._lock:
            for slot, user_id in held.items():
                slots = self._users.get(user_id, {})
                if slot in slots:
                    slots[slot] = expires
                else:
                    lapsed.append(slot)
        return lapsed

    async def restore(self, held: Mapping[str, int], *, expires: float) -> None:
        with self._lock:
            for slot, user_id in held.items():
                self._users.setdefault(user_id, {})[slot] = expires

    async def count(self, user_id: int, *, now: float) -> int:
        with self._lock:
            return sum(1 for until in self._users.get(user_id, {}).values() if until > now)


_backend: BuiltOnStore[SlotBackend] = BuiltOnStore(
    lambda shared: RedisSlots(shared, shared.prefix + "sockets:"), MemorySlots
)


def slot_backend() -> SlotBackend:
    """The backend that matches the shared store: Redis when it is configured."""
    return _backend.get()


def _ttl() -> float:
    return float(settings.REALTIME_SOCKET_SLOT_TTL_SECONDS)


class WorkerSlots:
    """The slots this event loop's sockets hold, kept from lapsing by one task while any are."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}  # slot -> user id
        self._task: asyncio.Task[None] | None = None

    async def claim(self, *, user_id: int, slot: str, cap: int, now: float) -> bool:
        claimed = await slot_backend().claim(user_id, slot, cap=cap, expires=now + _ttl(), now=now)
        if claimed:
            self.held[slot] = user_id
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._keep_live())
        return claimed

    def release(self, slot: str) -> Awaitable[None] | None:
        """Stop renewing the slot at once, and return the removal from the shared count to
        await (None when it was not held). Two steps so that a socket's clean-up, which may be
        cancelled at any await, can never leave a slot renewed for good: it calls this before
        its first await, and hands the removal to a task of its own."""
        user_id = self.held.pop(slot, None)
        return None if user_id is None else slot_backend().release(user_id, slot)

    async def renew(self, now: float) -> list[str]:
        """Push every held slot's expiry a TTL past ``now``. Slots that had lapsed are added
        back while their socket is still open, and returned."""
        if not self.held:
            return []
        backend, expires = slot_backend(), now + _ttl()
        lapsed = await backend.renew(dict(self.held), expires=expires)
        still_open = {slot: self.held[slot] for slot in lapsed if slot in self.held}
        if still_open:
            await backend.restore(still_open, expires=expires)
        return list(still_open)

    async def _keep_live(self) -> None:
        while self.held:
            await asyncio.sleep(_ttl() / 3)
            try:
                lapsed = await self.renew(time.time())
            except Exception:  # Redis away for a moment: renewed at the next tick, within TTL
                log.warning("renewing socket slots failed", exc_info=True)
                continue
            if lapsed:
                log.warning("%d socket slots had lapsed (a stalled loop?): added back", len(lapsed))


_workers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WorkerSlots] = (
    weakref.WeakKeyDictionary()
)


def worker_slots() -> WorkerSlots:
    loop = asyncio.get_running_loop()
    slots = _workers.get(loop)
    if slots is None:
        slots = _workers[loop] = WorkerSlots()
    return slots
