"""The pure parts of the form pages' browser modules, run in Node: the dashboard's figures and
chart geometry (forms_live/static/forms_live/charts.js), the merging of its live updates
(dashboard.js), and the fill page's messages and update queue (fill.js).

The modules import each other as the browser finds them under /static/, so they run from a copy
of that tree (tests/unit/node.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from forms_live.analytics import FormStats, SubmissionFacts
from forms_live.validation import CODES, FIELD_TYPES
from tests.unit import node


@pytest.fixture(scope="module")
def static() -> Path:
    return node.static_root()


def run(static: Path, body: str, data: object = None) -> object:
    imports = "\n".join(
        f"import * as {alias} from {json.dumps((static / path).as_uri())};"
        for alias, path in (
            ("charts", "forms_live/charts.js"),
            ("fill", "forms_live/fill.js"),
            ("dash", "forms_live/dashboard.js"),
            ("client", "realtime/client.js"),
        )
    )
    return node.run_node(imports, body, data)


# --- charts.js -----------------------------------------------------------------------------------


def test_bars_scale_to_the_largest_value_and_never_divide_by_zero(static):
    got = run(
        static,
        """
        const rows = (values) =>
          values.map((value, i) => ({ key: `k${i}`, label: `L${i}`, value }));
        const out = data.cases.map((values) =>
          charts.barLayout(rows(values), { width: 500, labelWidth: 100, valueWidth: 100 }));
        process.stdout.write(JSON.stringify(out));
        """,
        {"cases": [[10, 5, 0], [0, 0], [3], [], [-2, 4]]},
    )
    room = 500 - 100 - 100
    lengths = [[bar["length"] for bar in layout["bars"]] for layout in got]
    assert lengths == [[room, room / 2, 0], [0, 0], [room], [], [0, room]]
    for layout in got:
        assert layout["width"] == 500
        assert layout["height"] == 10 + len(layout["bars"]) * 32
        for index, bar in enumerate(layout["bars"]):
            assert bar["x"] == 100 and bar["y"] == 10 + index * 32
            assert bar["valueX"] == 100 + bar["length"] + 6
            assert all(not isinstance(v, float) or math.isfinite(v) for v in bar.values())


def test_the_funnel_and_its_shares_come_from_the_server_summary(static):
    facts = [
        SubmissionFacts("submitted", started_at=0.0, submitted_at=95.0, last_field="email"),
        SubmissionFacts("completed", started_at=0.0, submitted_at=30.0, last_field="name"),
        SubmissionFacts("in_progress", started_at=0.0, submitted_at=None, last_field="email"),
        SubmissionFacts("in_progress", started_at=0.0, submitted_at=None, last_field=None),
    ]
    summary = FormStats.of(facts, views=8, now=10_000.0).summary()

    got = run(
        static,
        """
        const s = data.summary;
        process.stdout.write(JSON.stringify({
          funnel: charts.funnelRows(s),
          empty: charts.funnelRows({ views: 0, starts: 0, completions: 0 }),
          rate: charts.formatRate(s.completion_rate),
          median: charts.formatDuration(s.median_seconds),
          drop: charts.dropOffRows(s.drop_off, data.fields),
        }));
        """,
        {
            "summary": summary,
            "fields": [
                {"key": "name", "label": "Your name"},
                {"key": "email", "label": "Email"},
                {"key": "constructor", "label": "A field named like a prototype property"},
            ],
        },
    )

    assert [(r["label"], r["value"], r["share"], r["note"]) for r in got["funnel"]] == [
        ("Views", 8, "", ""),
        ("Starts", 4, "50%", "50% of views"),
        ("Completions", 2, "50%", "50% of starts"),
    ]
    assert [(r["share"], r["note"]) for r in got["empty"]] == [("", "")] * 3  # no share of nothing
    assert got["rate"] == "50%"
    assert got["median"] == "30 s"  # the lower median of 30 and 95
    assert [(r["key"], r["label"], r["value"]) for r in got["drop"]] == [
        ("name", "Your name", 0),
        ("email", "Email", 1),
        ("constructor", "A field named like a prototype property", 0),
        ("", "Before any field", 1),
    ]


def test_figures_read_as_people_write_them(static):
    got = run(
        static,
        """
        process.stdout.write(JSON.stringify({
          durations: data.durations.map(charts.formatDuration),
          rates: data.rates.map(charts.formatRate),
          cut: [charts.truncate("Favourite colour of the sky", 10), charts.truncate("short", 10),
                charts.truncate("👋👋👋👋", 3)],
          removed: charts.dropOffRows({ old: 2, "": 0, zeta: 1 }, []),
          described: [
            charts.describeRows([]),
            charts.describeRows(charts.funnelRows({ views: 2, starts: 1, completions: 0 })),
          ],
        }));
        """,
        {
            "durations": [None, 0, 59.9, 60, 95, 3600, 3725, 7200],
            "rates": [0, 0.755, 1, 1 / 3],
        },
    )
    assert got["durations"] == [
        "—",
        "0 s",
        "59 s",
        "1 min",
        "1 min 35 s",
        "1 h",
        "1 h 2 min",
        "2 h",
    ]
    assert got["rates"] == ["0%", "75.5%", "100%", "33.3%"]
    assert got["cut"] == ["Favourite…", "short", "👋👋…"]
    assert [(r["key"], r["label"], r["value"]) for r in got["removed"]] == [
        ("old", "old (removed)", 2),
        ("zeta", "zeta (removed)", 1),
    ]
    assert got["described"] == ["No data yet", "Views 2, Starts 1, Completions 0"]


# --- dashboard.js --------------------------------------------------------------------------------


def test_live_updates_keep_the_newest_state_of_the_fifty_latest_submissions(static):
    got = run(
        static,
        """
        const sub = (id, revision, started) => ({
          id, revision, status: "in_progress", started_at: new Date(started * 1000).toISOString(),
        });
        const rows = new Map();
        dash.mergeSubmissions(rows, [sub(1, 3, 10), sub(2, 1, 20)], 1000);
        dash.mergeSubmissions(rows, [sub(1, 2, 10)], 2000);           // older than shown: ignored
        dash.mergeSubmissions(rows, [sub(2, 4, 20)], 3000);
        const kept = { one: rows.get(1), two: rows.get(2) };
        const many = new Map();
        dash.mergeSubmissions(many, Array.from({ length: 60 }, (_, i) => sub(i + 1, 1, i)), 0);
        const order = dash.latestSubmissions(many.values()).map((r) => r.submission.id);
        process.stdout.write(JSON.stringify({
          kept, size: many.size, order,
          last: dash.lastKnownChange({
            started_at: "2024-01-01T00:00:00Z", submitted_at: "2024-01-01T00:01:00Z",
            completed_at: null,
          }),
          none: dash.lastKnownChange({ started_at: null }),
        }));
        """,
    )
    assert (got["kept"]["one"]["submission"]["revision"], got["kept"]["one"]["updatedAt"]) == (
        3,
        1000,
    )
    assert (got["kept"]["two"]["submission"]["revision"], got["kept"]["two"]["updatedAt"]) == (
        4,
        3000,
    )
    assert got["size"] == 50
    assert got["order"] == list(range(60, 10, -1))  # newest start first, the oldest ten gone
    assert got["last"] == 1704067260000
    assert got["none"] is None


# --- fill.js -------------------------------------------------------------------------------------


def test_every_validation_code_reads_as_a_sentence_for_every_field_type(static):
    fields = [
        {
            "type": type_,
            "rules": {"min": 1, "max": 9, "min_length": 2, "max_length": 5},
            "options": ["a"],
        }
        for type_ in FIELD_TYPES
    ] + [{"type": type_} for type_ in FIELD_TYPES]  # rules gone since the code was given
    got = run(
        static,
        """
        const out = data.fields.map(
          (field) => data.codes.map((code) => fill.errorMessage(code, field)));
        process.stdout.write(JSON.stringify({ out, unknown: fill.errorMessage("zzz", {}) }));
        """,
        {"fields": fields, "codes": list(CODES)},
    )
    assert len(got["out"]) == 2 * len(FIELD_TYPES)
    for messages in got["out"]:
        assert len(messages) == len(CODES)
        for message in messages:
            assert message.endswith(".") and "undefined" not in message
            assert not message.startswith("Not accepted"), message
    assert got["unknown"] == "Not accepted (zzz)."
    email = dict(zip(CODES, got["out"][FIELD_TYPES.index("email")], strict=True))
    number = dict(zip(CODES, got["out"][FIELD_TYPES.index("number")], strict=True))
    assert email["email"] == "Enter an email address such as name@example.com."
    assert email["max_length"] == "Enter at most 5 characters."
    assert (number["min"], number["max"], number["type"]) == (
        "Enter 1 or more.",
        "Enter 9 or less.",
        "Enter a number.",
    )


def test_rule_hints_say_what_the_rules_ask(static):
    got = run(
        static,
        "process.stdout.write(JSON.stringify(data.map(fill.ruleHint)));",
        [
            {"type": "number", "rules": {"min": 18, "max": 99, "integer": True}},
            {"type": "number", "rules": {"min": 0}},
            {"type": "text", "rules": {"max_length": 40}},
            {"type": "multiple_choice", "rules": {"min_selected": 1, "max_selected": 3}},
            {"type": "multiple_choice", "rules": {"min_selected": 1}},
            {"type": "long_text", "rules": {"min_length": 1, "max_length": 1}},
            {"type": "date", "rules": {"min": "2024-01-01"}},
            {"type": "email", "rules": {}},
        ],
    )
    assert got == [
        "Between 18 and 99, a whole number.",
        "At least 0.",
        "At most 40 characters.",
        "Between 1 and 3 choices.",
        "At least 1 choice.",
        "Between 1 and 1 character.",
        "From 2024-01-01.",
        "",
    ]


QUEUE_SCRIPT = """
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const sent = [];
let inflight = 0;
let overlapped = false;
let failures = data.failures;
let typing = true;
const queue = new fill.UpdateQueue(async (values) => {
  if (inflight) overlapped = true;
  inflight += 1;
  sent.push({ at: performance.now(), values, typing });
  await sleep(data.rtt);
  inflight -= 1;
  const failure = failures.shift();
  if (failure === "drop") throw new Error("no reply in time");
  if (failure === "rate") {
    throw new client.CommandError(
      { code: "rate_limited", message: "slow", retry: true, retry_after: 0.05 });
  }
  return { submission: { values } };
}, { every: data.every, retry: 0.05 });
const started = performance.now();
for (let i = 1; i <= data.keystrokes; i++) {
  queue.set("name", "x".repeat(i));
  if (i % 3 === 0) queue.set("email", `e${i}`);
  await sleep(data.typingMs);
}
const typedFor = performance.now() - started;
typing = false;
await queue.settle(); // flushes at once: the submit does not wait for the interval
const server = Object.assign({}, ...sent.map((s) => s.values));
process.stdout.write(JSON.stringify({
  sends: sent.length, typedFor, overlapped, server, pending: queue.size, inflight: queue.inflight,
  gaps: sent.slice(1).filter((s) => s.typing).map((s, i) => s.at - sent[i].at),
}));
"""


def test_the_update_queue_sends_at_most_every_interval_one_at_a_time_and_the_last_value(static):
    got = run(
        static,
        QUEUE_SCRIPT,
        {"failures": [], "rtt": 20, "every": 0.1, "keystrokes": 30, "typingMs": 15},
    )
    assert got["server"] == {"name": "x" * 30, "email": "e30"}
    assert not got["overlapped"]
    assert got["pending"] == 0 and got["inflight"] is None
    assert 2 <= got["sends"] <= got["typedFor"] / 100 + 2
    assert got["gaps"] and min(got["gaps"]) >= 99  # while typing, never faster than every 100 ms


def test_the_update_queue_resends_after_a_drop_or_a_rate_limit_and_drops_what_is_refused(static):
    resent = run(
        static,
        QUEUE_SCRIPT,
        {"failures": ["drop", "rate"], "rtt": 5, "every": 0.02, "keystrokes": 4, "typingMs": 1},
    )
    assert resent["server"] == {"name": "xxxx", "email": "e3"}
    assert resent["sends"] >= 3 and resent["pending"] == 0

    refused = run(
        static,
        """
        const queue = new fill.UpdateQueue(async (values) => {
          throw new client.CommandError(
            { code: "invalid", message: "Unknown fields.", retry: false });
        }, { every: 0.01 });
        queue.set("gone", 1);
        let error = null;
        try { await queue.settle(); } catch (e) { error = e.code; }
        const has = queue.has("gone");
        process.stdout.write(JSON.stringify({ error, pending: queue.size, has }));
        """,
    )
    # Refused for good: not sent again, and settle tells why.
    assert refused == {"error": "invalid", "pending": 0, "has": False}


def test_a_value_typed_while_a_send_fails_is_not_replaced_by_the_failed_one(static):
    got = run(
        static,
        """
        let calls = 0;
        const seen = [];
        let release;
        const queue = new fill.UpdateQueue(async (values) => {
          calls += 1;
          seen.push(values);
          if (calls === 1) {
            await new Promise((resolve) => (release = resolve));
            throw new Error("dropped");
          }
          return {};
        }, { every: 0.01 });
        queue.set("name", "old");
        queue.flush();
        queue.set("name", "new");           // typed while "old" is in flight
        release();
        await queue.settle();
        process.stdout.write(JSON.stringify(seen));
        """,
    )
    assert got == [{"name": "old"}, {"name": "new"}]
