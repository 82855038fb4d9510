// The staff page: system events and alerts live, open sockets per app and worker, the apps'
// switches, announcements and readiness. Plain ES module on the browser client.
//
//   import { mountStaffPage } from "/static/monitoring/staff.js";
//   mountStaffPage(document.querySelector("main"), { can_switch: true, can_announce: true,
//                                                    can_withdraw: true, latency_warning_ms: {} });
//
// Two sockets on /ws/monitoring/events/: the table's, whose filter the form changes with
// `monitoring.events.filter`, and the alerts', filtered to warning and critical for good (so
// the table's filter never hides an alert). Both resume with `since` after a drop. Counts,
// switches and readiness are polled over REST and /readyz; announcements come live on every
// socket. Writes send the CSRF token of the cookie; an error answer (403 without the
// permission) is shown beside what it is about.

import { RealtimeClient } from "../realtime/client.js";
import { describeError, element, rest } from "../realtime/page.js";

const EVENTS_URL = "/ws/monitoring/events/";
const RECORDED = "monitoring.event.recorded";
const MAX_ROWS = 300; // rows kept in the table: enough to read back, light for the DOM
const MAX_ALERTS = 20;
const RELOAD_ROWS = 100; // fetched over REST when the filter changes
const ALERT_SEVERITIES = ["warning", "critical"];
const POLL_SECONDS = { connections: 5, readiness: 10, apps: 15, announcements: 5 };
const FILTER_DEBOUNCE_MS = 250;
const OPEN_RECOUNT_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";

function timeElement(iso, withDate = false) {
  const date = new Date(iso);
  return element("time", { datetime: iso }, withDate ? date.toLocaleString() : date.toLocaleTimeString());
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text; // a live region speaks only on change
}

