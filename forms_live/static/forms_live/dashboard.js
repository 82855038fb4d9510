// The live dashboard of a form, on the browser client and /ws/forms/<id>/dashboard/.
//
//   import { mountDashboard } from "/static/forms_live/dashboard.js";
//   mountDashboard(document.getElementById("dashboard"), { formId: 7, badge });
//
// `forms.dashboard.snapshot` gives the form, its analytics and the latest 50 submissions; each
// `forms.dashboard.updated` (at most four a second) the analytics again and the latest state of
// the submissions that changed. The counters, the two inline SVG bar charts (the funnel, the
// per-field drop-off; charts.js has their geometry) and the table follow. A sent submission is
// moved on (processing, then completed) over REST, with the session and its CSRF cookie; the
// change comes back to every dashboard, and to the respondent, through the sockets.

import { RealtimeClient } from "../realtime/client.js";
import { element, rest } from "../realtime/page.js";
import { barLayout, describeRows, dropOffRows, formatDuration, formatRate, funnelRows, truncate } from "./charts.js";

export const LATEST = 50;
export const STATUS_LABELS = {
  in_progress: "In progress",
  submitted: "Submitted",
  processing: "Processing",
  completed: "Completed",
};
export const NEXT_STATUS = {
  submitted: { status: "processing", label: "Start processing" },
  processing: { status: "completed", label: "Mark completed" },
};
const SVG = "http://www.w3.org/2000/svg";
const LABEL_CHARS = 24;

// --- pure parts ------------------------------------------------------------------------------

const epoch = (iso) => (iso ? Date.parse(iso) : Number.NaN);

/** The latest moment a submission's payload names (it carries no "updated" time of its own). */
export function lastKnownChange(submission) {
  const times = [submission.started_at, submission.submitted_at, submission.completed_at].map(epoch);
  const known = times.filter(Number.isFinite);
  return known.length ? Math.max(...known) : null;
}

const startOf = (row) => epoch(row.submission.started_at) || 0;

/** The `limit` latest submissions, newest start first (as the snapshot orders them). */
export function latestSubmissions(entries, limit = LATEST) {
  return [...entries]
    .sort((a, b) => startOf(b) - startOf(a) || b.submission.id - a.submission.id)
    .slice(0, limit);
}

/** Merge the submissions of an update into `rows` (id -> {submission, updatedAt}): a state
 * older than the one shown (lower revision) is ignored; `now` is when the update arrived. */
export function mergeSubmissions(rows, submissions, now) {
  for (const submission of submissions ?? []) {
    const shown = rows.get(submission.id);
    if (shown && shown.submission.revision > submission.revision) continue;
    rows.set(submission.id, { submission, updatedAt: now });
  }
  for (const { submission } of latestSubmissions(rows.values(), Number.MAX_SAFE_INTEGER).slice(LATEST)) {
    rows.delete(submission.id);
  }
  return rows;
}

