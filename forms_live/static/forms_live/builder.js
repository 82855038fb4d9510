// The live form builder of a form: its title, status and policy, its fields in order, who edits
// which field, and the conflicts waiting to be resolved, over `/ws/forms/<id>/edit/`.
//
//   import { RealtimeClient } from "/static/realtime/client.js";
//   import { mountFormBuilder } from "/static/forms_live/builder.js";
//   const client = new RealtimeClient("/ws/forms/7/edit/");
//   mountFormBuilder(document.getElementById("builder"), { client, role: "editor", userId: 3 });
//   client.start();
//
// The page keeps one state (`newState`), changed only by the server's frames (`applyFrame`): a
// change is a command made at the revision its input last showed (`base_revision`), and what it
// did comes back as an event like anyone else's. `applyFrame` and the helpers after it need no
// DOM, so Node tests them (tests/unit/forms_live/test_builder_js.py). The client is given, not
// imported, for the same reason (realtime/page.js touches the DOM only when called).

import { element } from "../realtime/page.js";

const CHOICE_TYPES = new Set(["single_choice", "multiple_choice"]);
const TEXT_PROPS = new Set(["label", "help"]);
const PROP_NAMES = { label: "Label", help: "Help", required: "Required", options: "Options",
                     type: "Type", rules: "Rules" };

// --- the state, and the frames that change it ----------------------------------------------------

export function newState() {
  // members: user id -> {user, status, state}; conflicts: id -> conflict (open ones only)
  return { form: null, fields: [], conflicts: new Map(), members: new Map(), revision: null };
}

function inOrder(fields, order) {
  const byKey = new Map(fields.map((field) => [field.key, field]));
  const ordered = order.filter((key) => byKey.has(key)).map((key) => byKey.get(key));
  const named = new Set(order);
  ordered.push(...fields.filter((field) => !named.has(field.key)));
  return ordered.map((field, position) => ({ ...field, position }));
}

function replaceField(state, field) {
  state.fields = state.fields.map((old) => (old.key === field.key ? { ...field, position: old.position } : old));
}

function setMembers(state, members) {
  state.members = new Map((members ?? []).map((member) => [member.user.id, member]));
}

/** Apply one server frame to `state`; true when it changed something worth drawing. */
export function applyFrame(state, frame) {
  const { type, data = {} } = frame;
  if (type.startsWith("forms.") && Number.isInteger(frame.seq)) {
    if (state.revision !== null && frame.seq <= state.revision) return false; // had it
    state.revision = frame.seq;
    if (state.form) state.form.revision = frame.seq;
  }
  switch (type) {
    case "forms.form.snapshot": {
      const { fields, ...form } = data.form;
      state.form = form;
      state.fields = inOrder(fields, fields.map((field) => field.key));
      state.conflicts = new Map(data.conflicts.map((conflict) => [conflict.id, conflict]));
      state.revision = data.revision;
      setMembers(state, data.members);
      return true;
    }
    case "forms.form.resumed":
      state.revision = Math.max(state.revision ?? 0, data.revision);
      setMembers(state, data.members);
      return true;
    case "forms.form.changed":
      state.form[data.prop] = data.value;
      return true;
    case "forms.field.added":
      state.fields = inOrder([...state.fields.filter((f) => f.key !== data.field.key), data.field], data.order);
      return true;
    case "forms.field.changed":
      replaceField(state, data.field);
      return true;
    case "forms.field.moved":
      state.fields = inOrder(state.fields, data.order);
      return true;
    case "forms.field.removed":
      state.fields = inOrder(state.fields.filter((f) => f.key !== data.key), data.order);
      for (const [id, conflict] of state.conflicts) if (conflict.field === data.key) state.conflicts.delete(id);
      return true;
    case "forms.conflict.opened":
      state.conflicts.set(data.conflict.id, data.conflict);
      return true;
    case "forms.conflict.resolved":
      state.conflicts.delete(data.conflict.id);
      replaceField(state, data.field);
      return true;
    case "presence.member.joined":
    case "presence.member.updated":
      state.members.set(data.member.user.id, data.member);
      return true;
    case "presence.member.left":
      return state.members.delete(data.user.id);
    case "presence.user.changed": {
      const member = state.members.get(data.user.id);
      if (member) member.status = data.status;
      return member !== undefined;
    }
    default:
      return false;
  }
}

