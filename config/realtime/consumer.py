"""RealtimeConsumer: the base of every WebSocket consumer (DESIGN section 4).

It owns the protocol so that app consumers only declare commands:

    class PresenceConsumer(RealtimeConsumer):
        app = "presence"

        @command("presence.signal.send")
        async def on_signal_send(self, data: dict) -> dict:
            await signal_send(user=self.user, room=data.get("room"), payload=data.get("data"))
            return {}

What it does for them: refuses unauthenticated handshakes (close 4401) and lets ``authorize``
refuse others (4403/4404); sends ``session.welcome``; parses every frame with size and depth
limits; dispatches client types only through the table built from ``@command``; applies per-user
per-type rate limits shared by all workers; answers with ``ack`` or an ``error`` frame with a
stable code (never exception text); closes abusive or silent sockets; relays group frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, ClassVar, Protocol

from autobahn.exception import Disconnected
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.utils.module_loading import import_string

from config.errors import (
    CLOSE_FORBIDDEN,
    CLOSE_INTERNAL,
    CLOSE_NOT_FOUND,
    CLOSE_RATE_LIMITED,
    CLOSE_SERVICE_RESTART,
    CLOSE_TOO_MANY_SOCKETS,
    CLOSE_UNAUTHENTICATED,
    CLOSE_UNAVAILABLE,
    AppError,
    ErrorCode,
)
from config.outages import service_unavailable
from config.realtime import outbox
from config.realtime.auth import session_of
from config.realtime.connections import connections_for_loop
from config.realtime.control import worker_control, worker_id
from config.realtime.envelope import (
    Limits,
    encode_ack,
    encode_error,
    encode_event,
    parse_command,
    peek_id,
)
from config.realtime.kv import get_store
from config.realtime.ratelimit import Rate, WindowCounter, parse_rate
from config.realtime.shutdown import install as install_graceful_shutdown
from config.realtime.socket_slots import worker_slots
from config.realtime.throttle import athrottle
from monitoring import buffered, metrics

log = logging.getLogger(__name__)

Handler = Callable[[Any, dict[str, Any]], Awaitable[dict[str, Any] | None]]
# WebSocket close code for a client that keeps sending unusable frames (RFC 6455 policy).
CLOSE_POLICY_VIOLATION = 1008
# Streams whose last seq a socket remembers to drop duplicate broadcasts (a bound on memory).
MAX_TRACKED_STREAMS = 2000
_CLOSE_FOR_CODE = {
    ErrorCode.NOT_FOUND: CLOSE_NOT_FOUND,
    ErrorCode.FORBIDDEN: CLOSE_FORBIDDEN,
    ErrorCode.UNAUTHENTICATED: CLOSE_UNAUTHENTICATED,
}


@cache
def _presence_tracker() -> Callable[[Any, str], PresenceTracker]:
    # Named in settings, not imported: config.realtime imports no app (DESIGN section 3).
    return import_string(settings.REALTIME_PRESENCE_TRACKER)


@cache
def _event_recorder() -> Callable[..., None]:
    return import_string(settings.REALTIME_EVENT_RECORDER)  # monitoring.events.socket_event


def _record_event(scope: dict[str, Any], kind: str, details: dict[str, Any], **kw: Any) -> None:
    # Only on refusal paths, and without waiting: recording must never slow or break a socket.
    try:
        _event_recorder()(scope, kind, "warning", details, **kw)
    except Exception:
        log.warning("recording a %s event failed", kind, exc_info=True)


class PresenceTracker(Protocol):
    """What the base consumer needs of presence (presence.tracking.ConnectionPresence)."""

    async def opened(self) -> None: ...
    async def input(self) -> None: ...
    async def closed(self) -> None: ...


def command(message_type: str) -> Callable[[Handler], Handler]:
    """Mark a consumer method as the handler of one client message type."""

    def mark(handler: Handler) -> Handler:
        handler.command_type = message_type  # type: ignore[attr-defined]
        return handler

    return mark


def _rate_for(message_type: str) -> Rate:
    return parse_rate(settings.REALTIME_RATES.get(message_type, settings.REALTIME_RATE_DEFAULT))


@cache
def _messages_out(app: str, kind: str):  # type: ignore[no-untyped-def]
    # Bound once: this runs for every delivery of every broadcast.
    return metrics.WS_MESSAGES_OUT.labels(app=app, kind=kind)


@cache
def _delivery_seconds(app: str):  # type: ignore[no-untyped-def]
    return metrics.DELIVERY_SECONDS.labels(app=app)


@cache
def _messages_in(app: str, message_type: str):  # type: ignore[no-untyped-def]
    return metrics.WS_MESSAGES_IN.labels(app=app, type=message_type)


@cache
def _handler_seconds(app: str, message_type: str):  # type: ignore[no-untyped-def]
    return metrics.HANDLER_SECONDS.labels(app=app, type=message_type)


# Clean-ups that outlive their consumer, kept until done (the loop holds tasks weakly).
_orphan_cleanups: set[asyncio.Task[None]] = set()


def _in_background(work: Any) -> None:
    async def run() -> None:
        try:
            await work
        except Exception:  # Redis down, say: nobody waits for this, so it is logged here
            log.warning("a clean-up after a consumer ended failed", exc_info=True)

    task = asyncio.get_running_loop().create_task(run())
    _orphan_cleanups.add(task)
    task.add_done_callback(_orphan_cleanups.discard)


class RealtimeConsumer(AsyncWebsocketConsumer):
    app: ClassVar[str] = "realtime"
    # Built by __init_subclass__ from @command methods: the only way a client type reaches code.
    command_table: ClassVar[dict[str, Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, Handler] = {}
        for klass in reversed(cls.__mro__):  # subclasses override their bases' handlers
            for value in vars(klass).values():
                message_type = getattr(value, "command_type", None)
                if message_type is not None:
                    table[message_type] = value
        cls.command_table = table

    # --- hooks for app consumers -------------------------------------------------------------
    async def authorize(self) -> None:
        """Check the user may use this route's object; raise AppError(NOT_FOUND/FORBIDDEN)."""

    async def on_connect(self) -> None:
        """After the welcome frame: join groups, send a snapshot."""

    async def on_disconnect(self, code: int) -> None:
        """Leave rooms, drop soft state. Groups joined with join_group are left for you."""

    # --- connection lifecycle -----------------------------------------------------------------
    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels >= 4.2 hops to the ORM thread (aclose_old_connections) before *every* message,
        # group events included, which queues fan-out behind database work. Our ORM work runs
        # through database_sync_to_async, which closes stale connections itself, so skip it.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None or message["type"].startswith("_"):
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.user = self.scope.get("user")
        self.joined_groups: set[str] = set()
        self.connection_id = uuid.uuid4().hex[:16]
        self.strikes = WindowCounter()
        self.registered = False
        self.closing = False
        self.connection_counters: dict[str, WindowCounter] = {}
        self.last_seq: dict[str, int] = {}
        self.slot: str | None = None  # this socket's place in its user's count, once claimed
        if self.user is None or not self.user.is_authenticated:
            await self._refuse(CLOSE_UNAUTHENTICATED, "unauthenticated")
            return
        self.registry = connections_for_loop(
            settings.REALTIME_HEARTBEAT_TIMEOUT_SECONDS,
            max(1.0, settings.REALTIME_HEARTBEAT_SECONDS / 3),
        )
        install_graceful_shutdown(self.registry)
        if self.registry.draining:  # this worker is stopping: the client goes to another one
            await self._refuse(CLOSE_SERVICE_RESTART, "draining", record=False)
            return
        self.control = worker_control(self.registry)
        if self.app in (await self.control.current()).disabled_apps:
            await self._refuse(CLOSE_UNAVAILABLE, "unavailable", record=False)
            return
        try:
            await self.authorize()
        except AppError as error:
            await self._refuse(_CLOSE_FOR_CODE.get(error.code, CLOSE_FORBIDDEN), error.code.value)
            return
        except Exception:
            log.exception("%s.authorize failed", type(self).__name__)
            await self._refuse(CLOSE_INTERNAL, "internal")
            return
        if not await self._claim_slot():
            # One a minute per user in the audit trail: a page reconnecting with backoff while
            # its user is at the cap is not a new incident at every try.
            dedupe = f"sockets:{self.user.pk}"
            await self._refuse(CLOSE_TOO_MANY_SOCKETS, "too_many_sockets", dedupe=dedupe)
            return
        await self.accept()
        self.last_seen = asyncio.get_running_loop().time()
        self.registry.add(self)
        if self.registry.draining or self.app in self.control.state.disabled_apps:
            # Switched off (or the worker began stopping) while this handshake was being
            # authorized, after the worker closed the sockets it had: this one must not slip
            # through.
            self.registry.discard(self)
            self._release_slot()
            draining = self.registry.draining
            outcome = "draining" if draining else "unavailable"
            metrics.WS_CONNECTS.labels(app=self.app, outcome=outcome).inc()
            await self.close(code=CLOSE_SERVICE_RESTART if draining else CLOSE_UNAVAILABLE)
            return
        self.registered = True
        self.session_hash: str | None = None  # set by _end_with_the_session
        self.control.ensure_running()
        metrics.WS_CONNECTS.labels(app=self.app, outcome="accepted").inc()
        metrics.WS_CONNECTIONS.labels(app=self.app).inc()
        self.presence = _presence_tracker()(self.user, self.connection_id)
        await self.send_frame("welcome", encode_event("session.welcome", await self._welcome()))
        for announcement in self.control.state.live_announcements(time.time()):
            await self.send_frame("event", announcement.published)
        try:
            await self._end_with_the_session()
            await self.presence.opened()
            await self.on_connect()
        except AppError as error:
            await self.close(code=_CLOSE_FOR_CODE.get(error.code, CLOSE_FORBIDDEN))
        except Exception:
            log.exception("%s.on_connect failed", type(self).__name__)
            await self.close(code=CLOSE_INTERNAL)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        self.closing = True
        await super().close(code=code, reason=reason)

    async def _refuse(
        self, close_code: int, outcome: str, *, record: bool = True, dedupe: str | None = None
    ) -> None:
        # Accept, then close with a 44xx code: a browser cannot read an HTTP 403, and clients
        # must tell "authenticate again" (4401) from "this object is not yours" (4404).
        metrics.WS_CONNECTS.labels(app=self.app, outcome=outcome).inc()
        if record:  # not for an app staff switched off: that is no one's misdeed
            details = {"app": self.app, "close_code": close_code, "path": self.scope.get("path")}
            _record_event(self.scope, "ws_denied", details, dedupe=dedupe)
        await self.accept()
        await self.close(code=close_code)

    async def _claim_slot(self) -> bool:
        """A place among the user's open sockets on every worker (S9 e); False at the cap."""
        cap = settings.REALTIME_MAX_SOCKETS_PER_USER
        if cap <= 0:
            return True
        slot = f"{worker_id()}/{self.connection_id}"
        try:
            claimed = await worker_slots().claim(
                user_id=self.user.pk, slot=slot, cap=cap, now=time.time()
            )
        except Exception:
            # Redis away: the cap is a brake on abuse, not a reason to refuse everyone. The
            # socket goes uncounted (the handshake fails further on if Redis stays away).
            log.warning("claiming a socket slot failed; admitted uncounted", exc_info=True)
            return True
        if claimed:
            self.slot = slot
        return claimed

    def _release_slot(self) -> None:
        """Given back once, without waiting: no longer renewed from here on, and removed from
        the shared count by a task of its own (if Redis is away, it lapses within its TTL)."""
        slot, self.slot = getattr(self, "slot", None), None
        removal = worker_slots().release(slot) if slot is not None else None
        if removal is not None:
            _in_background(removal)

    async def _welcome(self) -> dict[str, Any]:
        return {
            "user": {"id": self.user.pk, "username": self.user.get_username()},
            "connection_id": self.connection_id,
            "heartbeat_interval": settings.REALTIME_HEARTBEAT_SECONDS,
            "epoch": await get_store().aepoch(),
            "max_message_bytes": settings.REALTIME_MAX_MESSAGE_BYTES,
        }

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        await self._clean_up(message.get("code", 1000))
        raise StopConsumer()

    async def _clean_up(self, code: int) -> None:
        """Everything a registered connection holds, given back once: the registry, the gauge,
        the app's hook, presence, groups."""
        if not getattr(self, "registered", False):
            return
        self.registered = False  # claimed: a second call (see __call__) does nothing
        self.registry.discard(self)
        self._release_slot()
        if getattr(self, "session_timer", None) is not None:
            self.session_timer.cancel()  # it would keep this consumer alive until it fires
        metrics.WS_CONNECTIONS.labels(app=self.app).dec()
        try:
            await self.on_disconnect(code)
        except Exception:
            log.exception("%s.on_disconnect failed", type(self).__name__)
        try:
            await self.presence.closed()
        except Exception:  # the entry lapses by itself within the presence TTL
            log.warning("dropping the presence of a closed connection failed", exc_info=True)
        for group in list(self.joined_groups):
            await self.leave_group(group)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        outbox.bind()  # this loop sends the broadcasts of the writes this socket commits
        try:
            await super().__call__(scope, receive, send)
        finally:
            if getattr(self, "registered", False):
                # The consumer ended without handling websocket.disconnect: an exception, or
                # Daphne killed it at --application-close-timeout with the disconnect still
                # queued behind slow work. Its connection must not stay counted, present and
                # in its groups for good (found by the churn load test), so the clean-up runs
                # in a task of its own: this one may be cancelled.
                _in_background(self._clean_up(1006))
            else:
                self._release_slot()  # claimed, then ended before it registered (or none)
            self._forget_channel()

    def _forget_channel(self) -> None:
        """Drop this consumer's channel from the pub/sub layer. RedisPubSubChannelLayer drops
        a channel's queue and Redis subscription only when a pending receive() on it is
        cancelled; a consumer whose last receive had already completed left both behind, about
        4 KiB per reconnect (django/channels_redis#276; the churn load test, docs/benchmarks.md).
        And when that cancelled receive's own unsubscribe is cancelled in turn (Daphne ends a
        consumer still cleaning up after --application-close-timeout: every publish of the
        worker queues on the same shard lock, so under overload it waits), the layer logs
        "Unexpected exception while cleaning-up channel" and keeps the subscription: dropped
        here too. Its ``channels`` dict and the shard's ``_subscribed_to`` are private API,
        hence the guards."""
        layer = getattr(self, "channel_layer", None)
        channel = getattr(self, "channel_name", None)
        if not isinstance(layer, RedisPubSubChannelLayer) or channel is None:
            return
        loop_layer = layer._get_layer()
        loop_layer.channels.pop(channel, None)
        shard = loop_layer._get_shard(channel)
        if channel in getattr(shard, "_subscribed_to", ()):
            _in_background(shard.unsubscribe(channel))

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        # The client's close frame is in and the TCP connection not yet gone: autobahn refuses
        # to send, and raising here would end the consumer before it handles the
        # websocket.disconnect that follows. The frame was for a socket going away anyway.
        with contextlib.suppress(Disconnected):
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    # --- the user's session and rights ------------------------------------------------------
    async def _end_with_the_session(self) -> None:
        """A socket opened under a session closes (4401) when the session expires; logging out
        closes it at once (WorkerControl.end_session)."""
        session = await session_of(self.scope)
        if session is None:
            return  # a ticket asked for with a token: it lives as long as the token does
        self.session_hash = session.hash
        loop = asyncio.get_running_loop()
        self.session_timer = self.message_self_at(
            loop.time() + max(0.0, session.ends_at - time.time()), "realtime.session.ended"
        )

    async def realtime_session_ended(self, message: dict[str, Any]) -> None:
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def realtime_recheck(self, message: dict[str, Any]) -> None:
        """The user's rights may have changed (a membership removed or its role changed;
        WorkerControl.recheck_user sends this): authorize again against the database as the
        handshake did, and close as a refused handshake would when the answer is now no, so a
        removed member stops hearing the object's events."""
        if not self.registered or self.closing:
            return
        try:
            await self.authorize()
        except AppError as error:
            await self.close(code=_CLOSE_FOR_CODE.get(error.code, CLOSE_FORBIDDEN))

    # --- timers ------------------------------------------------------------------------------
    def message_self_at(self, when: float, message_type: str) -> asyncio.TimerHandle:
        """At loop time ``when``, put ``{"type": message_type}`` on this consumer's own queue,
        so the timer's work runs in turn with the socket's frames, never concurrently."""

        def send() -> None:
            self.timer_sends.add(
                task := asyncio.ensure_future(
                    self.channel_layer.send(self.channel_name, {"type": message_type})
                )
            )
            task.add_done_callback(self.timer_sends.discard)

        if not hasattr(self, "timer_sends"):
            self.timer_sends: set[asyncio.Future[None]] = set()
        return asyncio.get_running_loop().call_at(when, send)

    # --- groups ------------------------------------------------------------------------------
    async def join_group(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined_groups.add(group)

    async def leave_group(self, group: str) -> None:
        self.joined_groups.discard(group)
        await self.channel_layer.group_discard(group, self.channel_name)

    async def realtime_frame(self, message: dict[str, Any]) -> None:
        """A frame broadcast to a group we are in: already encoded, sent as it is."""
        if "dedupe" in message and self._seen_before(*message["dedupe"]):
            return
        await self.send_frame("event", message["frame"])
        self.observe_delivery(message)

    def observe_delivery(self, message: dict[str, Any]) -> None:
        """Commit (or send) to socket, for collab_broadcast_delivery_seconds."""
        if "sent_at" in message:
            buffered.observe(_delivery_seconds(self.app), time.time() - message["sent_at"])

    def _seen_before(self, stream: str, seq: int) -> bool:
        last = self.last_seq.get(stream)
        if last is not None and seq <= last:
            return True
        self.last_seq.pop(stream, None)  # re-inserted last: the oldest stream is evicted first
        self.last_seq[stream] = seq
        if len(self.last_seq) > MAX_TRACKED_STREAMS:
            del self.last_seq[next(iter(self.last_seq))]
        return False

    # --- client frames -----------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not getattr(self, "registered", False) or self.closing:
            # Refused at the handshake (4401/4403/4404), or closed by us (4408/4429/1008) and not
            # yet disconnected: its frames must reach nothing.
            return
        received_at = time.perf_counter()
        self.last_seen = asyncio.get_running_loop().time()
        raw = text_data if text_data is not None else bytes_data
        command_type = "invalid"
        command_id = None
        try:
            if text_data is None:
                raise AppError(ErrorCode.BAD_FRAME, "Send JSON in text frames.")
            parsed = parse_command(raw, self._limits())  # type: ignore[arg-type]
            command_id, command_type = parsed.id, parsed.type
            handler = self.command_table.get(parsed.type)
            if handler is None:
                command_type = "unknown"
                raise AppError(ErrorCode.UNKNOWN_TYPE, f"Unknown message type {parsed.type!r}.")
            buffered.count(_messages_in(self.app, parsed.type))
            await self._check_rate(parsed.type)
            if parsed.type != "session.heartbeat":
                await self.presence.input()
            result = await handler(self, parsed.data)
            if command_id is not None:
                await self.send_frame("ack", encode_ack(command_id, result))
        except AppError as error:
            if command_id is None and raw is not None and error.code != ErrorCode.TOO_LARGE:
                command_id = peek_id(raw)
            await self._reply_error(command_id, error, command_type)
        except Exception as failure:
            answer = service_unavailable(failure)  # PostgreSQL or Redis down: retryable
            if answer is None:
                log.exception("handling %s failed", command_type)
                answer = AppError(ErrorCode.INTERNAL, "Internal error.")
            await self._reply_error(command_id, answer, command_type)
        finally:
            buffered.observe(
                _handler_seconds(self.app, command_type), time.perf_counter() - received_at
            )

    @command("session.heartbeat")
    async def on_heartbeat(self, data: dict[str, Any]) -> dict[str, Any]:
        # Receiving it already refreshed last_seen; the reply lets clients measure round trips.
        # "active": the user gave input since the last beat (clients detect idleness).
        active = data.get("active", False)
        if not isinstance(active, bool):
            raise AppError(ErrorCode.INVALID, "'active' must be true or false.")
        if active:
            await self.presence.input()
        return {"server_time": time.time()}

    async def _check_rate(self, message_type: str) -> None:
        connection_rate = settings.REALTIME_CONNECTION_RATES.get(message_type)
        if connection_rate is not None:
            # Limits on what scales with sockets, not users (heartbeats): counted here, with no
            # Redis round trip on the idle path.
            counter = self.connection_counters.setdefault(message_type, WindowCounter())
            decision = counter.hit(parse_rate(connection_rate), time.time())
        else:
            decision = await athrottle(f"ws:{self.user.pk}:{message_type}", _rate_for(message_type))
        if not decision.allowed:
            metrics.RATE_LIMITED.labels(channel="ws", action=message_type).inc()
            details = {"app": self.app, "channel": "ws", "action": message_type}
            _record_event(
                self.scope, "rate_limited", details, dedupe=f"ws:{self.user.pk}:{message_type}"
            )
            raise AppError(
                ErrorCode.RATE_LIMITED,
                "Too many messages of this type; slow down.",
                retry_after=decision.retry_after,
            )

    async def _reply_error(
        self, command_id: str | None, error: AppError, command_type: str
    ) -> None:
        metrics.ERRORS.labels(channel="ws", code=error.code.value).inc()
        await self.send_frame("error", encode_error(command_id, error))
        if error.code in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN):
            # A foreign object answers not_found, so both are denials worth an audit line;
            # one a minute per user and type, whatever a client keeps asking.
            details = {"app": self.app, "action": command_type, "code": error.code.value}
            dedupe = f"denied:{self.user.pk}:{command_type}"
            _record_event(self.scope, "permission_denied", details, dedupe=dedupe)
        if error.code in (ErrorCode.INTERNAL, ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN):
            return  # our fault, or a legitimate question: not abuse
        await self._strike(error.code)

    async def _strike(self, code: ErrorCode) -> None:
        """Count bad or over-limit frames; a client that keeps at it is disconnected."""
        abuse_rate = Rate(limit=settings.REALTIME_ABUSE_LIMIT, period=60.0)
        if not self.strikes.hit(abuse_rate, time.time()).allowed:
            limited = code is ErrorCode.RATE_LIMITED
            await self.close(code=CLOSE_RATE_LIMITED if limited else CLOSE_POLICY_VIOLATION)

    async def send_frame(self, kind: str, frame: str) -> None:
        buffered.count(_messages_out(self.app, kind))
        await self.send(text_data=frame)

    @staticmethod
    def _limits() -> Limits:
        return Limits(
            max_bytes=settings.REALTIME_MAX_MESSAGE_BYTES, max_depth=settings.REALTIME_MAX_DEPTH
        )
