"""The pure parts of the browser client (config/realtime/static/realtime/client.js) against
their Python twins: backoff and breaker (config/client/backoff.py), diffToOp, and the OT Editor
(collab/otclient.py) fed the same random histories. Node runs one batch per test."""

from __future__ import annotations

import json
import random
from pathlib import Path

from collab import ot
from collab.otclient import Editor
from config.client.backoff import Breaker, backoff_delay
from tests.unit import node

ROOT = Path(__file__).resolve().parents[4]
CLIENT = (ROOT / "config/realtime/static/realtime/client.js").as_uri()
ALPHABET = "ab xé中👋"


def run_node(body: str, data: object) -> object:
    return node.run_node(f"import * as c from {json.dumps(CLIENT)};", body, data)


def text(rng: random.Random, most: int = 10) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, most)))


def test_backoff_and_breaker_match_the_python_ones():
    rng = random.Random(1)
    delays = [(n, rng.random()) for n in range(0, 80, 3)]
    steps = [rng.random() < 0.6 for _ in range(60)]  # True: a failure

    got = run_node(
        """
        const delays = data.delays.map(([n, r]) => c.backoffDelay(n, r));
        const breaker = new c.Breaker({ threshold: 3, cooldown: 5 });
        const states = data.steps.map((failed, t) => {
          if (failed) breaker.failed(t); else breaker.succeeded();
          return breaker.state(t + 0.5);
        });
        process.stdout.write(JSON.stringify({ delays, states }));
        """,
        {"delays": delays, "steps": steps},
    )

    breaker, states = Breaker(threshold=3, cooldown=5.0), []
    for t, failed in enumerate(steps):
        breaker = breaker.failed(now=t) if failed else breaker.succeeded()
        states.append(breaker.state(now=t + 0.5))
    assert got == {
        "delays": [backoff_delay(failures=n, random=r) for n, r in delays],
        "states": states,
    }


def test_diff_to_op_turns_any_text_into_any_other():
    rng = random.Random(2)
    pairs = [(text(rng), text(rng)) for _ in range(300)]
    pairs += [("a👋b", "a👋xb"), ("👋", ""), ("", "中"), ("same", "same")]

    ops = run_node(
        "process.stdout.write(JSON.stringify(data.map(([a, b]) => c.diffToOp(a, b))));", pairs
    )

    for (before, after), op in zip(pairs, ops, strict=True):
        assert ot.apply(before, op) == after
        assert op == ot.normalize(op)


def test_the_editor_follows_the_same_history_as_the_python_one():
    """Random local edits, remote ops and acks, fed to both state machines in one order."""
    rng = random.Random(3)
    histories = []
    for _ in range(60):
        start, events = text(rng), []
        local = start
        for _ in range(20):
            roll = rng.random()
            if roll < 0.5:
                position, key = rng.randint(0, len(local)), rng.choice(ALPHABET)
                op = [position, key] if position else [key]
                local = ot.apply(local, op)
                events.append(["edit", op])
            elif roll < 0.8:
                # An insert at the start is valid on whatever the server has: the editor then
                # transforms it past what is in flight and buffered.
                events.append(["remote", [rng.choice("RS")]])
            else:
                events.append(["ack"])
        histories.append({"text": start, "events": events})

    def python_run(history: dict) -> dict:
        editor, version, submits, texts = Editor("me", history["text"], 0), 0, [], []
        for event in history["events"]:
            if event[0] == "edit":
                submit = editor.edit(event[1])
            elif event[0] == "remote":
                version = max(version, editor.version) + 1
                submit = editor.remote(event[1], version=version)
            else:
                submit = None
                if editor.inflight is not None:
                    version = max(version, editor.version) + 1
                    submit = editor.ack(version, seq=editor.inflight_seq)
            submits.append(submit)
            texts.append(editor.text)
        return {"submits": submits, "texts": texts}

    got = run_node(
        """
        const out = data.map((history) => {
          const editor = new c.Editor("me", history.text, 0);
          let version = 0;
          const submits = [], texts = [];
          for (const event of history.events) {
            let submit = null;
            try {
              if (event[0] === "edit") submit = editor.edit(event[1]);
              else if (event[0] === "remote") {
                version = Math.max(version, editor.version) + 1;
                submit = editor.remote(event[1], version);
              } else if (editor.inflight !== null) {
                version = Math.max(version, editor.version) + 1;
                submit = editor.ack(version, editor.inflightSeq);
              }
            } catch (error) { submit = { error: String(error) }; }
            submits.push(submit);
            texts.push(editor.text);
          }
          return { submits, texts };
        });
        process.stdout.write(JSON.stringify(out));
        """,
        histories,
    )

    assert got == [python_run(h) for h in histories]


def test_the_network_coming_back_ends_the_wait_at_once():
    """After failures ran the backoff up (and opened the breaker), the browser's "online"
    event makes the next attempt go now, not after the wait."""
    got = run_node(
        """
        const listeners = {};
        globalThis.addEventListener = (name, handler) => (listeners[name] = handler);
        const attempts = [];
        const client = new c.RealtimeClient("ws://127.0.0.1:9/", {
          socketFactory: () => {
            attempts.push(performance.now());
            const socket = { close() {} };
            setTimeout(() => socket.onclose?.({ code: 1006 }), 0);  // refused at once
            return socket;
          },
          backoffBase: 60, backoffCap: 60,  // a minute between attempts, were it not for "online"
          breaker: new c.Breaker({ threshold: 2, cooldown: 60 }),
        });
        client.start();
        await new Promise((r) => setTimeout(r, 200));
        const before = attempts.length;
        const breakerOpen = client.breaker.state(performance.now() / 1000);
        listeners.online();
        await new Promise((r) => setTimeout(r, 200));
        client.close();
        process.stdout.write(JSON.stringify({ before, after: attempts.length, breakerOpen }));
        process.exit(0);
        """,
        None,
    )

    assert got["after"] > got["before"] >= 1


def test_on_reply_runs_before_the_frames_read_after_the_reply():
    """Node hands the messages of one read to the socket one after another, with no turn for
    promise callbacks in between: a document's ack must still come before the ops after it."""
    got = run_node(
        """
        let socket;
        const client = new c.RealtimeClient("ws://127.0.0.1:9/", {
          socketFactory: () => {
            socket = { readyState: 1, close() {}, send(raw) {
              const { id } = JSON.parse(raw);
              const ack = { type: "ack", id, data: { version: 1 } };
              const later = { type: "collab.op.applied", data: { version: 2 } };
              for (const f of [ack, later]) socket.onmessage({ data: JSON.stringify(f) });
            } };
            const welcome = { type: "session.welcome", data: { heartbeat_interval: 60 } };
            setTimeout(() => socket.onmessage({ data: JSON.stringify(welcome) }), 0);
            return socket;
          },
        });
        const seen = [];
        client.on("collab.op.applied", (f) => seen.push(`event ${f.data.version}`));
        client.start();
        await client.waitOpen(5);
        const onReply = (f) => seen.push(`ack ${f.data.version}`);
        const acked = client.command("x", {}, { onReply }).then(() => seen.push("promise"));
        await acked;
        client.close();
        process.stdout.write(JSON.stringify(seen));
        process.exit(0);
        """,
        None,
    )

    assert got == ["ack 1", "event 2", "promise"]
