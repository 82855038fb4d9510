// The browser client of the realtime backend: plain ES modules, no build step.
//
//   import { RealtimeClient, DocumentSession } from "/static/realtime/client.js";
//   const client = new RealtimeClient("/ws/collab/documents/7/");   // the session cookie
//   client.onState((state) => badge.textContent = state);          // connecting/open/offline/closed
//   client.start();
//   const doc = new DocumentSession(client, { clientId: crypto.randomUUID() });
//   doc.onChange(() => (textarea.value = doc.text));
//   doc.edit([3, "hi"]);                                             // ops in code points
//
// What it does, as the Python client (config/client) does:
// - reconnects after any drop with exponential backoff and full jitter (0.5 s base, 30 s cap)
//   behind a circuit breaker (open 30 s after 5 failed attempts in a row), asking `ticket()`
//   (when given) for a new ticket each time; stops for good only on 4403 and 4404;
// - commands are promises with timeouts; those made offline, or left unanswered by a drop, are
//   sent once the socket is back (their idempotency keys make a replay safe);
// - events with a stream and seq arrive once and in order; `resume(lastSeq)` gives the query of
//   the next connection (`since`);
// - heartbeats at the welcome's interval say whether the user gave input since the last one
//   (`trackActivity()` listens for it), which is how presence tells active from idle;
// - `sendThrottled` sends signals such as typing at most once per interval.

import * as ot from "./ot.js";

export const BASE_SECONDS = 0.5;
export const CAP_SECONDS = 30;
const TERMINAL_CLOSE_CODES = new Set([4403, 4404]);

/** Seconds to wait after `failures` failures in a row: full jitter, capped. */
export function backoffDelay(failures, random, base = BASE_SECONDS, cap = CAP_SECONDS) {
  return random * Math.min(cap, base * 2 ** Math.min(failures, 64));
}

export class Breaker {
  constructor({ threshold = 5, cooldown = 30 } = {}) {
    this.threshold = threshold;
    this.cooldown = cooldown;
    this.failures = 0;
    this.openUntil = null; // seconds, as `now` is given
  }

  state(now) {
    if (this.openUntil === null) return "closed";
    return now < this.openUntil ? "open" : "half_open";
  }

  allows(now) {
    return this.state(now) !== "open";
  }

  // random in [0, 1]: open for 0.5 to 1.5 times the cooldown, so that clients that failed
  // together do not all come back together when it closes (RELIABILITY F11).
  failed(now, random = 0.5) {
    this.failures += 1;
    if (this.state(now) === "half_open" || this.failures >= this.threshold) {
      this.openUntil = now + this.cooldown * (0.5 + random);
    }
  }

  succeeded() {
    this.failures = 0;
    this.openUntil = null;
  }
}

export class CommandError extends Error {
  constructor(error) {
    super(`${error.code}: ${error.message}`);
    this.code = error.code;
    this.error = error;
  }
}

const seconds = () => performance.now() / 1000;

function absoluteUrl(path) {
  if (/^wss?:/.test(path)) return new URL(path);
  const here = new URL(globalThis.location.href);
  here.protocol = here.protocol === "https:" ? "wss:" : "ws:";
  return new URL(path, here);
}

export class RealtimeClient {
  constructor(url, options = {}) {
    this.url = url;
    this.ticket = options.ticket ?? null; // async () => ticket, or null for the session cookie
    this.resume = options.resume ?? null; // (lastSeq) => ({since: ...})
    this.socketFactory = options.socketFactory ?? ((u) => new WebSocket(u));
    this.breaker = options.breaker ?? new Breaker();
    this.backoff = { base: options.backoffBase ?? BASE_SECONDS, cap: options.backoffCap ?? CAP_SECONDS };
    this.openTimeout = options.openTimeout ?? 10;
    this.state = "closed";
    this.welcome = null;
    this.closeCode = null;
    this.lastSeq = {};
    this.connections = 0;
    this._ws = null;
    this._pending = new Map(); // id -> {frame, resolve, reject}
    this._nextId = 1;
    this._handlers = new Map();
    this._stateHandlers = [];
    this._closing = false;
    this._running = null;
    this._lastInput = 0;
    this._lastBeat = seconds();
    this._lastSent = new Map();
    this._wake = null; // ends the current wait between attempts early
    this._endServe = null; // ends the open socket's service (its close, or a drop)
    // The browser says the network is back: try at once rather than after the backoff (or an
    // open breaker's cooldown) that the failures while offline ran up.
    globalThis.addEventListener?.("online", () => {
      this.breaker.succeeded();
      this._failures = 0;
      this._wake?.();
    });
    // It says the network is gone: the socket is as good as dead (a closing handshake could not
    // complete, and a half-open socket may look open for minutes), so drop it now; no attempts
    // are made until "online".
    globalThis.addEventListener?.("offline", () => this.drop());
  }

