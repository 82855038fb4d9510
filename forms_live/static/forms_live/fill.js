// The fill page of a published form, on the browser client and /ws/forms/<id>/fill/.
//
//   import { mountFill } from "/static/forms_live/fill.js";
//   mountFill(document.getElementById("fill"), { formId: 7, userId: 3, anonymous: false, badge });
//
// The fields come from `forms.fill.snapshot`, prefilled with the respondent's resumed submission.
// Every change goes out as `forms.submission.update` (an UpdateQueue: at most one every 300 ms
// and one at a time, the latest value of each field always sent), and its ack's per-field
// `errors` and `progress` are shown at once: the server is the authority, the page never judges
// a value itself. Send flushes what is pending first, then `forms.submission.submit`; `invalid`
// shows `details.errors`. On an anonymous form nothing names the respondent, so the
// submission's token is kept in localStorage (per user and form) and every (re)connect resumes
// it with `?submission=`; a token the server no longer knows is forgotten and a new one started.

import { CommandError, RealtimeClient } from "../realtime/client.js";
import { element } from "../realtime/page.js";

export const UPDATE_EVERY_SECONDS = 0.3;
const RETRY_SECONDS = 1;
const STATUS_TEXT = {
  in_progress: "In progress",
  submitted: "Received: the form's owners have it.",
  processing: "Being processed by the form's owners.",
  completed: "Completed by the form's owners.",
};

const own = (object, key) => (object && Object.hasOwn(object, key) ? object[key] : undefined);

// --- pure parts ------------------------------------------------------------------------------

/** A validation code of forms_live/validation.py as a sentence, with the field's rules. */
export function errorMessage(code, field = {}) {
  const rules = field.rules ?? {};
  const type = field.type;
  // A rule may be gone from the field by the time its code is shown (a builder changed it).
  const rule = (name, known, unknown) => (rules[name] === undefined ? unknown : known(rules[name]));
  switch (code) {
    case "required":
      if (type === "checkbox") return "Tick this box to go on.";
      if (type === "single_choice" || type === "multiple_choice") return "Choose an answer.";
      return "This answer is required.";
    case "type":
      return type === "number" ? "Enter a number." : "This answer has the wrong kind of value.";
    case "min":
      if (type === "date") return rule("min", (day) => `Pick ${day} or later.`, "Pick a later date.");
      return rule("min", (low) => `Enter ${low} or more.`, "Enter a larger number.");
    case "max":
      if (type === "date") return rule("max", (day) => `Pick ${day} or earlier.`, "Pick an earlier date.");
      return rule("max", (high) => `Enter ${high} or less.`, "Enter a smaller number.");
    case "integer":
      return "Enter a whole number.";
    case "min_length":
      return rule("min_length", (n) => `Enter at least ${n} characters.`, "This answer is too short.");
    case "max_length":
      return rule("max_length", (n) => `Enter at most ${n} characters.`, "This answer is too long.");
    case "pattern":
      return "This answer is not in the expected format.";
    case "email":
      return "Enter an email address such as name@example.com.";
    case "choice":
      return type === "multiple_choice" ? "Choose only from the options, each once." : "Choose one of the options.";
    case "min_selected":
      return rule("min_selected", (n) => `Choose at least ${n}.`, "Choose more.");
    case "max_selected":
      return rule("max_selected", (n) => `Choose at most ${n}.`, "Choose fewer.");
    case "date":
      return "Enter a real date.";
    case "unknown_field":
      return "This question is no longer part of the form.";
    default:
      return `Not accepted (${code}).`;
  }
}