/** The other members editing the field `key`, by name (presence state `editing:<key>`). */
export function editorsOf(state, key, selfId) {
  return [...state.members.values()]
    .filter((m) => m.user.id !== selfId && m.state === `editing:${key}` && m.status !== "offline")
    .map((m) => m.user.username)
    .sort();
}

/** "ann editing", "ann and bob editing", "ann, bob and cy editing"; "" for nobody. */
export function editingText(names) {
  if (names.length === 0) return "";
  const who = names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
  return `${who} editing`;
}

/** The options of a choice field, one a line, blank lines dropped. */
export function parseOptions(text) {
  return text.split("\n").map((line) => line.trim()).filter((line) => line !== "");
}

/** How a property's value reads in a conflict: texts quoted, the rest as JSON. */
export function showValue(value) {
  if (typeof value === "string") return `“${value}”`;
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join(", ") || "(none)";
  return JSON.stringify(value);
}

/** What an ack tells the user, if anything worth telling. */
export function outcomeText(ack, what) {
  if (ack.outcome === "conflict") return `${what}: someone changed it meanwhile; resolve the conflict below.`;
  if (ack.outcome === "merged") return `${what}: merged with a change made meanwhile.`;
  if (ack.outcome === "resolved") return `${what}: resolved.`;
  return "";
}

export function messageId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  // Outside a secure context (plain http on another host) randomUUID is missing.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// --- the page ----------------------------------------------------------------------------------

