"""Worker control: what staff do to every worker at once, and what each worker reports back.

A Daphne worker has one event loop, and one ``WorkerControl`` per loop. While it has sockets:

- it holds the *control state*, loaded from the database through ``REALTIME_CONTROL_STATE``
  (monitoring.controls.control_state): the apps switched off and the live announcements. A
  handshake to a switched-off app is refused with 4503; a new socket gets the live announcements
  right after ``session.welcome``;
- it listens on the channel-layer group ``realtime.control``. ``{"action": "reload"}`` (sent by
  the services after commit) makes it load the state again and apply the difference to its live
  sockets: those of an app just switched off are closed with 4503, a new announcement is sent to
  every socket, a withdrawn one is withdrawn. ``{"action": "disconnect_user", "user_id": 7}``
  closes that user's sockets with 4401;
- it reloads the state every ``REALTIME_CONTROL_REFRESH_SECONDS`` whatever it heard, so a control
  message the layer lost (it is at-most-once) still takes effect within that time;
- it writes its open sockets per app to the shared store every ``REALTIME_CONTROL_REPORT_SECONDS``
  (kept three times that), which the staff connection counts read;
- it renews the group memberships of its sockets (and its own) at a third of the layer's
  ``group_expiry`` (config.realtime.groups.renewal_interval): the core Redis layer forgets a
  member that long after its ``group_add``, and a socket may stay open longer than that.

    await control_send({"action": "reload"})                      # after the change committed
    state = await worker_control().current()                       # at a handshake
    reports = worker_reports()                                     # every live worker's counts

A worker with no sockets stops both tasks and drops its report: it has nothing to control.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from config.errors import CLOSE_UNAUTHENTICATED, CLOSE_UNAVAILABLE
from config.realtime.broadcast import group_send
from config.realtime.connections import ConnectionRegistry
from config.realtime.groups import renewal_interval
from config.realtime.kv import get_store

log = logging.getLogger(__name__)

CONTROL_GROUP = "realtime.control"
CONTROL_MESSAGE = "realtime.control"
REPORTS = "workers"  # the shared store's set of worker reports
# After a failed load, handshakes use the last state (or none) this long before trying again:
# with the database down, every connect must not queue another doomed query.
RETRY_AFTER_FAILURE_SECONDS = 1.0


@dataclass(frozen=True)
class Announcement:
    id: int
    expires_at: float  # Unix time
    published: str  # the frames, encoded once by the loader
    withdrawn: str


@dataclass(frozen=True)
class ControlState:
    disabled_apps: frozenset[str] = frozenset()
    announcements: tuple[Announcement, ...] = ()

    def live_announcements(self, now: float) -> list[Announcement]:
        return [a for a in self.announcements if a.expires_at > now]


@cache
def _state_loader() -> Callable[[], Any]:
    # Named in settings, not imported: config.realtime imports no app (DESIGN section 3).
    # An async callable returning a ControlState.
    return import_string(settings.REALTIME_CONTROL_STATE)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def control_send(message: dict[str, Any]) -> None:
    """To every worker's control listener (at most once, like every group send)."""
    await group_send(CONTROL_GROUP, {"type": CONTROL_MESSAGE, **message})


def tell_workers_on_commit(message: dict[str, Any]) -> None:
    """``control_send`` from sync code, once the transaction commits (at once outside one)."""
    # robust: the change is committed (and every worker reloads the state within the refresh
    # interval anyway), so a channel layer that is down must not make the request an error.
    transaction.on_commit(lambda: async_to_sync(control_send)(message), robust=True)


async def worker_channel(layer: Any, label: str) -> str:
    """A new process-local channel for a listener of the worker's own, named after ``label``
    where the layer allows it."""
    if isinstance(layer, RedisChannelLayer):
        # The core layer keeps all process-local channels of a worker in one Redis key, named
        # after the part up to "!", and lets one receive at a time wait on Redis, for its own
        # channel's key. "control.<worker>!x" had a key of its own: the control listener, always
        # waiting, kept that one receive, and the worker's sockets heard no group message again
        # until a control message came (found by tests/system/faults/test_group_expiry.py).
        return await layer.new_channel()
    return await layer.new_channel(f"{label}.")


def worker_reports() -> list[dict[str, Any]]:
    """The latest report of every worker that has sockets, by worker id."""
    return sorted(
        (json.loads(value) for value in get_store().reports(REPORTS).values()),
        key=lambda report: report["worker"],
    )


