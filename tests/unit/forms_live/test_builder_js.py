"""The pure part of the builder page's module (forms_live/static/forms_live/builder.js): the
state the server's frames build, who edits which field, and the small texts, run in Node."""

from __future__ import annotations

import json

from tests.unit import node

BUILDER = node.static_module("forms_live/builder.js")
STREAM = "forms.form.7"

# The state as plain JSON: Maps as lists, in the page's order.
DUMP = """
const dump = (s) => ({
  form: s.form, revision: s.revision,
  fields: s.fields.map((f) => [f.key, f.position, f.label, f.required]),
  conflicts: [...s.conflicts.keys()],
  members: [...s.members.values()].map((m) => [m.user.username, m.status, m.state]),
});
"""


def run(body: str, data: object = None) -> object:
    return node.run_node(f"import * as b from {json.dumps(BUILDER)};{DUMP}", body, data)


def apply_all(frames: list[dict]) -> dict:
    return run(
        """
        const state = b.newState();
        const changed = data.map((frame) => b.applyFrame(state, frame));
        process.stdout.write(JSON.stringify({ changed, state: dump(state) }));
        """,
        frames,
    )


def field(key: str, position: int, label: str | None = None, **extra) -> dict:
    return {
        "key": key,
        "type": "text",
        "label": label or key.title(),
        "help": "",
        "required": False,
        "rules": {},
        "options": [],
        "position": position,
        **extra,
    }


def member(user_id: int, name: str, state: str = "viewing", status: str = "online") -> dict:
    user = {"id": user_id, "username": name}
    return {"user": user, "status": status, "state": state, "activity": None, "location": None}


def conflict(conflict_id: int, key: str) -> dict:
    return {
        "id": conflict_id,
        "field": key,
        "prop": "label",
        "current_value": "A",
        "proposed_value": "B",
        "status": "open",
    }


def snapshot(revision: int = 3, fields=None, conflicts=(), members=()) -> dict:
    form = {"id": 7, "title": "Sign-up", "status": "draft", "conflict_policy": "manual"}
    form["revision"] = revision
    form["fields"] = [field("email", 0), field("name", 1)] if fields is None else fields
    data = {"form": form, "conflicts": list(conflicts), "revision": revision}
    return {"type": "forms.form.snapshot", "data": {**data, "members": list(members)}}


def event(type_: str, seq: int, data: dict) -> dict:
    return {"type": type_, "stream": STREAM, "seq": seq, "data": data}


def test_a_snapshot_sets_form_fields_conflicts_and_members():
    got = apply_all([snapshot(conflicts=[conflict(4, "name")], members=[member(1, "ann")])])

    assert got["changed"] == [True]
    assert got["state"] == {
        "form": {
            "id": 7,
            "title": "Sign-up",
            "status": "draft",
            "conflict_policy": "manual",
            "revision": 3,
        },
        "revision": 3,
        "fields": [["email", 0, "Email", False], ["name", 1, "Name", False]],
        "conflicts": [4],
        "members": [["ann", "online", "viewing"]],
    }


def test_field_events_add_change_move_and_remove_in_order():
    frames = [
        snapshot(),
        event(
            "forms.field.added", 4, {"field": field("age", 1), "order": ["email", "age", "name"]}
        ),
        event(
            "forms.field.changed",
            5,
            {
                "key": "age",
                "prop": "required",
                "value": True,
                "field": field("age", 1, required=True),
            },
        ),
        event("forms.field.moved", 6, {"key": "name", "order": ["name", "email", "age"]}),
        event("forms.field.removed", 7, {"key": "email", "order": ["name", "age"]}),
    ]

    got = apply_all(frames)

    assert got["changed"] == [True] * 5
    assert got["state"]["revision"] == got["state"]["form"]["revision"] == 7
    assert got["state"]["fields"] == [["name", 0, "Name", False], ["age", 1, "Age", True]]


def test_an_event_already_seen_is_dropped():
    label = field("email", 0, "Work e-mail")
    frames = [
        snapshot(revision=5),
        event("forms.field.changed", 5, {"key": "email", "prop": "label", "field": label}),
        event("forms.form.changed", 6, {"prop": "title", "value": "Join us"}),
        event("forms.form.changed", 6, {"prop": "title", "value": "Again"}),
    ]

    got = apply_all(frames)

    assert got["changed"] == [True, False, True, False]
    assert got["state"]["fields"][0][2] == "Email"
    assert got["state"]["form"]["title"] == "Join us"