export function mountFormBuilder(root, { client, role, userId }) {
  const state = newState();
  const canBuild = role === "owner" || role === "editor";
  const canManage = role === "owner";
  const $ = (selector) => root.querySelector(selector);
  const fieldsList = $("#fields");
  const conflictsList = $("#conflicts");
  const messages = $("#builder-messages");
  const fieldViews = new Map(); // key -> {item, type, boxes, editing, up, down}
  const conflictViews = new Map(); // id -> {item, current}
  let focusedKey = null;

  // --- talking to the server -------------------------------------------------------------------
  function say(text, { error = false } = {}) {
    messages.textContent = text;
    messages.classList.toggle("error", error);
  }

  async function change(type, data, what) {
    try {
      const ack = await client.command(type, { ...data, client_msg_id: messageId() });
      say(outcomeText(ack, what));
      return ack;
    } catch (failure) {
      const text = failure.error?.message ?? failure.message;
      say(`${what}: ${text}${failure.code ? ` (${failure.code})` : ""}`, { error: true });
      return null;
    }
  }

  function setFocus(key) {
    if (!canBuild || key === focusedKey) return;
    focusedKey = key;
    client.send("forms.field.focus", { key });
  }

  // --- inputs that edit one value --------------------------------------------------------------
  // A box remembers the revision its input last showed: a change is made at that base, however
  // many revisions arrived while the user typed, so the form's policy sees what they saw.
  function editable(input, { read, commit, what, allowed = canBuild }) {
    const box = { input, read, dirty: false, pending: false, base: null };
    box.sync = () => {
      input.disabled = !allowed; // from the first snapshot on: before it there is no base
      if (box.dirty || box.pending) return;
      const value = read();
      if (input.type === "checkbox") input.checked = value;
      else if (input.value !== value) input.value = value;
      box.base = state.revision;
    };
    box.send = async () => {
      if (!box.dirty) return;
      box.dirty = false;
      box.pending = true;
      const value = input.type === "checkbox" ? input.checked : input.value;
      try {
        await change(...commit(value, box.base), what());
      } finally {
        box.pending = false;
        box.sync();
      }
    };
    const markDirty = () => (box.dirty = true);
    if (input.type === "checkbox" || input.tagName === "SELECT") {
      input.addEventListener("change", () => { markDirty(); box.send(); });
    } else {
      input.addEventListener("input", markDirty);
      input.addEventListener("change", () => box.send());
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && input.tagName === "INPUT") { event.preventDefault(); box.send(); }
        if (event.key === "Escape") { box.dirty = false; box.sync(); }
      });
    }
    input.disabled = true;
    return box;
  }

  // --- the form's own properties ---------------------------------------------------------------
  const formBoxes = [];
  const formChange = (prop) => (value, base) =>
    ["forms.form.change", { base_revision: base, prop, value }];
  if ($("#form-title-input")) {
    formBoxes.push(editable($("#form-title-input"), {
      read: () => state.form.title, commit: formChange("title"), what: () => "Title",
    }));
  }
  for (const [id, prop, what] of [["#form-status-select", "status", "Status"],
                                  ["#form-policy-select", "conflict_policy", "Conflict policy"]]) {
    if (!$(id)) continue;
    formBoxes.push(editable($(id), {
      read: () => state.form[prop], commit: formChange(prop), what: () => what, allowed: canManage,
    }));
  }

  function renderForm() {
    const form = state.form;
    $("#form-title").textContent = form.title;
    document.title = `${form.title} · Collab`;
    const status = $("#form-status");
    status.textContent = form.status;
    status.dataset.status = form.status;
    $("#form-policy").textContent = `conflicts: ${form.conflict_policy}`;
    $("#revision").textContent = `revision ${state.revision}`;
    root.dataset.revision = String(state.revision);
    const fill = $("#fill-link");
    if (fill) fill.hidden = form.status !== "published";
    for (const box of formBoxes) box.sync();
  }

  // --- fields ----------------------------------------------------------------------------------
  function fieldView(field) {
    const key = field.key;
    const id = (prop) => `field-${key}-${prop}`;
    const fieldChange = (prop, convert = (v) => v) => (value, base) =>
      ["forms.field.change", { base_revision: base, key, prop, value: convert(value) }];
    const current = () => state.fields.find((f) => f.key === key);
    const what = (prop) => () => `${PROP_NAMES[prop]} of ${key}`;
    const label = element("input", { id: id("label"), name: "label", maxlength: "200", autocomplete: "off" });
    const help = element("textarea", { id: id("help"), name: "help", rows: "2", maxlength: "2000" });
    const required = element("input", { id: id("required"), name: "required", type: "checkbox" });
    const boxes = [
      editable(label, { read: () => current().label, commit: fieldChange("label"), what: what("label") }),
      editable(help, { read: () => current().help, commit: fieldChange("help"), what: what("help") }),
      editable(required, { read: () => current().required, commit: fieldChange("required"), what: what("required") }),
    ];
    const rows = [
      element("label", { for: id("label") }, "Label"), label,
      element("label", { for: id("help") }, "Help"), help,
    ];
    if (CHOICE_TYPES.has(field.type)) {
      const options = element("textarea", { id: id("options"), name: "options", rows: "3" });
      boxes.push(editable(options, {
        read: () => current().options.join("\n"),
        commit: fieldChange("options", parseOptions),
        what: what("options"),
      }));
      rows.push(element("label", { for: id("options") }, "Options (one a line)"), options);
    }
    rows.push(element("label", { class: "check", for: id("required") }, required, " Required"));
    const editing = element("span", { class: "editing", "aria-live": "polite" });
    const move = (delta) => () => {
      const at = current().position + delta;
      change("forms.field.move", { base_revision: state.revision, key, position: at }, `Moving ${key}`);
    };
    const up = element("button", { type: "button", "aria-label": `Move ${key} up`, onclick: move(-1) }, "↑ Up");
    const down = element("button", { type: "button", "aria-label": `Move ${key} down`, onclick: move(1) }, "↓ Down");
    const remove = element("button", {
      type: "button", class: "danger", "aria-label": `Remove ${key}`,
      onclick: () => {
        // One click would lose the field for everyone: ask first (its answers stay).
        if (!confirm(`Remove the field ${key}? Answers already given to it are kept.`)) return;
        change("forms.field.remove", { base_revision: state.revision, key }, `Removing ${key}`);
      },
    }, "Remove");
    const actions = canBuild ? [element("div", { class: "actions" }, up, down, remove)] : [];
    const item = element("li", { class: "field", "data-key": key, "aria-label": `Field ${key}` },
      element("div", { class: "field-head" },
        element("code", {}, key), " ", element("span", { class: "type" }, field.type.replaceAll("_", " ")), " ", editing),
      element("div", { class: "field-body" }, ...rows),
      ...actions);
    return { item, type: field.type, boxes, editing, up, down };
  }

  function renderFields() {
    const keys = new Set(state.fields.map((f) => f.key));
    for (const [key, view] of fieldViews) {
      if (!keys.has(key)) { view.item.remove(); fieldViews.delete(key); }
    }
    const active = document.activeElement;
    state.fields.forEach((field, index) => {
      let view = fieldViews.get(field.key);
      if (view && view.type !== field.type && !view.item.contains(active)) {
        view.item.remove(); // its type changed: other inputs (options) now
        view = undefined;
      }
      if (!view) {
        view = fieldView(field);
        fieldViews.set(field.key, view);
      }
      // Only what is out of place moves, so the field being edited keeps its focus.
      const there = fieldsList.children[index];
      if (there !== view.item) fieldsList.insertBefore(view.item, there ?? null);
      for (const box of view.boxes) box.sync();
      view.editing.textContent = editingText(editorsOf(state, field.key, userId));
      view.item.classList.toggle("busy", view.editing.textContent !== "");
      view.up.disabled = index === 0;
      view.down.disabled = index === state.fields.length - 1;
    });
    if (active && active !== document.activeElement && active.isConnected) active.focus();
    $("#no-fields").hidden = state.fields.length > 0;
  }

  // --- conflicts -------------------------------------------------------------------------------
  function resolve(conflict, resolution, value) {
    const data = { conflict_id: conflict.id, resolution };
    if (resolution === "custom") data.value = value;
    return change("forms.conflict.resolve", data, `Conflict on ${conflict.field}`);
  }

  function conflictView(conflict) {
    const prop = PROP_NAMES[conflict.prop] ?? conflict.prop;
    const current = element("dd", { class: "current" });
    const proposed = element("dd", { class: "proposed" },
      showValue(conflict.proposed_value), " ",
      element("small", {}, `by ${conflict.proposed_by?.username ?? "someone"}`));
    const body = [
      element("p", {}, element("strong", {}, prop), " of ", element("code", {}, conflict.field)),
      element("dl", {}, element("dt", {}, "Current"), current, element("dt", {}, "Proposed"), proposed),
    ];
    if (canBuild) {
      const buttons = [
        element("button", { type: "button", onclick: () => resolve(conflict, "current") }, "Keep current"),
        element("button", { type: "button", onclick: () => resolve(conflict, "proposed") }, "Take proposed"),
      ];
      body.push(element("div", { class: "actions" }, ...buttons));
      if (TEXT_PROPS.has(conflict.prop)) {
        const id = `conflict-${conflict.id}-value`;
        const custom = element("input", { id, value: conflict.proposed_value, autocomplete: "off" });
        body.push(element("div", { class: "custom" },
          element("label", { for: id }, "Another value"), custom,
          element("button", { type: "button", onclick: () => resolve(conflict, "custom", custom.value) }, "Use this value")));
      }
    }
    const item = element("li", { class: "conflict", "data-conflict": String(conflict.id) }, ...body);
    return { item, current };
  }

  function renderConflicts() {
    for (const [id, view] of conflictViews) {
      if (!state.conflicts.has(id)) { view.item.remove(); conflictViews.delete(id); }
    }
    for (const conflict of state.conflicts.values()) {
      let view = conflictViews.get(conflict.id);
      if (!view) {
        view = conflictView(conflict);
        conflictViews.set(conflict.id, view);
        conflictsList.append(view.item);
      }
      // The value "Keep current" keeps is the field's now, which may have moved on since.
      const field = state.fields.find((f) => f.key === conflict.field);
      const value = field ? field[conflict.prop] : conflict.current_value;
      const by = value === conflict.current_value ? conflict.current_by?.username : null;
      view.current.replaceChildren(showValue(value), ...(by ? [" ", element("small", {}, `by ${by}`)] : []));
    }
    $("#conflicts-count").textContent = String(state.conflicts.size);
    $("#no-conflicts").hidden = state.conflicts.size > 0;
  }

  // --- who is here -----------------------------------------------------------------------------
  function renderMembers() {
    const items = [...state.members.values()]
      .sort((a, b) => a.user.username.localeCompare(b.user.username))
      .map((member) => {
        const doing = member.state?.startsWith("editing:")
          ? `editing ${member.state.slice("editing:".length)}`
          : member.status;
        const you = member.user.id === userId ? " (you)" : "";
        return element("li", { "data-user": String(member.user.id) }, `${member.user.username}${you}: ${doing}`);
      });
    $("#members").replaceChildren(...items);
  }

  function render() {
    if (state.form === null) return;
    renderForm();
    renderFields();
    renderConflicts();
    renderMembers();
    root.dataset.ready = "true";
  }

  // --- adding a field --------------------------------------------------------------------------
  const adder = $("#add-field");
  if (adder) {
    const typeSelect = adder.querySelector("[name=type]");
    const optionsRow = adder.querySelector("#add-options-row");
    const showOptions = () => (optionsRow.hidden = !CHOICE_TYPES.has(typeSelect.value));
    typeSelect.addEventListener("change", showOptions);
    showOptions();
    adder.addEventListener("submit", async (event) => {
      event.preventDefault();
      const values = new FormData(adder);
      const key = values.get("key").trim();
      const data = {
        base_revision: state.revision ?? 0,
        key,
        type: values.get("type"),
        label: values.get("label"),
        required: values.get("required") === "on",
      };
      if (CHOICE_TYPES.has(data.type)) data.options = parseOptions(values.get("options"));
      const ack = await change("forms.field.add", data, `Adding ${key || "a field"}`);
      if (ack) {
        adder.reset();
        showOptions();
        say(`Added ${key}.`);
      }
    });
  }

  // --- wiring ----------------------------------------------------------------------------------
  fieldsList.addEventListener("focusin", (event) => {
    const item = event.target.closest("li[data-key]");
    if (item) setFocus(item.dataset.key);
  });
  fieldsList.addEventListener("focusout", (event) => {
    // Moving to another field's input: its focusin names it; anywhere else: no field.
    if (!event.relatedTarget?.closest?.("#fields li[data-key]")) setFocus(null);
  });

  const handle = (frame) => { if (applyFrame(state, frame)) render(); };
  for (const type of ["forms.form.snapshot", "forms.form.resumed", "forms.form.changed",
                      "forms.field.added", "forms.field.changed", "forms.field.moved",
                      "forms.field.removed", "forms.conflict.opened", "forms.conflict.resolved",
                      "presence.member.joined", "presence.member.updated", "presence.member.left",
                      "presence.user.changed"]) {
    client.on(type, handle);
  }
  // After a drop, only the changes missed since the revision shown (a snapshot if too old).
  client.resume = () => (state.revision === null ? {} : { since: state.revision });
  client.onState((connection) => {
    if (connection === "open" && focusedKey !== null) {
      // A new socket joins the room as "viewing": say again which field has our focus.
      client.send("forms.field.focus", { key: focusedKey });
    }
    if (connection === "closed" && client.closeCode === 4404) say("This form is gone, or you are no longer a member.", { error: true });
    if (connection === "closed" && client.closeCode === 4403) say("You may no longer open this form.", { error: true });
  });
  return { state, render };
}