/** "14:03:22" today, "12 Mar, 14:03" before; "—" when unknown. */
export function formatWhen(ms, nowMs = Date.now()) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  const when = new Date(ms);
  const now = new Date(nowMs);
  if (when.toDateString() === now.toDateString()) return when.toLocaleTimeString();
  return when.toLocaleString(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

// --- drawing ---------------------------------------------------------------------------------

function svgElement(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

/** Horizontal bars in `svg`, one per row, with its label and value (and note, if any). */
export function drawBars(svg, description, rows) {
  // Drawn at the width it is shown at, so that its text is as large as the page's.
  const width = Math.max(280, Math.round(svg.getBoundingClientRect?.().width || 640));
  const layout = barLayout(rows, { width, labelWidth: Math.min(170, Math.round(width * 0.3)), valueWidth: 90 });
  const height = Math.max(layout.height, 40);
  svg.setAttribute("viewBox", `0 0 ${layout.width} ${height}`);
  const children = [];
  if (!rows.length) {
    children.push(svgElement("text", { x: 8, y: 24, class: "empty" }, "No fields yet"));
  }
  for (const bar of layout.bars) {
    const value = bar.share ? `${bar.value} (${bar.share})` : String(bar.value);
    const group = svgElement("g", { class: "bar", "data-key": bar.key, "data-value": bar.value });
    group.append(
      svgElement("title", {}, `${bar.label}: ${bar.value}${bar.note ? `, ${bar.note}` : ""}`),
      svgElement(
        "text",
        { x: bar.x - 8, y: bar.labelY, "text-anchor": "end", "dominant-baseline": "middle", class: "label" },
        truncate(bar.label, LABEL_CHARS),
      ),
      svgElement("rect", { x: bar.x, y: bar.y, width: bar.length.toFixed(1), height: bar.height, rx: 3 }),
      svgElement("text", { x: bar.valueX, y: bar.labelY, "dominant-baseline": "middle", class: "value" }, value),
    );
    children.push(group);
  }
  if (rows.length) {
    const x = layout.bars[0].x;
    children.push(svgElement("line", { x1: x, x2: x, y1: 4, y2: height - 4, class: "axis" }));
  }
  svg.replaceChildren(...children);
  description.textContent = describeRows(rows);
}

// --- the page --------------------------------------------------------------------------------

export function mountDashboard(root, { formId, badge = null }) {
  const byId = (id) => root.querySelector(`#${id}`);
  const state = { form: null, analytics: null, rows: new Map(), updates: 0 };
  const client = new RealtimeClient(`/ws/forms/${formId}/dashboard/`);

  client.onState((value) => {
    if (badge) {
      badge.textContent = value;
      badge.dataset.state = value;
    }
    root.dataset.connection = value;
    if (value === "closed") {
      const note = byId("dashboard-closed");
      note.textContent =
        "This dashboard is closed: the form was removed, or you are no longer one of its owners or editors.";
      note.hidden = false;
      root.dataset.state = "closed";
    }
  });
  client.trackActivity();

  client.on("forms.dashboard.snapshot", ({ data }) => {
    state.form = data.form;
    state.analytics = data.analytics;
    state.rows = new Map();
    for (const submission of data.submissions) {
      state.rows.set(submission.id, { submission, updatedAt: lastKnownChange(submission) });
    }
    root.dataset.state = "ready";
    render("Figures as of");
  });
  client.on("forms.dashboard.updated", ({ data }) => {
    state.analytics = data.analytics;
    mergeSubmissions(state.rows, data.submissions, Date.now());
    state.updates += 1;
    root.dataset.updates = String(state.updates);
    render("Updated live at");
  });

  function drawCharts() {
    drawBars(byId("funnel-chart"), byId("funnel-desc"), funnelRows(state.analytics));
    drawBars(byId("dropoff-chart"), byId("dropoff-desc"), dropOffRows(state.analytics.drop_off, state.form.fields));
  }

  // The charts follow the page's width (a phone turned, a window resized).
  let drawnWidth = null;
  const resized = new ResizeObserver(([entry]) => {
    const width = Math.round(entry.contentRect.width);
    if (state.form !== null && width !== drawnWidth) drawCharts();
    drawnWidth = width;
  });
  resized.observe(byId("funnel-chart"));

  function render(what) {
    const form = state.form;
    byId("dashboard-title").textContent = form.title;
    const pill = byId("dashboard-form-status");
    pill.dataset.status = form.status;
    pill.textContent = form.status[0].toUpperCase() + form.status.slice(1);
    showCounters(state.analytics);
    drawCharts();
    showRows();
    byId("dashboard-updated").textContent = `${what} ${new Date().toLocaleTimeString()}.`;
  }

  function showCounters(analytics) {
    const figures = {
      "count-views": String(analytics.views),
      "count-starts": String(analytics.starts),
      "count-completions": String(analytics.completions),
      "count-abandoned": String(analytics.abandoned),
      "count-completion-rate": formatRate(analytics.completion_rate),
      "count-median": formatDuration(analytics.median_seconds),
    };
    for (const [id, text] of Object.entries(figures)) {
      const node = byId(id);
      if (node.textContent !== text) node.textContent = text; // untouched: not re-announced
    }
  }

  function showRows() {
    const body = byId("submission-rows");
    const rows = latestSubmissions(state.rows.values());
    if (!rows.length) {
      body.replaceChildren(element("tr", { class: "empty" }, element("td", { colspan: "6" }, "No submissions yet.")));
      return;
    }
    const now = Date.now();
    body.replaceChildren(...rows.map(({ submission, updatedAt }) => row(submission, updatedAt, now)));
  }

  function row(submission, updatedAt, now) {
    const who = submission.respondent?.username ?? "Anonymous";
    const progress = element("progress", {
      max: "100",
      value: String(submission.progress),
      "aria-label": `Progress of ${who}`,
    });
    const label = STATUS_LABELS[submission.status] ?? submission.status;
    const pill = element("span", { class: "pill", "data-status": submission.status }, label);
    const next = NEXT_STATUS[submission.status];
    const action = next
      ? element("button", { type: "button", onclick: (e) => move(e.currentTarget, submission, next) }, next.label)
      : "";
    return element(
      "tr",
      { "data-submission": String(submission.id), "data-status": submission.status },
      element("td", {}, who),
      element("td", { class: "status" }, pill),
      element("td", { class: "progress" }, progress, ` ${submission.progress}%`),
      element("td", {}, formatWhen(epoch(submission.started_at), now)),
      element("td", {}, formatWhen(updatedAt, now)),
      element("td", {}, action),
    );
  }

  async function move(button, submission, next) {
    button.disabled = true;
    const status = byId("action-status");
    try {
      await rest("POST", `/api/forms/${formId}/submissions/${submission.id}/status/`, { status: next.status });
      const who = submission.respondent?.username ?? "an anonymous respondent";
      status.textContent = `The submission of ${who} is now ${STATUS_LABELS[next.status].toLowerCase()}.`;
    } catch (error) {
      status.textContent = `Could not change the status: ${error.message} (${error.code})`;
      button.disabled = false;
    }
  }

  client.start();
  return { client, state };
}
