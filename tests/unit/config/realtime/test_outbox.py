"""The broadcast outbox (config/realtime/outbox.py): a commit hook on the ORM thread hands its
broadcast to the worker's loop and returns at once; the loop sends them in posting order; a
backlog is bounded; without a loop the hook sends as before.

The ``send`` given to ``post`` is the outbox's own seam (production passes
``broadcast.group_send``); here it records, and can be made slow to stand for a stalled layer."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from config.realtime import outbox


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.sent: list[tuple[str, dict]] = []

    async def __call__(self, group: str, message: dict) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.sent.append((group, message))


def post_from_a_thread(posts: list[tuple[str, dict]], send: Recorder) -> float:
    """Post as a commit hook on the ORM thread does; how long the posting thread was held."""
    held: list[float] = []

    def hook() -> None:
        started = time.monotonic()
        for group, message in posts:
            outbox.post(group, message, send)
        held.append(time.monotonic() - started)

    thread = threading.Thread(target=hook)
    thread.start()
    thread.join(5)
    return held[0]


async def test_a_slow_layer_does_not_hold_the_posting_thread_and_order_is_kept():
    outbox.bind()
    send = Recorder(delay=0.05)
    posts = [(f"g{n % 3}", {"n": n}) for n in range(20)]

    held = post_from_a_thread(posts, send)
    assert held < 0.5  # 20 sends take at least 1 s; posting only queued them
    await asyncio.wait_for(outbox.flush(), timeout=10)

    assert send.sent == posts


async def test_a_message_that_waited_too_long_is_dropped_not_sent_late(monkeypatch):
    outbox.bind()
    monkeypatch.setattr(outbox, "STALE_SECONDS", 0.2)
    send = Recorder(delay=0.3)  # the first send outlasts the second message's freshness

    post_from_a_thread([("g", {"n": 1}), ("g", {"n": 2}), ("g", {"n": 3})], send)
    await asyncio.wait_for(outbox.flush(), timeout=10)

    assert send.sent == [("g", {"n": 1})]


async def test_past_the_bound_the_oldest_are_dropped(monkeypatch):
    outbox.bind()
    monkeypatch.setattr(outbox, "MAX_PENDING", 3)
    send = Recorder()

    post_from_a_thread([("g", {"n": n}) for n in range(6)], send)  # all queued before any send
    await asyncio.wait_for(outbox.flush(), timeout=10)

    assert [message["n"] for _, message in send.sent] == [3, 4, 5]


async def test_a_failed_send_does_not_stop_the_ones_after_it():
    outbox.bind()
    sent: list[int] = []

    async def flaky(group: str, message: dict) -> None:
        if message["n"] == 1:
            raise ConnectionError("layer down")
        sent.append(message["n"])

    post_from_a_thread([("g", {"n": n}) for n in range(3)], flaky)  # type: ignore[arg-type]
    await asyncio.wait_for(outbox.flush(), timeout=10)

    assert sent == [0, 2]


def test_without_a_running_loop_the_hook_sends_itself():
    send = Recorder()
    # A loop that was bound and is gone (a management command after tests, a closed worker).
    loop = asyncio.new_event_loop()
    loop.run_until_complete(_bind())
    loop.close()

    outbox.post("g", {"n": 1}, send)

    assert send.sent == [("g", {"n": 1})]


async def _bind() -> None:
    outbox.bind()


@pytest.fixture(autouse=True)
def fresh_outbox(monkeypatch):
    monkeypatch.setattr(outbox, "_outbox", None)
