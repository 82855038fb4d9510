// The comments panel of a page: a target's threads, one thread open with its comments, replies,
// reactions and who is typing, and the notifications bell. Plain ES module on the browser client.
//
//   import { mountCommentsPanel } from "/static/comments/panel.js";
//   mountCommentsPanel(document.getElementById("comments"), { targetKind: "document", targetId: 7 });
//
// New threads arrive live through the notifications socket (it watches the target); an open
// thread has a socket of its own, resumed with `since` after a drop.

import { RealtimeClient } from "../realtime/client.js";
import { element, rest } from "../realtime/page.js";

const REACTIONS = { like: "👍", love: "❤️", laugh: "😄", wow: "😮", sad: "😢", angry: "😠" };
const TYPING_EVERY_SECONDS = 2;

export function mountCommentsPanel(root, { targetKind, targetId }) {
  const threads = new Map();
  let open = null; // {id, client, comments: Map, typing: Map}
  const list = element("ul", { class: "plain", "aria-label": "Threads" });
  const view = element("div", { class: "thread", "aria-live": "polite" });
  const bell = element("span", { class: "bell", role: "status", "aria-label": "Unread notifications" }, "🔔 0");
  const newBody = element("textarea", { id: "new-thread", rows: "2", "aria-label": "New comment" });
  const newButton = element("button", { type: "button", onclick: startThread }, "Comment");
  // The bell opens the notifications page; the count itself stays a status others can read.
  const bellLink = element("a", {
    href: "/notifications/", class: "bell-link", title: "Your notifications", "aria-label": "Your notifications",
  }, bell);
  root.replaceChildren(element("h2", {}, "Comments ", bellLink), newBody, newButton, list, view);

  const notifications = new RealtimeClient("/ws/comments/notifications/");
  notifications.on("comments.notifications.snapshot", (f) => (bell.textContent = `🔔 ${f.data.unread}`));
  notifications.on("comments.notification.created", (f) => (bell.textContent = `🔔 ${f.data.unread}`));
  notifications.on("comments.thread.created", (f) => addThread(f.data.thread));
  notifications.onState((state) => {
    if (state === "open") {
      notifications
        .command("comments.target.watch", { target_kind: targetKind, target_id: targetId })
        .then(() => (root.dataset.watching = "true")); // new threads of the target now come live
    } else delete root.dataset.watching;
  });
  notifications.start();
  rest("GET", `/api/comments/threads/?target_kind=${targetKind}&target_id=${targetId}`).then((page) => {
    for (const thread of page.results ?? page) addThread(thread);
  });

  function addThread(thread) {
    if (threads.has(thread.id)) return;
    threads.set(thread.id, thread);
    const label = `Thread by ${thread.created_by?.username ?? "someone"}${thread.resolved ? " (resolved)" : ""}`;
    list.append(element("li", {}, element("button", { type: "button", onclick: () => openThread(thread.id) }, label)));
  }

  async function startThread() {
    const body = newBody.value.trim();
    if (!body) return;
    const made = await rest("POST", "/api/comments/threads/", {
      target_kind: targetKind, target_id: targetId, body, client_msg_id: crypto.randomUUID(),
    });
    newBody.value = "";
    addThread(made.thread);
    openThread(made.thread.id);
  }

  function openThread(id) {
    if (open) open.client.close();
    const stream = `comments.thread.${id}`;
    const client = new RealtimeClient(`/ws/comments/threads/${id}/`, {
      resume: (last) => ({ since: last[stream] }),
    });
    open = { id, client, comments: new Map(), typing: new Map() };
    const state = open;
    const render = () => renderThread(state);
    client.on("comments.thread.snapshot", (f) => {
      for (const c of f.data.comments) state.comments.set(c.id, c);
      render();
    });
    for (const type of ["created", "edited", "deleted", "hidden", "restored"]) {
      client.on(`comments.comment.${type}`, (f) => { state.comments.set(f.data.comment.id, f.data.comment); render(); });
    }
    for (const type of ["added", "removed"]) {
      client.on(`comments.reaction.${type}`, (f) => {
        const comment = state.comments.get(f.data.comment_id);
        if (comment) comment.reactions = f.data.reactions;
        render();
      });
    }
    client.on("comments.typing.started", (f) => {
      clearTimeout(state.typing.get(f.data.user.username));
      state.typing.set(f.data.user.username, setTimeout(() => {
        state.typing.delete(f.data.user.username);
        render();
      }, f.data.expires_in * 1000));
      render();
    });
    client.on("comments.typing.stopped", (f) => {
      clearTimeout(state.typing.get(f.data.user.username));
      state.typing.delete(f.data.user.username);
      render();
    });
    client.start();
  }

  function renderThread(state) {
    const items = [...state.comments.values()].map((c) => {
      const counts = new Map((c.reactions ?? []).map((r) => [r.kind, r.count]));
      const buttons = Object.entries(REACTIONS).map(([kind, emoji]) =>
        element("button", {
          type: "button",
          "aria-label": `${kind} (${counts.get(kind) ?? 0})`,
          onclick: () => state.client.command("comments.reaction.add", { comment_id: c.id, kind }),
        }, `${emoji} ${counts.get(kind) ?? 0}`),
      );
      return element("li", { "data-comment": String(c.id) },
        element("strong", {}, c.author?.username ?? "someone"), ": ",
        element("span", { class: "body" }, c.deleted ? "(deleted)" : c.body),
        element("div", { class: "reactions" }, ...buttons));
    });
    const typing = [...state.typing.keys()];
    const reply = element("textarea", { rows: "2", "aria-label": "Reply" });
    reply.addEventListener("input", () => state.client.sendThrottled("comments.typing.start", {}, TYPING_EVERY_SECONDS));
    const send = element("button", {
      type: "button",
      onclick: async () => {
        const body = reply.value.trim();
        if (!body) return;
        const first = [...state.comments.values()][0];
        await state.client.command("comments.comment.create", {
          body, client_msg_id: crypto.randomUUID(), parent_id: first?.id ?? null,
        });
        state.client.send("comments.typing.stop", {});
        reply.value = "";
      },
    }, "Reply");
    const focused = document.activeElement?.getAttribute("aria-label") === "Reply";
    const draft = view.querySelector("textarea")?.value ?? "";
    view.replaceChildren(
      element("ul", { class: "plain", "aria-label": "Comments in this thread" }, ...items),
      element("p", { class: "typing", "aria-live": "polite" }, typing.length ? `${typing.join(", ")} typing…` : ""),
      reply, send,
    );
    reply.value = draft; // a re-render keeps what was being written
    if (focused) reply.focus();
  }
}