class WorkerControl:
    def __init__(self, registry: ConnectionRegistry) -> None:
        self.registry = registry
        self.state = ControlState()
        self.loaded_at: float | None = None  # loop time of the last load, failed or not
        self.started_at = time.time()
        self._reload_lock = asyncio.Lock()
        self._loading: asyncio.Future[None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while subscribed to the control group
        self._channel: str | None = None
        self._renewed_at = 0.0  # loop time of the last renewal of group memberships

    def ensure_running(self) -> None:
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def current(self) -> ControlState:
        """The control state, loaded first when it is older than the refresh interval."""
        if self._stale(settings.REALTIME_CONTROL_REFRESH_SECONDS):
            await self._load_once()
        return self.state

    def _stale(self, max_age: float) -> bool:
        if self.loaded_at is None:
            return True
        return asyncio.get_running_loop().time() - self.loaded_at > max_age

    async def _load_once(self) -> None:
        # Concurrent handshakes of a stale worker wait for one load, not one each.
        if self._loading is None or self._loading.done():
            self._loading = asyncio.ensure_future(self.reload())
        await asyncio.shield(self._loading)

    async def reload(self) -> None:
        """Load the state and bring the live sockets in line with what changed since the last
        load, whoever asked for it (a handshake, the timer, a control message)."""
        async with self._reload_lock:
            before = self.state
            try:
                after = await _state_loader()()
            except Exception:
                log.warning("loading the realtime control state failed", exc_info=True)
                # Not reloaded: tried again after a short pause, not at every handshake.
                refresh = settings.REALTIME_CONTROL_REFRESH_SECONDS
                self.loaded_at = asyncio.get_running_loop().time() - max(
                    0.0, refresh - RETRY_AFTER_FAILURE_SECONDS
                )
                return
            self.state = after
            self.loaded_at = asyncio.get_running_loop().time()
            # Under the lock too: a withdrawal applied by the next reload must not overtake
            # this one's announcement on the sockets it has not reached yet.
            await self._apply(before, after)

    async def _apply(self, before: ControlState, after: ControlState) -> None:
        switched_off = after.disabled_apps - before.disabled_apps
        if switched_off:
            await self._close_where(lambda c: c.app in switched_off, CLOSE_UNAVAILABLE)
        now = time.time()
        known = {a.id for a in before.announcements}
        for announcement in after.live_announcements(now):
            if announcement.id not in known:
                await self._send_all(announcement.published)
        still = {a.id for a in after.announcements}
        for announcement in before.live_announcements(now):
            if announcement.id not in still:  # withdrawn before it expired
                await self._send_all(announcement.withdrawn)

    async def disconnect_user(self, user_id: int) -> None:
        await self._close_where(lambda c: c.user.pk == user_id, CLOSE_UNAUTHENTICATED)

    async def end_session(self, user_id: int, session_hash: str) -> None:
        """Logged out: the sockets opened under that session (cookie, or a ticket asked for
        with it; known by the hash of its key) close; the user's other sessions and token-ticket
        sockets stay."""
        await self._close_where(
            lambda c: c.user.pk == user_id and getattr(c, "session_hash", None) == session_hash,
            CLOSE_UNAUTHENTICATED,
        )

    async def recheck_user(self, user_id: int) -> None:
        """The user's rights changed: each of their sockets authorizes again, in turn with its
        own frames (RealtimeConsumer.realtime_recheck)."""
        for connection in [c for c in self.registry.live if c.user.pk == user_id]:
            try:
                await connection.channel_layer.send(
                    connection.channel_name, {"type": "realtime.recheck"}
                )
            except Exception:  # one socket's channel gone must not spare the others
                log.warning("asking a socket to recheck its access failed", exc_info=True)

    async def _close_where(self, which: Callable[[Any], bool], code: int) -> None:
        for connection in [c for c in self.registry.live if which(c)]:
            try:
                await connection.close(code=code)
            except Exception:  # one socket already gone must not keep the others open
                log.warning("closing a socket for a control message failed", exc_info=True)

    async def _send_all(self, frame: str) -> None:
        for connection in list(self.registry.live):
            if getattr(connection, "closing", False):
                continue
            try:
                await connection.send_frame("event", frame)
            except Exception:
                log.warning("sending a control frame failed", exc_info=True)

    # --- the tasks ---------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        listener = loop.create_task(self._listen())
        self._renewed_at = loop.time()  # every membership there is was made since
        renew_every = renewal_interval(getattr(get_channel_layer(), "group_expiry", None))
        tick = min(settings.REALTIME_CONTROL_REPORT_SECONDS, renew_every or float("inf"))
        try:
            while self.registry.live:
                await self._report()
                if renew_every is not None and loop.time() - self._renewed_at >= renew_every:
                    await self._renew_memberships()
                if self._stale(settings.REALTIME_CONTROL_REFRESH_SECONDS):
                    await self._load_once()
                await asyncio.sleep(tick)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self._drop_report()

    async def _listen(self) -> None:
        layer = get_channel_layer()
        channel = self._channel = await worker_channel(layer, "control")
        try:
            await layer.group_add(CONTROL_GROUP, channel)
            self.listening.set()
            while True:
                message = await layer.receive(channel)
                await self._handle(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The layer failed (Redis gone): the periodic reload still applies every change.
            log.warning("the control listener stopped", exc_info=True)
        finally:
            self.listening.clear()
            with contextlib.suppress(Exception):
                await layer.group_discard(CONTROL_GROUP, channel)

    async def _renew_memberships(self) -> None:
        """group_add again every group of every live socket, and the control group's listener.

        The core Redis layer drops a member group_expiry after its last group_add (a day by
        default), and a socket or a worker may live for weeks: without this, a socket older
        than that stopped hearing its rooms with no sign of it (RELIABILITY.md F10).
        """
        layer = get_channel_layer()
        started = asyncio.get_running_loop().time()
        try:
            if self.listening.is_set() and self._channel is not None:
                await layer.group_add(CONTROL_GROUP, self._channel)
            for connection in list(self.registry.live):
                await _renew_groups(layer, connection)
        except Exception:  # Redis down, say: tried again at the next tick, within the expiry
            log.warning("renewing group memberships failed", exc_info=True)
            return
        self._renewed_at = started

    async def _handle(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        try:
            if action == "reload":
                await self.reload()
            elif action == "disconnect_user" and isinstance(message.get("user_id"), int):
                await self.disconnect_user(message["user_id"])
            elif action == "recheck_user" and isinstance(message.get("user_id"), int):
                await self.recheck_user(message["user_id"])
            elif (
                action == "end_session"
                and isinstance(message.get("user_id"), int)
                and isinstance(message.get("session"), str)
            ):
                await self.end_session(message["user_id"], message["session"])
            else:
                log.warning("unknown control message %r", action)
        except Exception:
            log.exception("handling control message %r failed", action)

    def report(self) -> dict[str, Any]:
        apps = Counter(getattr(c, "app", "realtime") for c in self.registry.live)
        return {
            "worker": worker_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "apps": dict(sorted(apps.items())),
            "total": sum(apps.values()),
            "started_at": self.started_at,
            "reported_at": time.time(),
        }

    async def _report(self) -> None:
        ttl = settings.REALTIME_CONTROL_REPORT_SECONDS * 3
        try:
            await get_store().areport(REPORTS, worker_id(), json.dumps(self.report()), ttl=ttl)
        except Exception:  # counts are for staff eyes; a Redis blip must not stop the control
            log.warning("writing the worker report failed", exc_info=True)

    async def _drop_report(self) -> None:
        with contextlib.suppress(Exception):
            await get_store().adrop_report(REPORTS, worker_id())


async def _renew_groups(layer: Any, connection: Any) -> None:
    channel = getattr(connection, "channel_name", None)
    for group in list(getattr(connection, "joined_groups", ())):
        await layer.group_add(group, channel)
        if group not in connection.joined_groups:
            # Left while this add was on its way (leave_group forgets the group, then discards
            # it): the discard may have gone out first, and this add must not outlive it.
            await layer.group_discard(group, channel)


_controls: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WorkerControl] = (
    weakref.WeakKeyDictionary()
)


def worker_control(registry: ConnectionRegistry) -> WorkerControl:
    """This event loop's control, watching its registry of live connections."""
    loop = asyncio.get_running_loop()
    control = _controls.get(loop)
    if control is None:
        control = _controls[loop] = WorkerControl(registry)
    return control