/** What a field's rules ask, for the hint under its label: "Between 18 and 99, a whole number". */
export function ruleHint(field) {
  const rules = field.rules ?? {};
  const parts = [];
  const range = (low, high, noun = "") => {
    const of = (n) => (noun ? ` ${noun}${n === 1 ? "" : "s"}` : "");
    if (low !== undefined && high !== undefined) parts.push(`between ${low} and ${high}${of(high)}`);
    else if (low !== undefined) parts.push(`at least ${low}${of(low)}`);
    else if (high !== undefined) parts.push(`at most ${high}${of(high)}`);
  };
  switch (field.type) {
    case "number":
      range(rules.min, rules.max);
      if (rules.integer) parts.push("a whole number");
      break;
    case "date":
      if (rules.min !== undefined) parts.push(`from ${rules.min}`);
      if (rules.max !== undefined) parts.push(`until ${rules.max}`);
      break;
    case "multiple_choice":
      range(rules.min_selected, rules.max_selected, "choice");
      break;
    default:
      range(rules.min_length, rules.max_length, "character");
  }
  if (!parts.length) return "";
  const text = parts.join(", ");
  return text[0].toUpperCase() + text.slice(1) + ".";
}

/** The respondent's changes on their way to the server: `send(values)` (a promise of the ack)
 * runs at most once per `every` seconds and one at a time, with the latest value of every field
 * changed since the last one. A failed send puts its values back (unless newer ones came) and
 * tries again, unless the server refused them for good (an error that is not `retry`). */
export class UpdateQueue {
  constructor(send, options = {}) {
    const { every = UPDATE_EVERY_SECONDS, retry = RETRY_SECONDS, onAck = () => {}, onError = () => {} } = options;
    Object.assign(this, { send, every, retry, onAck, onError });
    this.pending = new Map(); // key -> latest value not yet sent
    this.inflight = null; // Map sent and not yet answered
    this.stopped = false;
    this.lastError = null;
    this.retryAfter = retry;
    this._timer = null;
    this._running = null;
  }

  get size() {
    return this.pending.size;
  }

  /** Whether the key has a value the server has not acked yet. */
  has(key) {
    return this.pending.has(key) || (this.inflight !== null && this.inflight.has(key));
  }

  set(key, value) {
    this.pending.delete(key); // re-inserted last: the last field touched is sent last
    this.pending.set(key, value);
    this._schedule(this.every);
  }

  /** Send what is pending now (a blur, the page being hidden). */
  flush() {
    this._cancel();
    return this._flush();
  }

  /** Resolves once every value is acked; rejects with the error that left some unsent: one
   * the server refused for good at once, one worth retrying after `attempts` tries. */
  async settle({ attempts = 3 } = {}) {
    for (let failed = 0; ; ) {
      if (this._running) {
        await this._running;
        continue;
      }
      if (!this.pending.size) return;
      if (this.stopped) throw this.lastError ?? new Error("the connection is closed");
      this._cancel();
      if (await this._flush()) continue;
      failed += 1;
      if (!this.pending.size || failed >= attempts) throw this.lastError;
      this._cancel(); // this loop retries, not the timer
      await new Promise((resolve) => setTimeout(resolve, this.retryAfter * 1000));
    }
  }

  stop() {
    this.stopped = true;
    this._cancel();
  }

  _cancel() {
    clearTimeout(this._timer);
    this._timer = null;
  }

  _schedule(seconds) {
    if (this._timer !== null || this._running || this.stopped) return;
    this._timer = setTimeout(() => {
      this._timer = null;
      this._flush();
    }, seconds * 1000);
  }

  _flush() {
    if (this._running) return this._running;
    if (this.stopped || !this.pending.size) return Promise.resolve(this.pending.size === 0);
    const values = this.pending;
    this.pending = new Map();
    this.inflight = values;
    let again = this.every;
    this._running = (async () => {
      try {
        const ack = await this.send(Object.fromEntries(values));
        this.inflight = null;
        this.onAck(ack, values);
        return true;
      } catch (error) {
        this.inflight = null;
        this.lastError = error;
        const retry = !(error instanceof CommandError) || error.error?.retry === true;
        if (retry) {
          for (const [key, value] of values) if (!this.pending.has(key)) this.pending.set(key, value);
          again = error.error?.retry_after ?? this.retry;
          this.retryAfter = again;
        }
        this.onError(error, values, retry);
        return false;
      } finally {
        this._running = null;
        if (this.pending.size) this._schedule(again);
      }
    })();
    return this._running;
  }
}

// --- the fields ------------------------------------------------------------------------------

