"""Generator processes for the ``forms`` scenario: respondents filling forms, dashboards watching.

Django-free like comments.py, and driven by the parent (formscenarios.py) through a pipe, one
phase at a time:

    parent -> child                 child -> parent
                                    ("ready",)
    ("connect",)                    ("connected", report)  every socket has its snapshot
    ("fill", t0, r, settle)         ("filled", report)     r updates/s from t0, round-robin over
                                                           the respondents; a respondent whose
                                                           last update is answered submits at
                                                           once; then wait (at most settle s)
                                                           until everything is answered
    ("watch", {f: {s: rev}}, tmo)   ("watched", report)    wait until every dashboard of form f
                                                           has shown submission s at rev or later
    ("stop",)                       ("stopped", report)    then every socket is closed

A socket is a respondent (``/ws/forms/<id>/fill/``) with its steps, ``(key, value, codes)``:
each step is one ``forms.submission.update`` whose ack must give ``codes`` as the key's errors
(``()``: valid), or a dashboard (``/ws/forms/<id>/dashboard/``). Update n of a process has the
command id ``u<n>`` and is row n of ``Updates``; a submit's id is ``s``. A dashboard records
each submission it is shown (snapshot and ``forms.dashboard.updated``) as ``(dashboard,
submission, revision, time.monotonic())``, so the parent times each update's way to every
dashboard of its form.
"""

from __future__ import annotations

import asyncio
import json
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from monitoring.loadtest.generator import (
    SocketGenerator,
    receive_snapshot,
    run_child,
    send_on_schedule,
    sleep_until,
)
from monitoring.loadtest.rawws import ClosedError, RawWebSocket

FILL_PATH = "/ws/forms/{}/fill/"
DASHBOARD_PATH = "/ws/forms/{}/dashboard/"
HEARTBEAT_FRAME = '{"type":"session.heartbeat","data":{}}'
SUBMIT_FRAME = '{"id":"s","type":"forms.submission.submit","data":{}}'
DASHBOARD, RESPONDENT = 0, 1
MAX_EXAMPLES = 5
Step = tuple[str, Any, tuple[str, ...]]  # field key, value, the error codes its ack must give


@dataclass(frozen=True, slots=True)
class SocketSpec:
    index: int  # global socket number
    url: str  # ws://host:port/ws/forms/<id>/fill/?ticket=...
    kind: int  # DASHBOARD or RESPONDENT
    form: int  # form index (not id) in the scenario
    steps: tuple[Step, ...] = ()  # a respondent's updates, in order


@dataclass
class FormsPlan:
    proc: int
    procs: int
    sockets: list[SocketSpec]
    origin: str
    handshake_timeout: float
    heartbeat_seconds: float
    deadline: float
    connect_rate: float = 0.0


@dataclass(slots=True)
class Respondent:
    spec: SocketSpec
    ws: RawWebSocket
    submission: int
    last_seq: int  # of its forms.submission.changed events; the snapshot's revision first
    sent: int = 0  # steps sent
    answered: int = 0  # steps acked or refused
    events: int = 0
    duplicates: int = 0  # events at a revision seen already
    gaps: int = 0  # events that skipped a revision
    submit_sent: float = 0.0
    submit: dict[str, Any] = field(default_factory=dict)  # the submit's answer

    def report(self) -> dict[str, Any]:
        return {
            "index": self.spec.index,
            "form": self.spec.form,
            "submission": self.submission,
            "steps": len(self.spec.steps),
            "answered": self.answered,
            "submit_sent": self.submit_sent,
            **self.submit,
        }


@dataclass(slots=True)
class Dashboard:
    spec: SocketSpec
    ws: RawWebSocket
    analytics: dict[str, Any]  # the latest shown
    updates: list[float] = field(default_factory=list)  # arrivals of forms.dashboard.updated
    shown: dict[int, int] = field(default_factory=dict)  # submission -> highest revision shown
    submitted: dict[int, int] = field(default_factory=dict)  # ... shown as submitted

    def report(self) -> dict[str, Any]:
        return {
            "index": self.spec.index,
            "form": self.spec.form,
            "analytics": self.analytics,
            "updates": self.updates,
            "submitted": self.submitted,
        }


Live = Respondent | Dashboard