  on(type, handler) {
    if (!this._handlers.has(type)) this._handlers.set(type, []);
    this._handlers.get(type).push(handler);
  }

  onState(handler) {
    this._stateHandlers.push(handler);
  }

  start() {
    if (this._running === null) {
      this._closing = false;
      this._running = this._run().finally(() => (this._running = null));
    }
  }

  waitOpen(timeoutSeconds = 10) {
    if (this.state === "open") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("not open in time")), timeoutSeconds * 1000);
      this.onState((state) => {
        if (state === "open") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  close() {
    this._closing = true;
    if (this._ws) this._ws.close(1000);
    this._failPending(new Error("the client was closed"));
    this._setState("closed");
  }

  /** Give the socket up as a network failure would: at once, without waiting for the closing
   * handshake (which may never finish offline); the client then reconnects. */
  drop() {
    this._endServe?.(4000);
  }

  /**
   * Send a command; a promise of its ack's data (CommandError for an error frame). `onReply(frame)`
   * runs as the reply is read, before any frame after it: a promise's callbacks may run only after
   * later frames of the same read were handled (Node dispatches them in one go), so state that
   * must change in order with the stream (an OT client's ack) changes there.
   */
  command(type, data = {}, { timeout = 10, onReply = null } = {}) {
    if (this._closing) return Promise.reject(new Error("the client is closed"));
    const id = `c${this._nextId++}`;
    const frame = JSON.stringify({ id, type, data });
    return new Promise((resolve, reject) => {
      const timer =
        timeout === null
          ? null
          : setTimeout(() => {
              this._pending.delete(id);
              reject(new Error(`no reply to ${type} in ${timeout} s`));
            }, timeout * 1000);
      this._pending.set(id, {
        frame,
        onReply,
        resolve: (reply) => {
          clearTimeout(timer);
          if (reply.type === "error") reject(new CommandError(reply.error ?? {}));
          else resolve(reply.data ?? {});
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      if (this.state === "open") this._send(frame);
    });
  }

  send(type, data = {}) {
    if (this.state !== "open") return false;
    return this._send(JSON.stringify({ type, data }));
  }

  sendThrottled(type, data, everySeconds) {
    const now = seconds();
    if (now - (this._lastSent.get(type) ?? -Infinity) < everySeconds) return false;
    const sent = this.send(type, data);
    if (sent) this._lastSent.set(type, now);
    return sent;
  }

  markInput() {
    this._lastInput = seconds();
  }

  /** Count keys, clicks and pointer moves on `target` as the user's input (for presence). */
  trackActivity(target = globalThis.document) {
    const mark = () => this.markInput();
    for (const name of ["keydown", "pointerdown", "pointermove", "wheel", "touchstart"]) {
      target.addEventListener(name, mark, { passive: true });
    }
  }

  // --- the connection loop -------------------------------------------------------------------
  _pause(seconds) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, seconds * 1000);
      this._wake = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => (this._wake = null));
  }

  async _run() {
    this._failures = 0;
    while (!this._closing) {
      const now = seconds();
      if (!this.breaker.allows(now)) {
        this._setState("offline");
        await this._pause(this.breaker.openUntil - now);
        continue;
      }
      if (globalThis.navigator?.onLine === false) {
        this._setState("offline");
        await this._pause(60); // the "online" event ends it; the minute is in case none comes
        continue;
      }
      this._setState("connecting");
      let ws;
      try {
        ws = await this._open();
      } catch (error) {
        if (TERMINAL_CLOSE_CODES.has(error.closeCode)) return this._stop(error.closeCode);
        this.breaker.failed(seconds(), Math.random());
        this._setState("offline");
        const failures = this._failures;
        this._failures += 1;
        await this._pause(backoffDelay(failures, Math.random(), this.backoff.base, this.backoff.cap));
        continue;
      }
      this._failures = 0;
      this.breaker.succeeded();
      await this._serve(ws);
      if (TERMINAL_CLOSE_CODES.has(this.closeCode)) return this._stop(this.closeCode);
      if (!this._closing) {
        this._setState("offline");
        await this._pause(backoffDelay(0, Math.random(), this.backoff.base, this.backoff.cap));
      }
    }
  }

  _stop(code) {
    this.closeCode = code; // also when the socket was refused before its welcome
    this._closing = true;
    this._failPending(new Error(`the server closed the socket for good (${code})`));
    this._setState("closed");
  }

  async _connectUrl() {
    const url = absoluteUrl(this.url);
    const query = this.resume ? this.resume({ ...this.lastSeq }) : {};
    if (this.ticket) query.ticket = await this.ticket();
    for (const [key, value] of Object.entries(query)) {
      if (value !== null && value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  async _open() {
    const ws = this.socketFactory(await this._connectUrl());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error("no welcome in time"));
      }, this.openTimeout * 1000);
      ws.onmessage = (message) => {
        clearTimeout(timer);
        const first = JSON.parse(message.data);
        if (first.type !== "session.welcome") {
          ws.close();
          reject(new Error(`the first frame was ${first.type}`));
          return;
        }
        this.welcome = first.data;
        resolve(ws);
      };
      ws.onclose = (event) => {
        clearTimeout(timer);
        reject(Object.assign(new Error(`closed before the welcome (${event.code})`), { closeCode: event.code }));
      };
      ws.onerror = () => {}; // onclose follows and decides
    });
  }

  _serve(ws) {
    return new Promise((resolve) => {
      this._ws = ws;
      this.connections += 1;
      this.closeCode = null;
      this._setState("open");
      const interval = (this.welcome?.heartbeat_interval ?? 15) * 1000;
      const beat = setInterval(() => {
        const active = this._lastInput > this._lastBeat;
        this._lastBeat = seconds();
        this.send("session.heartbeat", { active });
      }, interval);
      ws.onmessage = (message) => this._dispatch(message.data);
      this._endServe = (code) => {
        clearInterval(beat);
        this._ws = this._endServe = null;
        this.closeCode = code;
        ws.onmessage = ws.onclose = null; // a dropped socket's late frames and close are ignored
        if (code === 4000) ws.close(4000, "dropped by the client");
        resolve();
      };
      ws.onclose = (event) => this._endServe(event.code);
      for (const { frame } of this._pending.values()) this._send(frame); // queued or unanswered
    });
  }

  _send(frame) {
    if (!this._ws || this._ws.readyState !== 1) return false;
    this._ws.send(frame);
    return true;
  }

  _dispatch(raw) {
    const frame = JSON.parse(raw);
    if (frame.type === "ack" || frame.type === "error") {
      const pending = this._pending.get(frame.id);
      if (pending) {
        this._pending.delete(frame.id);
        try {
          pending.onReply?.(frame);
        } catch (error) {
          console.error("a command's onReply failed", error);
        }
        pending.resolve(frame);
      }
      return;
    }
    const { stream, seq } = frame;
    if (typeof stream === "string" && Number.isInteger(seq)) {
      const last = this.lastSeq[stream];
      if (last !== undefined && seq <= last) return; // had it already
      this.lastSeq[stream] = seq;
    }
    for (const handler of [...(this._handlers.get(frame.type) ?? []), ...(this._handlers.get("*") ?? [])]) {
      try {
        handler(frame);
      } catch (error) {
        console.error("a realtime handler failed", error);
      }
    }
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    for (const handler of this._stateHandlers) handler(state);
  }

  _failPending(error) {
    for (const pending of this._pending.values()) pending.reject(error);
    this._pending.clear();
  }
}

