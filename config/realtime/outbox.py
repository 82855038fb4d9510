"""Broadcasts handed from the ORM thread to the worker's event loop, so no answer waits on Redis.

A write commits on the ORM thread, and its broadcast goes to the channel layer after the commit
(``broadcast.group_send_on_commit``). Sending it right there would hold the ORM thread, and with
it the op's ack and every other database call of the process, for as long as Redis takes to
answer: a Redis stall became an ack stall (RELIABILITY.md F4: "op ack p99 unaffected because the
ack path avoids Redis"). Instead the commit hook posts the message to this process's outbox,
and one task on the event loop sends them in the order they were posted, which is commit order
(one ORM thread per process, and ``call_soon_threadsafe`` keeps order).

The layer is only the fast path: every receiver of a stream fills gaps from PostgreSQL, so a
broadcast that cannot go out does not lose data. That lets the outbox bound itself: past
``MAX_PENDING`` messages the oldest are dropped, and a message that waited longer than
``STALE_SECONDS`` (Redis down or half-open) is dropped rather than sent late; both are counted
(``collab_layer_send_failures_total{reason="outbox_dropped"}``).

Without a long-lived event loop to hand to (management commands, sync tests, shells) the message
is sent at once, as before. ``bind()`` runs on every ASGI call (``config.asgi``) and every socket.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync

from monitoring import metrics

log = logging.getLogger(__name__)

MAX_PENDING = 50_000
STALE_SECONDS = 30.0
_WARN_EVERY = 10.0

Send = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass
class _Outbox:
    loop: asyncio.AbstractEventLoop
    pending: collections.deque[tuple[float, str, dict[str, Any], Send]] = field(
        default_factory=collections.deque
    )
    sender: asyncio.Task[None] | None = None
    last_warning: float = 0.0


_outbox: _Outbox | None = None


def bind() -> None:
    """Make the running loop this process's outbox loop (call from async code of the worker)."""
    global _outbox
    loop = asyncio.get_running_loop()
    if _outbox is None or _outbox.loop is not loop:
        _outbox = _Outbox(loop)


def post(group: str, message: dict[str, Any], send: Send) -> None:
    """From sync code (a commit hook): ``send(group, message)`` soon, on the outbox loop."""
    outbox = _outbox
    if outbox is None or outbox.loop.is_closed() or not outbox.loop.is_running():
        async_to_sync(send)(group, message)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # on a loop already (not the ORM thread): there is no thread to spare
        async_to_sync(send)(group, message)
        return
    outbox.loop.call_soon_threadsafe(_enqueue, outbox, (time.monotonic(), group, message, send))


def _enqueue(outbox: _Outbox, item: tuple[float, str, dict[str, Any], Send]) -> None:
    if len(outbox.pending) >= MAX_PENDING:
        outbox.pending.popleft()
        _dropped(outbox, "the outbox is full")
    outbox.pending.append(item)
    if outbox.sender is None or outbox.sender.done():
        outbox.sender = outbox.loop.create_task(_send_pending(outbox))


async def _send_pending(outbox: _Outbox) -> None:
    while outbox.pending:
        posted_at, group, message, send = outbox.pending.popleft()
        if time.monotonic() - posted_at > STALE_SECONDS:
            _dropped(outbox, "the channel layer was unreachable for too long")
            continue
        try:
            await send(group, message)
        except Exception as error:  # counted by the sender; receivers fill the gap
            _warn(outbox, "a broadcast to %s failed: %r", group, error)


async def flush() -> None:
    """Until everything posted so far is sent (the SIGTERM drain; the caller bounds the wait)."""
    outbox = _outbox
    if outbox is None or outbox.loop is not asyncio.get_running_loop():
        return
    # The sender runs until the queue is empty; a post after that starts a new one.
    while outbox.sender is not None and not outbox.sender.done():
        await asyncio.shield(outbox.sender)


def _dropped(outbox: _Outbox, why: str) -> None:
    metrics.LAYER_SEND_FAILURES.labels(reason="outbox_dropped").inc()
    _warn(outbox, "a broadcast was dropped: %s (receivers fill gaps from the database)", why)


def _warn(outbox: _Outbox, text: str, *args: Any) -> None:
    now = time.monotonic()
    if now - outbox.last_warning > _WARN_EVERY:
        outbox.last_warning = now
        log.warning(text, *args)