/** Radios (single choice) or checkboxes (multiple choice) in a fieldset named by its legend. */
function choiceNode(field, { id, describedBy, title, help, error }) {
  const multiple = field.type === "multiple_choice";
  const controls = (field.options ?? []).map((option, index) =>
    element("input", { type: multiple ? "checkbox" : "radio", name: id, id: `${id}-${index}`, value: option }),
  );
  const options = controls.map((input, index) =>
    element("label", { for: input.id, class: "option" }, input, " ", field.options[index]),
  );
  const node = element(
    "fieldset",
    {
      class: "field",
      "data-key": field.key,
      "data-type": field.type,
      "aria-describedby": describedBy,
      role: multiple ? false : "radiogroup",
      "aria-labelledby": `${id}-legend`,
      "aria-required": !multiple && field.required ? "true" : false,
    },
    element("legend", { id: `${id}-legend` }, ...title),
    ...help,
    element("div", { class: "options" }, ...options),
    error,
  );
  return { node, controls };
}

/** One input (a textarea for long text) with its label. */
function inputNode(field, { id, describedBy, title, help, error }) {
  const required = field.required ? "true" : false;
  const common = { id, name: field.key, "aria-describedby": describedBy, "aria-required": required };
  const rules = field.rules ?? {};
  const input =
    field.type === "long_text"
      ? element("textarea", { ...common, rows: "4" })
      : element("input", {
          ...common,
          ...({
            checkbox: { type: "checkbox" },
            number: { type: "number", step: rules.integer ? "1" : "any", inputmode: "decimal" },
            date: { type: "date", min: rules.min, max: rules.max },
            email: { type: "email", autocomplete: "email", spellcheck: "false" },
          }[field.type] ?? { type: "text" }),
        });
  const label = element("label", { for: id }, ...title);
  const box = field.type === "checkbox";
  const parts = box ? [input, " ", label, ...help] : [label, ...help, input];
  const attributes = { class: box ? "field checkbox" : "field", "data-key": field.key, "data-type": field.type };
  return { node: element("div", attributes, ...parts, error), controls: [input] };
}

/** A field's value as the server wants it (validation.py's shapes). */
function readValue(field, controls) {
  const [first] = controls;
  switch (field.type) {
    case "checkbox":
      return first.checked;
    case "number":
      return first.value === "" ? null : Number(first.value);
    case "single_choice":
      return controls.find((c) => c.checked)?.value ?? null;
    case "multiple_choice":
      return controls.filter((c) => c.checked).map((c) => c.value);
    default:
      return first.value;
  }
}

function writeValue(field, controls, value) {
  const [first] = controls;
  switch (field.type) {
    case "checkbox":
      first.checked = value === true;
      break;
    case "single_choice":
      for (const c of controls) c.checked = c.value === value;
      break;
    case "multiple_choice":
      for (const c of controls) c.checked = Array.isArray(value) && value.includes(c.value);
      break;
    default:
      first.value = value === null || value === undefined ? "" : String(value);
  }
}

const requiredMark = () => element("span", { class: "required", "aria-hidden": "true" }, "*");

/** One field: `node` to insert, `read()`, `write(value)`, `showErrors(codes)`, `focus()`;
 * `changed()` is called on every input. */
function fieldWidget(field, changed) {
  const id = `fill-${field.key}`;
  const helpText = [field.help, ruleHint(field)].filter(Boolean).join(" ");
  const parts = {
    id,
    describedBy: [helpText && `${id}-help`, `${id}-error`].filter(Boolean).join(" "),
    title: field.required ? [field.label, " ", requiredMark()] : [field.label],
    help: helpText ? [element("p", { class: "help", id: `${id}-help` }, helpText)] : [],
    error: element("p", { class: "field-error", id: `${id}-error`, "aria-live": "polite" }),
  };
  const choice = field.type === "single_choice" || field.type === "multiple_choice";
  const { node, controls } = choice ? choiceNode(field, parts) : inputNode(field, parts);
  for (const control of controls) {
    control.addEventListener(control.type === "radio" || control.type === "checkbox" ? "change" : "input", changed);
  }

  function showErrors(codes) {
    const messages = (codes ?? []).map((code) => errorMessage(code, field));
    // A number the browser cannot read (say "1e") reaches the server as no number at all.
    if (field.type === "number" && controls[0].validity.badInput && !messages.length) {
      messages.push(errorMessage("type", field));
    }
    parts.error.textContent = messages.join(" ");
    node.classList.toggle("invalid", messages.length > 0);
    for (const control of controls) {
      if (messages.length) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    }
  }

  return {
    field,
    node,
    controls,
    read: () => readValue(field, controls),
    write: (value) => writeValue(field, controls, value),
    showErrors,
    focus: () => controls[0]?.focus(),
  };
}