// --- collaborative documents ---------------------------------------------------------------------

/** The OT client state machine, as collab/otclient.py: one op in flight, the rest buffered. */
export class Editor {
  constructor(clientId, text, version) {
    Object.assign(this, { clientId, text, version, seq: 0, inflight: null, inflightSeq: 0, buffer: null });
  }

  get settled() {
    return this.inflight === null && this.buffer === null;
  }

  edit(op) {
    this.text = ot.apply(this.text, op);
    if (this.inflight === null) return this._send(op);
    this.buffer = this.buffer === null ? op : ot.compose(this.buffer, op);
    return null;
  }

  ack(version, seq) {
    if (this.inflight === null || seq !== this.inflightSeq) return null;
    this.version = version;
    this.inflight = null;
    const buffered = this.buffer;
    this.buffer = null;
    return buffered === null ? null : this._send(buffered);
  }

  remote(op, version, clientId, seq) {
    if (version <= this.version) return null;
    if (this.inflight !== null && clientId === this.clientId && seq === this.inflightSeq) {
      return this.ack(version, seq);
    }
    if (this.inflight !== null) {
      [this.inflight, op] = [ot.transform(this.inflight, op, "left"), ot.transform(op, this.inflight, "right")];
    }
    if (this.buffer !== null) {
      [this.buffer, op] = [ot.transform(this.buffer, op, "left"), ot.transform(op, this.buffer, "right")];
    }
    this.text = ot.apply(this.text, op);
    this.version = version;
    return null;
  }

