// What the pages share besides the realtime client: building DOM nodes, and REST calls with the
// session cookie and Django's CSRF token. Plain ES module; nothing here runs on import, so the
// pages' pure parts that import it still run in Node for their tests.
//
//   import { element, rest, describeError } from "/static/realtime/page.js";
//   const item = element("li", { class: "unread", onclick: open }, "a text child", otherNode);
//   try { await rest("POST", "/api/comments/notifications/read-all/"); }
//   catch (error) { status.textContent = describeError(error); }   // "forbidden: ..."

/** A node with attributes (false/null/undefined left out, true as ""), listeners for "on..."
 * names, and children (nodes or text). */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

export function csrfToken() {
  return document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] ?? "";
}

/** A REST answer that was not 2xx: the API's error code and message (README, "REST API"). */
export class RequestError extends Error {
  constructor(status, error) {
    super(error?.message ?? `The server answered HTTP ${status}.`);
    this.status = status;
    this.code = error?.code ?? `http_${status}`;
    this.error = error ?? {};
  }
}

/** JSON in and out with the session cookie; the data, or a RequestError. */
export async function rest(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON (a proxy's error page, a 204): the status says enough
  }
  if (!response.ok) throw new RequestError(response.status, data?.error);
  return data;
}

/** What a page shows of a failure (a REST RequestError, a socket's CommandError, anything
 * else): the error code and message, never a stack. */
export function describeError(error) {
  if (error?.code) return `${error.code}: ${error.error?.message ?? error.message}`;
  return error?.message ?? String(error);
}