const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

// --- the page --------------------------------------------------------------------------------

function tokenStore(key) {
  // localStorage can be missing or refuse (private windows, quotas): then only this tab resumes.
  return {
    get: () => {
      try {
        return globalThis.localStorage?.getItem(key) ?? null;
      } catch {
        return null;
      }
    },
    set: (value) => {
      try {
        if (value === null) globalThis.localStorage?.removeItem(key);
        else globalThis.localStorage?.setItem(key, value);
      } catch {
        /* resumed by this tab only */
      }
    },
  };
}

export function mountFill(root, { formId, userId, anonymous = false, badge = null }) {
  const byId = (id) => root.querySelector(`#${id}`);
  const formNode = byId("fill-form");
  const fieldsNode = byId("fill-fields");
  const status = byId("fill-status");
  const submitButton = byId("fill-submit");
  const progressBar = byId("fill-progress");
  const progressText = byId("fill-progress-text");
  const done = byId("fill-done");
  const closedNote = byId("fill-closed");
  const stored = anonymous ? tokenStore(`forms_live.submission.${formId}.${userId}`) : null;

  const state = {
    client: null,
    token: stored?.get() ?? null,
    triedStoredToken: false,
    sawSnapshot: false,
    widgets: new Map(), // key -> widget, in the form's order
    fieldsRevision: null,
    revision: 0, // the submission's, as last shown
    submission: null,
    sending: false,
  };
  state.triedStoredToken = state.token !== null;

  let trouble = false; // the status line tells of a failed save
  const queue = new UpdateQueue((values) => state.client.command("forms.submission.update", { values }), {
    onAck: (ack) => {
      if (trouble) say("");
      trouble = false;
      showSubmission(ack.submission);
    },
    onError: (error, values, retry) => {
      trouble = true;
      if (error instanceof CommandError && error.code === "conflict") {
        say("Your answers were sent already.");
      } else if (!retry) {
        say(`Some answers were not saved: ${describe(error)}`);
      } else {
        say(`Not saved yet, trying again: ${describe(error)}`);
      }
    },
  });

  function say(text) {
    status.textContent = text;
  }

  function describe(error) {
    return error instanceof CommandError ? `${error.error.message ?? error.code} (${error.code})` : error.message;
  }

  function connect() {
    const client = new RealtimeClient(`/ws/forms/${formId}/fill/`, {
      // A reconnect is the same page view (?resumed=1: the server counts no new view).
      resume: () => ({
        ...(state.token ? { submission: state.token } : {}),
        ...(client.connections > 0 ? { resumed: 1 } : {}),
      }),
    });
    state.client = client;
    state.sawSnapshot = false;
    client.onState((value) => {
      if (client !== state.client) return;
      if (badge) {
        badge.textContent = value;
        badge.dataset.state = value;
      }
      root.dataset.connection = value;
      if (value === "closed") closed();
    });
    client.trackActivity();
    client.on("forms.fill.snapshot", (frame) => snapshot(frame.data));
    client.on("forms.submission.changed", (frame) => showSubmission(frame.data.submission));
    client.start();
  }

  function closed() {
    if (state.triedStoredToken && !state.sawSnapshot) {
      // The stored token is not (or no longer) a submission of ours: start a new one.
      state.triedStoredToken = false;
      state.token = null;
      stored?.set(null);
      connect();
      return;
    }
    queue.stop();
    submitButton.disabled = true;
    if (root.dataset.state === "sent") return; // nothing more to say to who has sent theirs
    closedNote.textContent =
      "This form is not taking answers any more (it was closed or removed). Your last answers are kept as they were.";
    closedNote.hidden = false;
    root.dataset.state = "closed";
  }

  function snapshot({ form, submission }) {
    state.sawSnapshot = true;
    if (submission.token) {
      state.token = submission.token;
      stored?.set(submission.token);
    }
    byId("fill-title").textContent = form.title;
    if (state.fieldsRevision !== form.revision) renderFields(form.fields);
    state.fieldsRevision = form.revision;
    state.revision = 0; // a snapshot is the truth, whatever revision was shown before
    showSubmission(submission, { all: true });
    formNode.setAttribute("aria-busy", "false");
    if (root.dataset.state === "loading") root.dataset.state = "ready";
    submitButton.disabled = state.submission?.status !== "in_progress";
  }

  function renderFields(fields) {
    const local = new Map([...state.widgets].map(([key, widget]) => [key, widget.read()]));
    state.widgets = new Map();
    const nodes = fields.map((field) => {
      const widget = fieldWidget(field, () => {
        queue.set(field.key, widget.read());
        if (field.type === "number") widget.showErrors(own(state.submission?.errors, field.key));
      });
      if (local.has(field.key)) widget.write(local.get(field.key));
      state.widgets.set(field.key, widget);
      return widget.node;
    });
    if (!nodes.length) nodes.push(element("p", { class: "note" }, "This form has no questions."));
    fieldsNode.replaceChildren(...nodes);
    for (const widget of state.widgets.values()) {
      for (const control of widget.controls) control.addEventListener("blur", () => queue.flush());
    }
  }

  /** A submission from a snapshot, an ack or an event: shown unless older than what is shown;
   * values and errors of fields with answers not yet acked stay as the respondent has them. */
  function showSubmission(submission, { all = false } = {}) {
    if (!submission || submission.revision < state.revision) return;
    state.revision = submission.revision;
    state.submission = submission;
    for (const [key, widget] of state.widgets) {
      if (queue.has(key)) continue;
      if (all || Object.hasOwn(submission.values ?? {}, key)) {
        const value = own(submission.values, key);
        if (!same(value, widget.read()) && value !== undefined) widget.write(value);
      }
      widget.showErrors(own(submission.errors, key) ?? []);
    }
    showProgress(submission.progress);
    if (submission.status !== "in_progress") finished(submission);
  }

  function showProgress(percent) {
    const value = Math.max(0, Math.min(100, Number(percent) || 0));
    progressBar.value = value;
    progressBar.textContent = `${value}%`;
    progressText.textContent = `${value}% complete`;
    root.dataset.progress = String(value);
  }

  function finished(submission) {
    queue.stop();
    formNode.hidden = true;
    const first = done.hidden;
    done.hidden = false;
    byId("fill-done-status").textContent = `Status: ${STATUS_TEXT[submission.status] ?? submission.status}`;
    root.dataset.state = "sent";
    root.dataset.status = submission.status;
    if (first) done.focus();
  }

  async function send(event) {
    event.preventDefault();
    if (state.sending) return;
    state.sending = true;
    submitButton.disabled = true;
    say("Sending…");
    try {
      await queue.settle(); // every answer saved first: the server judges what it has
      const ack = await state.client.command("forms.submission.submit", {});
      say("");
      showSubmission(ack.submission);
    } catch (error) {
      const errors = error instanceof CommandError ? error.error.details?.errors : null;
      if (error.code === "invalid" && errors) {
        for (const [key, widget] of state.widgets) widget.showErrors(own(errors, key) ?? []);
        const count = Object.keys(errors).length;
        say(`${count} answer${count === 1 ? " needs" : "s need"} fixing before sending.`);
        state.widgets.get(Object.keys(errors).find((key) => state.widgets.has(key)))?.focus();
      } else {
        say(`Could not send: ${describe(error)}`);
      }
    } finally {
      state.sending = false;
      if (!formNode.hidden && root.dataset.state !== "closed") submitButton.disabled = false;
    }
  }

  formNode.addEventListener("submit", send);
  // Leaving the page: whatever was typed in the last 300 ms goes out now.
  globalThis.addEventListener?.("pagehide", () => queue.flush());
  globalThis.document?.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") queue.flush();
  });
  connect();
  return {
    get client() {
      return state.client;
    },
    queue,
    state,
  };
}