/** An event's details in one line: `username: bob, app: forms`. */
export function describeDetails(details, limit = 300) {
  if (!details || typeof details !== "object") return "";
  const text = Object.entries(details)
    .map(([key, value]) => `${key}: ${value !== null && typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(", ");
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

/** Bars of `values` ({name: count}) as an inline SVG, scaled to the largest. */
export function barChart(values, { label = "Open sockets per app", width = 360, bar = 18, gap = 6 } = {}) {
  const entries = Object.entries(values);
  const names = 100;
  const room = width - names - 40;
  const max = Math.max(1, ...entries.map(([, value]) => value));
  const height = Math.max(bar, entries.length * (bar + gap) - gap);
  const summary = entries.map(([name, value]) => `${name} ${value}`).join(", ") || "none";
  const svg = document.createElementNS(SVG, "svg");
  for (const [name, value] of Object.entries({
    viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": `${label}: ${summary}`, class: "bars",
  })) svg.setAttribute(name, value);
  const add = (tag, attributes, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  entries.forEach(([name, value], index) => {
    const y = index * (bar + gap);
    const length = Math.max(value > 0 ? 2 : 0, (room * value) / max);
    add("text", { x: 0, y: y + bar * 0.75, class: "name" }, name);
    add("rect", { x: names, y, width: length, height: bar, rx: 3, class: "bar", "data-app": name });
    add("text", { x: names + length + 6, y: y + bar * 0.75, class: "value" }, String(value));
  });
  if (!entries.length) add("text", { x: 0, y: bar * 0.75, class: "name" }, "No open sockets");
  return svg;
}

/** Events (or alerts) kept newest first in `container`, at most `max`, one node per id. */
class EventList {
  constructor(container, max, render) {
    Object.assign(this, { container, max, render, nodes: new Map(), maxId: null });
  }

  get size() {
    return this.nodes.size;
  }

  add(event) {
    if (this.nodes.has(event.id)) return false;
    this.maxId = Math.max(this.maxId ?? event.id, event.id);
    if (this.nodes.size >= this.max && event.id < Math.min(...this.nodes.keys())) return false;
    this.container.querySelector(":scope > .empty")?.remove();
    const node = this.render(event);
    node.dataset.id = String(event.id);
    // Ids are not in commit order across workers: a late one goes to its place, not the top.
    const before = [...this.container.children].find((n) => Number(n.dataset.id) < event.id) ?? null;
    this.container.insertBefore(node, before);
    this.nodes.set(event.id, node);
    while (this.nodes.size > this.max) {
      const last = this.container.lastElementChild;
      this.nodes.delete(Number(last.dataset.id));
      last.remove();
    }
    return true;
  }

  keep(predicate) {
    for (const [id, node] of this.nodes) {
      if (!predicate(node.dataset)) {
        node.remove();
        this.nodes.delete(id);
      }
    }
  }
}

function eventRow(event) {
  return element("tr", { class: `severity-${event.severity}`, "data-kind": event.kind, "data-severity": event.severity },
    element("td", {}, timeElement(event.created_at, true)),
    element("td", {}, event.kind),
    element("td", { class: "severity" }, event.severity),
    element("td", {}, event.actor?.username ?? "—"),
    element("td", {}, event.ip ?? "—"),
    element("td", { class: "details" }, describeDetails(event.details)));
}

function alertItem(event) {
  return element("li", { class: `severity-${event.severity}` },
    element("strong", {}, `${event.severity}: ${event.kind}`), " ",
    timeElement(event.created_at, true), " ",
    element("span", { class: "details" }, describeDetails(event.details) || (event.actor?.username ?? "")));
}

export function mountStaffPage(root, options = {}) {
  const find = (id) => root.querySelector(`#${id}`);
  const badge = document.getElementById("connection-state");
  const filter = { kinds: [], severities: [] };
  const table = new EventList(find("events").tBodies[0], MAX_ROWS, eventRow);
  const alerts = new EventList(find("alerts"), MAX_ALERTS, alertItem);
  const matches = (e) => (!filter.kinds.length || filter.kinds.includes(e.kind))
    && (!filter.severities.length || filter.severities.includes(e.severity));
  const status = find("events-status");
  const showStatus = () => setText(status, "Live"
    + (filter.kinds.length || filter.severities.length
      ? ` (filtered: ${[...filter.kinds, ...filter.severities].join(", ")})` : "")
    + ": new events appear at the top.");
  const showCount = () => setText(find("events-count"), String(table.size));

  // --- events and alerts, live ------------------------------------------------------------
  const events = new RealtimeClient(EVENTS_URL, {
    resume: () => ({
      since: table.maxId ?? undefined,
      kind: filter.kinds.join(",") || undefined,
      severity: filter.severities.join(",") || undefined,
    }),
  });
  events.on(RECORDED, (frame) => {
    // No seq on these frames (ids are not in commit order across workers): the lists dedupe by id.
    if (!matches(frame.data)) return; // sent under the previous filter, before its ack
    table.add(frame.data);
    showCount();
    if (frame.data.kind === "staff_action" && frame.data.details?.app) refreshApps();
  });
  events.on("monitoring.events.ready", () => {
    root.dataset.ready = "true";
    showStatus();
  });
  events.onState((state) => {
    badge.textContent = state;
    badge.dataset.state = state;
    if (state === "open") {
      // The worker reports its sockets as they open: count this page's in a moment.
      setTimeout(refreshConnections, OPEN_RECOUNT_MS);
      return;
    }
    delete root.dataset.ready;
    if (state === "closed") {
      setText(status, `The server closed the event stream (${events.closeCode ?? "closed"}); reload the page.`);
    } else {
      setText(status, events.connections === 0
        ? "Connecting…" : "Reconnecting… the events recorded meanwhile come when the stream is back.");
    }
  });
  events.trackActivity();

  const alertsClient = new RealtimeClient(`${EVENTS_URL}?severity=${ALERT_SEVERITIES.join(",")}`, {
    resume: () => ({ since: alerts.maxId ?? undefined }),
  });
  alertsClient.on(RECORDED, (frame) => {
    alerts.add(frame.data);
  });

  // --- the filter -----------------------------------------------------------------------------
  const form = find("event-filters");
  const eventsError = find("events-error");
  let debounce = null;
  form.addEventListener("change", () => {
    clearTimeout(debounce);
    debounce = setTimeout(applyFilter, FILTER_DEBOUNCE_MS);
  });
  form.addEventListener("submit", (e) => e.preventDefault());

  async function applyFilter() {
    const ticked = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
    Object.assign(filter, { kinds: ticked("kind"), severities: ticked("severity") });
    setText(eventsError, "");
    try {
      // Offline, the next connection carries the filter (resume); open, the socket switches now.
      if (events.state === "open" || events.state === "connecting") {
        await events.command("monitoring.events.filter", filter);
      }
      const query = new URLSearchParams({ limit: String(RELOAD_ROWS) });
      if (filter.kinds.length) query.set("kind", filter.kinds.join(","));
      if (filter.severities.length) query.set("severity", filter.severities.join(","));
      const page = await rest("GET", `/api/monitoring/events/?${query}`);
      // Rows that arrived live since the ack match already; the others go.
      table.keep((row) => matches({ kind: row.kind, severity: row.severity }));
      for (const event of page.results) table.add(event);
      showCount();
      showStatus();
    } catch (error) {
      setText(eventsError, `The filter could not be applied: ${describeError(error)}`);
    }
  }

  // --- connections ----------------------------------------------------------------------------
  async function refreshConnections() {
    const error = find("connections-error");
    try {
      const data = await rest("GET", "/api/monitoring/connections/");
      setText(find("connections-total"), String(data.total));
      find("connections-chart").replaceChildren(barChart(data.apps));
      const now = Date.now() / 1000;
      find("connections-workers").tBodies[0].replaceChildren(...data.workers.map((w) => element("tr", {},
        element("td", {}, w.worker),
        element("td", {}, String(w.total)),
        element("td", {}, Object.entries(w.apps).map(([app, n]) => `${app} ${n}`).join(", ")),
        element("td", {}, `${Math.max(0, Math.round(now - w.reported_at))} s ago`))));
      setText(find("connections-updated"), `updated ${new Date().toLocaleTimeString()}`);
      setText(error, "");
    } catch (failure) {
      setText(error, `Connection counts: ${describeError(failure)}`);
    }
  }

  // --- readiness ------------------------------------------------------------------------------
  async function refreshReadiness() {
    const label = find("readiness-status");
    let data;
    try {
      const response = await fetch("/readyz", { headers: { Accept: "application/json" }, cache: "no-store" });
      data = await response.json(); // 503 also answers JSON, naming what failed
    } catch {
      setText(label, "unreachable");
      label.dataset.state = "down";
      return;
    }
    setText(label, data.status);
    label.dataset.state = data.status === "ready" ? "ok" : "down";
    const warnings = options.latency_warning_ms ?? {};
    find("readiness-checks").tBodies[0].replaceChildren(...Object.entries(data.checks).map(([name, check]) => {
      const latency = element("td", {});
      if (check.ok) {
        const warning = warnings[name];
        if (warning) {
          latency.append(element("meter", {
            min: "0", max: String(warning), low: String(warning / 2), high: String(warning * 0.8),
            optimum: "0", value: String(Math.min(check.ms, warning)),
            "aria-label": `${name} latency against its ${warning} ms warning level`,
          }), " ");
        }
        latency.append(`${check.ms} ms`);
      }
      return element("tr", { "data-check": name, class: check.ok ? "ok" : "failing" },
        element("th", { scope: "row" }, name),
        element("td", {}, check.ok ? "ok" : `failing (${check.error})`),
        latency);
    }));
    setText(find("readiness-updated"), `checked ${new Date().toLocaleTimeString()}`);
  }

  // --- app switches ---------------------------------------------------------------------------
  const appsError = find("apps-error");
  const appRow = (s) => element("tr", { "data-app": s.app, "data-enabled": String(s.enabled) },
    element("th", { scope: "row" }, s.app),
    element("td", { class: s.enabled ? "on" : "off" }, s.enabled ? "on" : `off${s.reason ? ` (${s.reason})` : ""}`),
    element("td", {}, s.changed_at
      ? `${s.changed_by?.username ?? "someone"}, ${new Date(s.changed_at).toLocaleString()}` : "—"),
    ...(options.can_switch ? [element("td", {}, element("button", {
      type: "button",
      onclick: (e) => switchApp(s.app, !s.enabled, e.currentTarget),
    }, `Switch ${s.app} ${s.enabled ? "off" : "on"}`))] : []));

  let appsStale = false; // the last refresh failed: its message goes once one succeeds
  async function refreshApps() {
    try {
      const switches = await rest("GET", "/api/monitoring/apps/");
      find("app-switches").tBodies[0].replaceChildren(...switches.map(appRow));
      if (appsStale) setText(appsError, "");
      appsStale = false;
    } catch (error) {
      setText(appsError, `App switches: ${describeError(error)}`);
      appsStale = true;
    }
  }

  async function switchApp(app, enabled, button) {
    button.disabled = true;
    setText(appsError, "");
    const reason = enabled ? "" : (find("switch-reason")?.value.trim() ?? "");
    try {
      const changed = await rest("PATCH", `/api/monitoring/apps/${encodeURIComponent(app)}/`, { enabled, reason });
      find("app-switches").querySelector(`tr[data-app="${app}"]`)?.replaceWith(appRow(changed));
    } catch (error) {
      setText(appsError, `Switching ${app} ${enabled ? "on" : "off"} failed: ${describeError(error)}`);
      button.disabled = false;
    }
  }

  // --- announcements --------------------------------------------------------------------------
  const announcements = new Map(); // id -> announcement
  const announcementsError = find("announcements-error");
  const showAnnouncements = () => {
    const list = find("announcements");
    const now = Date.now();
    for (const [id, a] of announcements) if (Date.parse(a.expires_at) <= now) announcements.delete(id);
    const items = [...announcements.values()].sort((a, b) => b.id - a.id).map((a) => element("li",
      { class: `level-${a.level}`, "data-announcement": String(a.id) },
      element("strong", {}, a.level), ` ${a.text} `,
      element("small", {}, "until ", timeElement(a.expires_at, true)),
      ...(options.can_withdraw ? [" ", element("button", {
        type: "button", onclick: (e) => withdraw(a.id, e.currentTarget), "aria-label": `Withdraw “${a.text}”`,
      }, "Withdraw")] : [])));
    list.replaceChildren(...(items.length ? items : [element("li", { class: "empty" }, "None live.")]));
  };
  const keepAnnouncement = (a) => {
    if (a.live === false) announcements.delete(a.id);
    else announcements.set(a.id, { ...announcements.get(a.id), ...a });
    showAnnouncements();
  };
  // Every socket gets them, on connect and live; the table's socket is enough.
  events.on("monitoring.announcement.published", (f) => keepAnnouncement(f.data));
  events.on("monitoring.announcement.withdrawn", (f) => {
    announcements.delete(f.data.id);
    showAnnouncements();
  });

  async function loadAnnouncements() {
    try {
      const page = await rest("GET", "/api/monitoring/announcements/?live=true");
      for (const a of page.results) keepAnnouncement(a);
    } catch (error) {
      setText(announcementsError, `Announcements: ${describeError(error)}`);
    }
  }

  async function withdraw(id, button) {
    button.disabled = true;
    setText(announcementsError, "");
    try {
      keepAnnouncement(await rest("POST", `/api/monitoring/announcements/${id}/withdraw/`));
    } catch (error) {
      setText(announcementsError, `Withdrawing failed: ${describeError(error)}`);
      button.disabled = false;
    }
  }

  find("announce-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const announce = e.currentTarget;
    const data = new FormData(announce);
    const button = announce.querySelector("button[type=submit]");
    button.disabled = true;
    setText(announcementsError, "");
    try {
      keepAnnouncement(await rest("POST", "/api/monitoring/announcements/", {
        text: String(data.get("text")).trim(),
        level: data.get("level"),
        expires_in: Math.round(Number(data.get("minutes")) * 60),
      }));
      announce.reset();
    } catch (error) {
      setText(announcementsError, `Announcing failed: ${describeError(error)}`);
    } finally {
      button.disabled = false;
    }
  });

  // --- start ----------------------------------------------------------------------------------
  const polls = [
    [refreshConnections, POLL_SECONDS.connections],
    [refreshReadiness, POLL_SECONDS.readiness],
    [refreshApps, POLL_SECONDS.apps],
    [showAnnouncements, POLL_SECONDS.announcements], // drops the expired ones
  ];
  for (const [poll, seconds] of polls) {
    poll();
    setInterval(() => document.hidden || poll(), seconds * 1000);
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) for (const [poll] of polls) poll();
  });
  loadAnnouncements();
  events.start();
  alertsClient.start();
  return { events, alerts: alertsClient, table, refreshConnections, refreshReadiness, refreshApps };
}
