// The notifications page: the signed-in user's notifications, newest first, unread ones marked;
// older pages over REST, new ones and read marks live. Plain ES module on the browser client.
//
//   import { mountNotificationsPage } from "/static/comments/notifications.js";
//   mountNotificationsPage(document.querySelector("main"), initial);  // the page's first page
//
// `initial` is {notifications, more, unread, page_size, unread_cap} as comments/pages.py gives
// it. The socket (/ws/comments/notifications/) resumes with `since` = the newest id shown, so
// its snapshot brings only what came meanwhile; "Mark read" and "Mark all read" go over REST,
// and every socket of the user (other tabs included) hears `comments.notifications.read`.

import { RealtimeClient } from "../realtime/client.js";
import { describeError, element, rest } from "../realtime/page.js";

const VERBS = { mention: "mentioned you", reply: "replied", reaction: "reacted to your comment" };
const MAX_REFRESHED = 200; // notifications re-read after a reconnect (their read marks)

/** Where a notification's target is shown: {href, text}, or null for a kind without a page. */
export function targetLink(target) {
  switch (target?.kind) {
    case "document":
      return { href: `/documents/${target.id}/`, text: `document #${target.id}` };
    case "form":
      return { href: `/forms/${target.id}/edit/`, text: `form #${target.id}` };
    case "form_field":
      return { href: `/forms/${target.id}/edit/`, text: `field “${target.key}” of form #${target.id}` };
    default:
      return null;
  }
}

/** The unread count as a badge shows it: counting stops at `cap`, which reads "99+". */
export function unreadLabel(unread, cap = 100) {
  return unread >= cap ? `${cap - 1}+` : String(unread);
}

export function mountNotificationsPage(root, initial) {
  const find = (id) => root.querySelector(`#${id}`);
  const list = find("notification-list");
  const count = find("unread-count");
  const error = find("notifications-error");
  const loadMore = find("load-more");
  const markAll = find("mark-all-read");
  const badge = document.getElementById("connection-state");
  const cap = initial.unread_cap ?? 100;
  const pageSize = initial.page_size ?? 20;
  const notifications = new Map(); // id -> payload
  const title = document.title;
  let more = initial.more;

  const showError = (message) => (error.textContent = message);

  function setUnread(unread) {
    const label = unreadLabel(unread, cap);
    if (count.textContent !== label) count.textContent = label; // the status speaks on change
    document.title = unread ? `(${label}) ${title}` : title;
    markAll.disabled = unread === 0;
  }

  function item(n) {
    const unread = n.read_at === null;
    const link = targetLink(n.target);
    const who = n.actor?.username ?? "Someone";
    const verb = VERBS[n.kind] ?? n.kind;
    const what = element("span", { class: "what" }, element("strong", {}, who), ` ${verb}`);
    if (link) what.append(" on ", element("a", { href: link.href }, link.text));
    const excerpt = n.excerpt
      ? element("p", { class: "excerpt" }, `“${n.excerpt}”`)
      : element("p", { class: "excerpt" }, element("em", {}, "The comment was removed, or you no longer see it."));
    const when = new Date(n.created_at);
    const meta = element("span", { class: "meta" },
      element("time", { datetime: n.created_at }, when.toLocaleString()), unread ? " · unread" : " · read");
    const actions = element("span", { class: "actions" });
    if (unread) {
      actions.append(element("button", {
        type: "button", "aria-label": `Mark read: ${who} ${verb}`,
        onclick: (e) => markRead([n.id], e.currentTarget),
      }, "Mark read"));
    }
    return element("li", { "data-id": String(n.id), "data-unread": String(unread), "data-kind": n.kind },
      what, excerpt, meta, actions);
  }

  function put(n) {
    const merged = { ...notifications.get(n.id), ...n };
    notifications.set(n.id, merged);
    const node = item(merged);
    const existing = list.querySelector(`li[data-id="${n.id}"]`);
    if (existing) return existing.replaceWith(node);
    list.querySelector(":scope > .empty")?.remove();
    const before = [...list.children].find((li) => Number(li.dataset.id) < n.id) ?? null;
    list.insertBefore(node, before);
  }

  function showEmpty() {
    if (!notifications.size) list.replaceChildren(element("li", { class: "empty" }, "No notifications yet."));
  }

  function applyRead({ ids, unread }) {
    const now = new Date().toISOString();
    for (const id of ids) {
      const n = notifications.get(id);
      if (n && n.read_at === null) put({ ...n, read_at: now });
    }
    setUnread(unread);
  }

  async function markRead(ids, button) {
    if (button) button.disabled = true;
    showError("");
    try {
      applyRead(await rest("POST", "/api/comments/notifications/read/", { ids }));
    } catch (failure) {
      showError(`Marking read failed: ${describeError(failure)}`);
      if (button) button.disabled = false;
    }
  }

  markAll.addEventListener("click", async () => {
    markAll.disabled = true;
    showError("");
    try {
      applyRead(await rest("POST", "/api/comments/notifications/read-all/"));
    } catch (failure) {
      showError(`Marking all read failed: ${describeError(failure)}`);
      markAll.disabled = false;
    }
  });

  async function fetchPage(limit, offset) {
    const page = await rest("GET", `/api/comments/notifications/?limit=${limit}&offset=${offset}`);
    for (const n of page.results) put(n);
    setUnread(page.unread);
    return page;
  }

  loadMore.addEventListener("click", async () => {
    loadMore.disabled = true;
    showError("");
    try {
      // The loaded ones are the newest, so the next page starts after as many.
      more = (await fetchPage(pageSize, notifications.size)).next !== null;
    } catch (failure) {
      showError(`Loading older notifications failed: ${describeError(failure)}`);
    } finally {
      loadMore.disabled = false;
      loadMore.hidden = !more;
    }
  });

  // --- live ---------------------------------------------------------------------------------
  const newest = () => (notifications.size ? Math.max(...notifications.keys()) : undefined);
  const client = new RealtimeClient("/ws/comments/notifications/", { resume: () => ({ since: newest() }) });
  client.on("comments.notifications.snapshot", (f) => {
    for (const n of f.data.notifications) put(n);
    setUnread(f.data.unread);
    if (client.connections > 1) {
      // Back after a drop: what was read meanwhile (in another tab) shows as read again.
      fetchPage(Math.min(Math.max(notifications.size, 1), MAX_REFRESHED), 0).catch((failure) =>
        showError(`Refreshing failed: ${describeError(failure)}`));
    }
    root.dataset.live = "true";
  });
  client.on("comments.notification.created", (f) => {
    put(f.data.notification);
    setUnread(f.data.unread);
  });
  client.on("comments.notifications.read", (f) => applyRead(f.data));
  client.onState((state) => {
    badge.textContent = state;
    badge.dataset.state = state;
    if (state !== "open") delete root.dataset.live;
  });
  client.trackActivity();

  for (const n of initial.notifications) put(n);
  showEmpty();
  setUnread(initial.unread);
  loadMore.hidden = !more;
  client.start();
  return { client, notifications };
}
