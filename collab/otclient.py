"""The client side of server-centric OT: one op in flight, the rest buffered. Pure.

The classic state machine (ot.js ``Client``, ShareDB's ``Doc``), used by the Python client,
the load test and the system tests; the JavaScript client mirrors it:

    editor = Editor(client_id="tab-1", text="hello", version=3)
    submit = editor.edit([5, "!"])      # {"version": 3, "op": [5, "!"], "client_id", "seq": 1}
    editor.edit([6, "?"])               # buffered while the first is in flight: returns None
    editor.remote([0, ">"], version=4)  # someone else's op: in-flight and buffer move past it
    submit = editor.ack(5)              # ours became version 5; now the buffer goes out

After a reconnect call ``reconnected()``, feed the replay (``since=version``) to ``remote``, then
``resubmit()``: the op in flight goes out again with the same ``seq``, unless the replay brought
it back as ours (same ``client_id`` and ``seq``), which counts as its ack. The server answers a
duplicate with its original version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import collab.ot as ot


@dataclass
class Editor:
    client_id: str
    text: str
    version: int
    seq: int = 0
    inflight: list[Any] | None = None
    inflight_seq: int = 0
    buffer: list[Any] | None = None
    applied_remote: int = 0
    connection: int = 0  # bumped by reconnected()
    inflight_connection: int = 0
    acked: list[int] = field(default_factory=list)  # the seq of every op the server acked

    def edit(self, op: list[Any]) -> dict[str, Any] | None:
        """A local edit: applied at once; returns the submit to send, if one may go now."""
        self.text = ot.apply(self.text, op)
        if self.inflight is None:
            return self._send(op)
        self.buffer = op if self.buffer is None else ot.compose(self.buffer, op)
        return None

    def ack(self, version: int, seq: int | None = None) -> dict[str, Any] | None:
        """Our op in flight is now ``version``; returns the buffered submit, if any.

        ``seq``: of the submit this ack answers (clients match acks to commands by id). An ack
        for anything but the op in flight (a resubmission answered late, after the stream
        brought the op back as ours) changes nothing.
        """
        if self.inflight is None or (seq is not None and seq != self.inflight_seq):
            return None
        self.version = version
        self.acked.append(self.inflight_seq)
        self.inflight = None
        buffered, self.buffer = self.buffer, None
        return None if buffered is None else self._send(buffered)

    def remote(
        self, op: list[Any], *, version: int, client_id: str | None = None, seq: int | None = None
    ) -> dict[str, Any] | None:
        """An op from the server. Our own in-flight op coming back (after a reconnect) acks it."""
        if version <= self.version:
            return None  # already have it
        if self.inflight is not None and (client_id, seq) == (self.client_id, self.inflight_seq):
            return self.ack(version)
        if self.inflight is not None:
            self.inflight, op = (
                ot.transform(self.inflight, op, "left"),
                ot.transform(op, self.inflight, "right"),
            )
        if self.buffer is not None:
            self.buffer, op = (
                ot.transform(self.buffer, op, "left"),
                ot.transform(op, self.buffer, "right"),
            )
        self.text = ot.apply(self.text, op)
        self.version = version
        self.applied_remote += 1
        return None

    def reconnected(self) -> None:
        """The socket was replaced: what was in flight on the old one may need sending again."""
        self.connection += 1

    def resubmit(self) -> dict[str, Any] | None:
        """After ``reconnected()`` and the replay: the op in flight, if it went out on an older
        socket and the replay did not bring it back, again with the same seq."""
        if self.inflight is None or self.inflight_connection == self.connection:
            return None
        self.inflight_connection = self.connection
        return self._submit(self.inflight, self.inflight_seq)

    @property
    def settled(self) -> bool:
        return self.inflight is None and self.buffer is None

    def _send(self, op: list[Any]) -> dict[str, Any]:
        self.seq += 1
        self.inflight, self.inflight_seq = op, self.seq
        self.inflight_connection = self.connection
        return self._submit(op, self.seq)

    def _submit(self, op: list[Any], seq: int) -> dict[str, Any]:
        return {"version": self.version, "op": op, "client_id": self.client_id, "seq": seq}