@dataclass
class Updates:
    """One row per update, in send order: update n of this process is row n."""

    socket: array[int] = field(default_factory=lambda: array("i"))
    step: array[int] = field(default_factory=lambda: array("i"))
    sent: array[float] = field(default_factory=lambda: array("d"))
    acked: array[float] = field(default_factory=lambda: array("d"))  # 0.0: no ack
    revision: array[int] = field(default_factory=lambda: array("q"))  # the ack's; -1: none
    submission: array[int] = field(default_factory=lambda: array("q"))

    def add(self, live: Respondent, now: float) -> int:
        self.socket.append(live.spec.index)
        self.step.append(live.sent)
        self.sent.append(now)
        self.acked.append(0.0)
        self.revision.append(-1)
        self.submission.append(live.submission)
        return len(self.sent) - 1

    def report(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class FormsGenerator(SocketGenerator[SocketSpec, Live]):
    updates: Updates = field(default_factory=Updates)
    pending: dict[int, Respondent] = field(default_factory=dict)  # updates sent, unanswered
    submitting: set[int] = field(default_factory=set)  # respondents whose submit is unanswered
    send_failures: int = 0
    feedback_checked: int = 0
    feedback_wrong: int = 0
    feedback_examples: list[dict[str, Any]] = field(default_factory=list)
    # Every submission state a dashboard was shown: (dashboard, submission, revision, arrival).
    shown_dashboard: array[int] = field(default_factory=lambda: array("i"))
    shown_submission: array[int] = field(default_factory=lambda: array("q"))
    shown_revision: array[int] = field(default_factory=lambda: array("q"))
    shown_time: array[float] = field(default_factory=lambda: array("d"))
    heartbeat_frame: ClassVar[str] = HEARTBEAT_FRAME

    def _specs(self) -> list[SocketSpec]:
        return self.plan.sockets

    def _room(self, live: Live) -> int:
        return live.spec.form

    async def _handshake(self, ws: RawWebSocket, spec: SocketSpec) -> tuple[float, Any]:
        kind = "forms.dashboard.snapshot" if spec.kind == DASHBOARD else "forms.fill.snapshot"
        snapshot = await receive_snapshot(ws, kind)
        return time.monotonic(), snapshot  # connect_ms: up to the snapshot

    def _admit(
        self, spec: SocketSpec, ws: RawWebSocket, snapshot: dict[str, Any], started: float
    ) -> Live:
        if spec.kind == DASHBOARD:
            board = Dashboard(spec, ws, snapshot["analytics"])
            now = time.monotonic()
            for submission in snapshot["submissions"]:
                self._show(board, submission, now)
            ws.on_message = lambda raw: self._on_dashboard_frame(board, raw)
            return board
        mine = snapshot["submission"]
        respondent = Respondent(spec, ws, mine["id"], mine["revision"])
        ws.on_message = lambda raw: self._on_respondent_frame(respondent, raw)
        return respondent

    # --- dashboards --------------------------------------------------------------------------
    def _on_dashboard_frame(self, board: Dashboard, raw: str) -> None:
        now = time.monotonic()
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "forms.dashboard.updated":
            board.updates.append(now)
            board.analytics = frame["data"]["analytics"]
            for submission in frame["data"]["submissions"]:
                self._show(board, submission, now)
        elif kind == "error":
            self.errors[frame.get("error", {}).get("code", "unknown")] += 1
        elif not str(kind).startswith("presence."):
            self.other_frames[f"dashboard_{kind}"] += 1

    def _show(self, board: Dashboard, submission: dict[str, Any], now: float) -> None:
        pk, revision = submission["id"], submission["revision"]
        board.shown[pk] = max(revision, board.shown.get(pk, -1))
        if submission["status"] == "submitted":
            board.submitted[pk] = max(revision, board.submitted.get(pk, -1))
        self.shown_dashboard.append(board.spec.index)
        self.shown_submission.append(pk)
        self.shown_revision.append(revision)
        self.shown_time.append(now)

    # --- respondents -------------------------------------------------------------------------
    def _on_respondent_frame(self, live: Respondent, raw: str) -> None:
        now = time.monotonic()
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "ack" and frame.get("id") == "s":
            self._on_submitted(live, frame["data"], now)
        elif kind == "ack":
            self._on_update_ack(frame, now)
        elif kind == "error":
            self._on_error(live, frame)
        elif kind == "forms.submission.changed":
            seq = frame["seq"]
            live.events += 1
            live.duplicates += seq <= live.last_seq
            live.gaps += seq > live.last_seq + 1
            live.last_seq = max(live.last_seq, seq)
        elif not str(kind).startswith("presence."):
            self.other_frames[f"fill_{kind}"] += 1

    def _on_update_ack(self, frame: dict[str, Any], now: float) -> None:
        n = int(frame["id"][1:])
        live = self.pending.pop(n, None)
        if live is None:
            self.other_frames["ack_unexpected"] += 1
            return
        data, rows = frame["data"], self.updates
        rows.acked[n], rows.revision[n] = now, data["revision"]
        key, value, codes = live.spec.steps[rows.step[n]]
        got = data["submission"]["errors"].get(key, [])
        self.feedback_checked += 1
        if got != list(codes):
            self.feedback_wrong += 1
            if len(self.feedback_examples) < MAX_EXAMPLES:
                self.feedback_examples.append(
                    {"key": key, "value": value, "want": codes, "got": got}
                )
        self._answered(live)

    def _on_error(self, live: Respondent, frame: dict[str, Any]) -> None:
        code = frame.get("error", {}).get("code", "unknown")
        self.errors[code] += 1
        if frame.get("id") == "s":
            self.submitting.discard(live.spec.index)
            live.submit = {"submit_error": code, "details": frame["error"].get("details")}
        elif self.pending.pop(_update_number(frame.get("id")), None) is not None:
            self._answered(live)

    def _answered(self, live: Respondent) -> None:
        """Once every step is answered, the respondent sends the form at once."""
        live.answered += 1
        if live.answered < len(live.spec.steps):
            return
        live.submit_sent = time.monotonic()
        try:
            live.ws.send_text(SUBMIT_FRAME)
        except ClosedError:
            self.send_failures += 1
            return
        self.submitting.add(live.spec.index)

    def _on_submitted(self, live: Respondent, data: dict[str, Any], now: float) -> None:
        self.submitting.discard(live.spec.index)
        submission = data["submission"]
        live.submit = {
            "submit_acked": now,
            "status": submission["status"],
            "revision": data["revision"],
            "duplicate": data["duplicate"],
            "errors": submission["errors"],
            "progress": submission["progress"],
        }

    def _update(self, live: Respondent) -> None:
        key, value, _ = live.spec.steps[live.sent]
        n = self.updates.add(live, time.monotonic())
        live.sent += 1
        frame = {"id": f"u{n}", "type": "forms.submission.update", "data": {"values": {key: value}}}
        try:
            live.ws.send_text(json.dumps(frame, separators=(",", ":")))
        except ClosedError:
            self.send_failures += 1
            return
        self.pending[n] = live

    # --- phases ------------------------------------------------------------------------------
    async def fill_window(self, t0: float, rate: float, settle: float) -> dict[str, Any]:
        """This process's updates at ``rate``/s from ``t0``, one respondent after another, each
        one's steps in order; then wait until each update and submit is answered (at most
        ``settle`` seconds)."""
        respondents = [live for live in self.live if isinstance(live, Respondent)]
        turns = deque(live for live in respondents if live.spec.steps)
        total = sum(len(live.spec.steps) for live in respondents) if rate > 0 else 0

        def send(_: int) -> None:
            live = turns.popleft()
            self._update(live)
            if live.sent < len(live.spec.steps):
                turns.append(live)

        await sleep_until(t0)
        cpu_started = time.process_time()
        n, lag_max = await send_on_schedule(t0, total / rate if total else 0, rate, total, send)
        sending_ended = time.monotonic()
        while (self.pending or self.submitting) and time.monotonic() < sending_ended + settle:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        return {
            "t0": t0,
            "scheduled": total,
            "unsent": total - n,
            "send_failures": self.send_failures,
            "send_seconds": sending_ended - t0,
            "send_lag_max_ms": lag_max * 1000,
            "unanswered": len(self.pending),
            "submits_unanswered": len(self.submitting),
            "feedback_checked": self.feedback_checked,
            "feedback_wrong": self.feedback_wrong,
            "feedback_examples": self.feedback_examples,
            "updates": self.updates.report(),
            "respondents": [live.report() for live in respondents],
            "errors": dict(self.errors),
            "cpu_seconds": time.process_time() - cpu_started,
        }

    async def watch(self, targets: dict[int, dict[int, int]], timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """Wait until each dashboard has shown every submission of its form at its revision."""
        boards = [live for live in self.live if isinstance(live, Dashboard)]
        deadline = time.monotonic() + timeout

        def done(board: Dashboard) -> bool:
            wanted = targets.get(board.spec.form, {}).items()
            return all(board.shown.get(pk, -1) >= revision for pk, revision in wanted)

        while time.monotonic() < deadline and not all(done(board) for board in boards):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        respondents = [live for live in self.live if isinstance(live, Respondent)]
        final = {pk: rev for submissions in targets.values() for pk, rev in submissions.items()}
        return {
            "dashboards": [board.report() for board in boards],
            "shown": (self.shown_dashboard, self.shown_submission, self.shown_revision),
            "shown_time": self.shown_time,
            "respondent_events": {
                "received": sum(live.events for live in respondents),
                "duplicates": sum(live.duplicates for live in respondents),
                "gaps": sum(live.gaps for live in respondents),
                "behind_at_end": sum(
                    live.last_seq < final.get(live.submission, -1) for live in respondents
                ),
            },
            "other_frames": dict(self.other_frames),
        }


def _update_number(command_id: object) -> int:
    """n of the id ``u<n>``; -1 for any other id."""
    if isinstance(command_id, str) and command_id[:1] == "u" and command_id[1:].isdigit():
        return int(command_id[1:])
    return -1


# --- the process -------------------------------------------------------------------------------
def forms_generator_main(conn: Any, plan: FormsPlan) -> None:
    """Entry point of a forms generator process (multiprocessing, spawn)."""
    generator = FormsGenerator(plan)
    phases = {
        "connect": ("connected", generator.connect_all),
        "fill": ("filled", generator.fill_window),
        "watch": ("watched", generator.watch),
    }
    run_child(generator.serve(conn, phases))
