"""A document edited from Python: the realtime client (config.client) driving the OT client
state machine (collab.otclient.Editor), so that no keystroke is lost or applied twice across
drops and reconnects.

    session = DocumentSession("ws://localhost:8000/ws/collab/documents/7/", ticket=ticket,
                              origin="http://localhost:8000", client_id="tab-1")
    await session.start()              # returns once the snapshot is in: session.text
    session.edit([5, "!"])             # applied locally at once, sent when it may go
    await session.settled()            # every local edit acked
    await session.close()

How a drop is survived: edits made while offline are applied locally and buffered; the op that
was in flight stays a pending command of the client, sent again after the reconnect with its
``(client_id, seq)``, which the server applies once (a duplicate answers with the original
version). The socket comes back with ``?since=<version>`` and the missed ops are transformed
against what is in flight and buffered, exactly as live ones are.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from collab import ot
from collab.otclient import Editor
from config.client import CommandError, RealtimeClient
from config.client.backoff import backoff_delay

log = logging.getLogger(__name__)
# An op waits in the client's queue across drops: a long bound, not a speed expectation.
SUBMIT_TIMEOUT_SECONDS = 300.0


class DocumentSession:
    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        ticket: Callable[[], Awaitable[str]] | None = None,
        origin: str | None = None,
        **client_options: Any,
    ) -> None:
        self.client_id = client_id
        self.editor: Editor | None = None
        self.errors: list[Exception] = []
        self.retried = 0  # ops that had to be sent again after a retryable error (outage, rate)
        self._ready = asyncio.Event()
        self._submits: set[asyncio.Task[None]] = set()
        self._progress = asyncio.Event()  # set whenever a submit ends
        self.client = RealtimeClient(
            url, ticket=ticket, origin=origin, resume=self._resume, **client_options
        )
        self.client.on("collab.document.snapshot", self._on_snapshot)
        self.client.on("collab.op.applied", self._on_applied)

    @property
    def text(self) -> str:
        return self.editor.text if self.editor is not None else ""

    @property
    def version(self) -> int:
        return self.editor.version if self.editor is not None else 0

    async def start(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        await self.client.start()
        async with asyncio.timeout(timeout):
            await self._ready.wait()

    def edit(self, op: list[Any]) -> None:
        """Apply a local edit now; it reaches the server when the op before it is acked."""
        if self.editor is None:
            raise RuntimeError("no snapshot yet: await start() first")
        if not ot.normalize(op):
            return  # changes nothing: no op to send
        self._submit(self.editor.edit(op))

    async def settled(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until every local edit is acked (the buffer sent, nothing in flight)."""
        async with asyncio.timeout(timeout):
            while self.editor is None or not self.editor.settled or self._submits:
                self._progress.clear()
                await self._progress.wait()

    async def close(self) -> None:
        await self.client.close()
        for task in list(self._submits):
            task.cancel()

    # --- the state machine's side --------------------------------------------------------------
    def _resume(self, last_seq: dict[str, int]) -> dict[str, Any]:
        return {"since": self.editor.version} if self.editor is not None else {}

    def _on_snapshot(self, frame: dict[str, Any]) -> None:
        data = frame["data"]
        if self.editor is None:
            self.editor = Editor(client_id=self.client_id, text=data["content"],
                                 version=data["version"])  # fmt: skip
        elif self.editor.settled:
            # The history since our version was too long to replay: start again from here.
            self.editor.text, self.editor.version = data["content"], data["version"]
        else:
            error = RuntimeError("a snapshot replaced the history while edits were unacked")
            self.errors.append(error)
            log.error("%s", error)
        self._ready.set()

    def _on_applied(self, frame: dict[str, Any]) -> None:
        if self.editor is None:
            return
        data = frame["data"]
        self._submit(
            self.editor.remote(
                data["op"],
                version=data["version"],
                client_id=data.get("client_id"),
                seq=data.get("seq"),
            )
        )

    def _submit(self, submit: dict[str, Any] | None) -> None:
        if submit is None:
            return
        task = asyncio.get_running_loop().create_task(self._send(submit))
        self._submits.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._submits.discard(task)
        self._progress.set()

    async def _send(self, submit: dict[str, Any]) -> None:
        def acked(reply: dict[str, Any]) -> None:
            # As the ack is read, not when this task resumes: by then the ops committed after
            # ours may have arrived, and the editor must see our ack before them.
            if reply["type"] == "ack":
                assert self.editor is not None
                self._submit(self.editor.ack(reply["data"]["version"], seq=submit["seq"]))

        for attempt in itertools.count():
            try:
                await self.client.command(
                    "collab.op.submit", submit, timeout=SUBMIT_TIMEOUT_SECONDS, on_reply=acked
                )
                return
            except CommandError as error:
                if not error.error.get("retry"):
                    self._rejected(error)
                    return
                # Rate limited, or the server short of Redis or the database: the same op (the
                # same client_id and seq, so applied once) again after its retry_after.
                self.retried += attempt == 0
                wait = error.error.get("retry_after") or backoff_delay(
                    failures=attempt,
                    random=random.random(),  # noqa: S311
                )
                await asyncio.sleep(wait)
            except Exception as error:  # the client closed, or the op waited too long
                self._rejected(error)
                return

    def _rejected(self, error: Exception) -> None:
        self.errors.append(error)
        log.warning("an op was not accepted: %r", error)