  _send(op) {
    this.seq += 1;
    this.inflight = op;
    this.inflightSeq = this.seq;
    return { version: this.version, op, client_id: this.clientId, seq: this.seq };
  }
}

/** The op that turns `before` into `after` (one changed span), in code points: for textareas. */
export function diffToOp(before, after) {
  const a = Array.from(before);
  const b = Array.from(after);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end += 1;
  const op = [];
  if (start) op.push(start);
  if (a.length - start - end) op.push(-(a.length - start - end));
  const inserted = b.slice(start, b.length - end).join("");
  if (inserted) op.push(inserted);
  return ot.normalize(op);
}

/** A document edited together: the client's socket driving the Editor. */
export class DocumentSession {
  constructor(client, { clientId, submitTimeout = 300 } = {}) {
    this.client = client;
    this.clientId = clientId;
    this.submitTimeout = submitTimeout;
    this.editor = null;
    this.errors = [];
    this._changeHandlers = [];
    this._inflightSubmits = 0;
    client.resume = () => (this.editor ? { since: this.editor.version } : {});
    client.on("collab.document.snapshot", (frame) => this._snapshot(frame.data));
    client.on("collab.op.applied", (frame) => this._applied(frame.data));
  }

  get text() {
    return this.editor ? this.editor.text : "";
  }

  get version() {
    return this.editor ? this.editor.version : 0;
  }

  get settled() {
    return this.editor !== null && this.editor.settled && this._inflightSubmits === 0;
  }

  onChange(handler) {
    this._changeHandlers.push(handler);
  }

  edit(op) {
    if (!this.editor) throw new Error("no snapshot yet");
    if (ot.normalize(op).length === 0) return; // nothing changed (an input event with no edit)
    this._submit(this.editor.edit(op));
    this._changed("local");
  }

  _snapshot(data) {
    if (this.editor === null) this.editor = new Editor(this.clientId, data.content, data.version);
    else if (this.editor.settled) Object.assign(this.editor, { text: data.content, version: data.version });
    else this.errors.push(new Error("a snapshot replaced the history while edits were unacked"));
    this._changed("snapshot");
  }

  _applied(data) {
    if (!this.editor) return;
    const before = this.editor.version;
    this._submit(this.editor.remote(data.op, data.version, data.client_id, data.seq));
    if (this.editor.version !== before) this._changed("remote");
  }

  _submit(submit) {
    if (submit === null) return;
    this._inflightSubmits += 1;
    // The ack is taken as it is read (onReply), in order with the ops committed after it.
    const onReply = (reply) => {
      if (reply.type === "ack") this._submit(this.editor.ack(reply.data.version, submit.seq));
    };
    const send = async () => {
      // A retryable answer (rate limited, the server short of Redis or the database) is sent
      // again after its retry_after, or a backoff: the same (client_id, seq), so applied once.
      for (let attempt = 0; ; attempt += 1) {
        try {
          return await this.client.command("collab.op.submit", submit, { timeout: this.submitTimeout, onReply });
        } catch (error) {
          if (!(error instanceof CommandError) || !error.error.retry) throw error;
          const wait = error.error.retry_after ?? backoffDelay(attempt, Math.random(), BASE_SECONDS, CAP_SECONDS);
          await new Promise((resolve) => setTimeout(resolve, wait * 1000));
        }
      }
    };
    send()
      .catch((error) => this.errors.push(error))
      .finally(() => {
        this._inflightSubmits -= 1;
        this._changed("ack");
      });
  }

  _changed(why) {
    for (const handler of this._changeHandlers) handler(why);
  }
}