def test_conflicts_open_and_resolve_and_go_with_their_field():
    resolved = {
        "key": "name",
        "prop": "label",
        "value": "B",
        "field": field("name", 1, "B"),
        "conflict": {**conflict(8, "name"), "status": "resolved"},
    }
    frames = [
        snapshot(),
        event("forms.conflict.opened", 4, {"conflict": conflict(8, "name")}),
        event("forms.conflict.opened", 5, {"conflict": conflict(9, "email")}),
        event("forms.conflict.opened", 6, {"conflict": conflict(10, "name")}),
        event("forms.conflict.resolved", 7, resolved),
        event("forms.field.removed", 8, {"key": "email", "order": ["name"]}),
    ]

    got = apply_all(frames)

    assert got["state"]["conflicts"] == [10]
    assert got["state"]["fields"] == [["name", 0, "B", False]]


def test_a_resume_keeps_the_state_and_takes_the_members():
    frames = [
        snapshot(members=[member(1, "ann")]),
        event("forms.form.changed", 4, {"prop": "status", "value": "published"}),
        {"type": "forms.form.resumed", "data": {"revision": 4, "members": [member(2, "bob")]}},
    ]

    got = apply_all(frames)

    assert got["state"]["form"]["status"] == "published"
    assert got["state"]["revision"] == 4
    assert got["state"]["members"] == [["bob", "online", "viewing"]]


def test_presence_events_say_who_edits_which_field():
    room = "form.7"
    frames = [
        snapshot(members=[member(1, "ann"), member(2, "bob")]),
        {
            "type": "presence.member.updated",
            "data": {"room": room, "member": member(2, "bob", "editing:email")},
        },
        {
            "type": "presence.member.joined",
            "data": {"room": room, "member": member(3, "cy", "editing:email")},
        },
        {
            "type": "presence.member.joined",
            "data": {"room": room, "member": member(4, "dee", "editing:name")},
        },
        {"type": "presence.member.left", "data": {"room": room, "user": {"id": 4}}},
        {
            "type": "presence.member.updated",
            "data": {"room": room, "member": member(1, "ann", "editing:email")},
        },
        {"type": "presence.user.changed", "data": {"user": {"id": 3}, "status": "away"}},
    ]

    got = run(
        """
        const state = b.newState();
        for (const frame of data) b.applyFrame(state, frame);
        const who = (key) => b.editingText(b.editorsOf(state, key, 1));
        process.stdout.write(JSON.stringify({
          email: who("email"), name: who("name"), members: dump(state).members,
          left: b.applyFrame(state, { type: "presence.member.left", data: { user: { id: 99 } } }),
        }));
        """,
        frames,
    )

    assert got["email"] == "bob and cy editing"  # ann is the viewer herself
    assert got["name"] == ""
    assert got["members"][2] == ["cy", "away", "editing:email"]
    assert got["left"] is False


def test_the_small_texts():
    got = run(
        """
        process.stdout.write(JSON.stringify({
          editing: [[], ["a"], ["a", "b"], ["a", "b", "c"]].map(b.editingText),
          options: b.parseOptions("  Red \\n\\nGreen\\n  \\nBlue"),
          values: ["Hi", true, false, ["a", "b"], [], { min: 1 }].map(b.showValue),
          outcomes: ["applied", "merged", "conflict", "unchanged", "resolved"].map(
            (outcome) => b.outcomeText({ outcome }, "Label of email")),
          ids: new Set(Array.from({ length: 50 }, () => b.messageId())).size,
          idLength: b.messageId().length,
        }));
        """
    )

    assert got == {
        "editing": ["", "a editing", "a and b editing", "a, b and c editing"],
        "options": ["Red", "Green", "Blue"],
        "values": ["“Hi”", "yes", "no", "a, b", "(none)", '{"min":1}'],
        "outcomes": [
            "",
            "Label of email: merged with a change made meanwhile.",
            "Label of email: someone changed it meanwhile; resolve the conflict below.",
            "",
            "Label of email: resolved.",
        ],
        "ids": 50,
        "idLength": 36,
    }
