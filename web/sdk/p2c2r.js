// p2c2r.js: the browser client of P2C2R, an ES module with no build step.
// The same shape as the C library (lib/p2c2r.h, docs/sdk.md): connect,
// submit (a promise per task), cancel, reconnect by itself. It speaks the
// JSON dialect of the client protocol (text frames, shared/PROTOCOL.md).
//
//   import { connect } from "/sdk/p2c2r.js";
//   const client = await connect("ws://127.0.0.1:8765", { apiKey, gamerId });
//   const task = client.submit("ai_pathfinding", { start: [0, 0], goal: [9, 9] });
//   const result = await task;          // rejects with a P2C2RError
//   client.cancel(task);                // or client.cancel(task.id)
//
// A task's promise settles exactly once: with the reply, or with an error
// whose code is the protocol's ("no_peers", "timeout", ...) or one found
// here ("connection_lost", "cancelled", "not_connected", "queue_full",
// "invalid_argument"). Like the C library, a task lost with its
// connection fails with "connection_lost" until the server deduplicates
// client_refs; then RESUBMIT_LOST resends it with the same client_ref.

const RESUBMIT_LOST = false;

const MAX_PARAMS_TEXT = 1024 * 1024;
const MAX_REF = 128;

// The protocol's error codes (shared/PROTOCOL.md) and this module's own
export const CODES = Object.freeze([
  "no_peers", "timeout", "invalid_params", "unknown_task_type", "insufficient_funds",
  "kernel_error", "rejected", "rate_limited", "too_large", "unavailable", "auth_failed",
  "bad_request", "server_error", "connection_lost", "cancelled", "not_connected", "tls",
  "invalid_argument", "queue_full",
]);

export class P2C2RError extends Error {
  constructor(code, message, detail = {}) {
    super(message || code);
    this.name = "P2C2RError";
    this.code = CODES.includes(code) ? code : "server_error";
    this.serverCode = code;          // as the server wrote it
    this.clientRef = detail.clientRef;
    this.taskId = detail.taskId;
  }
}

// "0.000000034700" (the gateway writes cost_usd exactly) -> 34700n picodollars
function usdTextToPico(text) {
  const m = /^(-?)(\d+)(?:\.(\d{1,12}))?/.exec(text);
  if (!m) return null;
  const pico = BigInt(m[2]) * 1000000000000n + BigInt((m[3] || "").padEnd(12, "0"));
  return m[1] ? -pico : pico;
}

// Reconnect delays as the C library's (lib/p2l_conn.c): 0.5 s doubling to
// 30 s, +-25% jitter; 1001 going away: back within a second; 1013 try
// later: at least 5 s; a refused key: about 5 minutes
class Backoff {
  constructor() { this.reset(); }
  reset() { this.base = 500; }
  next() {
    const b = this.base;
    this.base = Math.min(b * 2, 30000);
    return b - b / 4 + Math.random() * (b / 2);
  }
  after(closeCode, reason, authRefused) {
    if (authRefused || (closeCode === 1008 && /api_key|auth/.test(reason || ""))) {
      this.base = 30000;
      return 270000 + Math.random() * 60000;
    }
    if (closeCode === 1001 && this.base <= 500) {
      this.base = 1000;
      return 100 + Math.random() * 900;
    }
    if (closeCode === 1013 && this.base < 5000) this.base = 5000;
    return this.next();
  }
}

export class Client extends EventTarget {
  // url: ws:// or wss://; options: apiKey, gamerId, reconnect (true),
  // maxQueued (10000). Prefer connect() below, which waits for READY.
  constructor(url, options = {}) {
    super();
    if (!/^wss?:\/\//.test(url || "")) throw new P2C2RError("invalid_argument", "url must be ws:// or wss://");
    this.url = url;
    this.apiKey = options.apiKey || "";
    this.gamerId = options.gamerId || `player-web-${Math.random().toString(36).slice(2, 10)}`;
    this.reconnect = options.reconnect !== false;
    this.maxQueued = options.maxQueued || 10000;
    this.state = "connecting";      // connecting, ready, disconnected, closed
    this.stats = { submitted: 0, completed: 0, failed: 0, connects: 0, protocolErrors: 0 };
    this._nextId = 0;
    // A mark of this client in the client_refs it makes: the server keeps
    // an account's refs for 24 h, and ids start again at every page load
    this._run = Array.from(crypto.getRandomValues(new Uint8Array(8)),
                           (b) => b.toString(16).padStart(2, "0")).join("");
    this._queue = [];               // tasks waiting to be sent, oldest first
    this._byRef = new Map();        // client_ref -> task, queued or sent
    this._backoff = new Backoff();
    this._ws = null;
    this._timer = null;
    this._refused = null;           // {code, message} when registration was refused
    this._cron = setInterval(() => this._checkDeadlines(), 100);
    this._open();
  }

  // Queues a task; returns a promise of its result, with .id and .clientRef.
  // params: an object (sent as the task's data). opts: clientRef,
  // deadlineMs, imageB64 (a PNG input, base64).
  submit(type, params = {}, opts = {}) {
    let fail = null;
    const text = JSON.stringify(params ?? {});
    if (typeof type !== "string" || !type || type.length > 64) fail = "type must be a task type name";
    else if (params === null || typeof params !== "object" || Array.isArray(params)) fail = "params must be an object";
    else if (text.length > MAX_PARAMS_TEXT) fail = "params are too large";
    else if (opts.clientRef !== undefined && (typeof opts.clientRef !== "string" || !opts.clientRef || opts.clientRef.length > MAX_REF)) fail = "clientRef must be a string of 1..128 characters";
    else if (opts.clientRef && this._byRef.has(opts.clientRef)) fail = "clientRef is in flight already";
    let error = fail ? new P2C2RError("invalid_argument", fail) : null;
    if (!error && this.state === "closed") error = new P2C2RError("not_connected", "the client is closed");
    if (!error && this._queue.length >= this.maxQueued) error = new P2C2RError("queue_full", "too many tasks wait to be sent");
    if (error) {
      const p = Promise.reject(error);
      p.id = 0;
      return p;
    }
    const id = ++this._nextId;
    const task = {
      id, ref: opts.clientRef || `p2c2r-web-${this._run}-${id}`, type, params: { ...params },
      deadlineMs: opts.deadlineMs || 0, submitted: performance.now(), sent: false, abandoned: false,
    };
    if (opts.imageB64) task.params.image_b64 = opts.imageB64;
    const promise = new Promise((resolve, reject) => { task.resolve = resolve; task.reject = reject; });
    promise.id = id;
    promise.clientRef = task.ref;
    this._queue.push(task);
    this._byRef.set(task.ref, task);
    this.stats.submitted++;
    this._flush();
    return promise;
  }

  // Gives up on a task (its promise, or its id): the promise rejects with
  // "cancelled"; a reply that comes later is dropped. A task already sent
  // may still run and be charged. Returns false when it is not in flight.
  cancel(taskOrId) {
    const id = typeof taskOrId === "number" ? taskOrId : taskOrId && taskOrId.id;
    for (const task of this._byRef.values()) {
      if (task.id !== id || task.abandoned) continue;
      if (task.sent) task.abandoned = true;
      else this._forget(task);
      this._settle(task, new P2C2RError("cancelled", "cancelled by the caller", { clientRef: task.ref }));
      return true;
    }
    return false;
  }

  // Closes for good: tasks not completed reject with "cancelled".
  close() {
    this.reconnect = false;
    clearInterval(this._cron);
    clearTimeout(this._timer);
    for (const task of [...this._byRef.values()]) {
      this._forget(task);
      if (!task.abandoned) this._settle(task, new P2C2RError("cancelled", "the client was closed", { clientRef: task.ref }));
    }
    if (this._ws) this._ws.close(1000);
    this._setState("closed", "cancelled", "closed by the caller");
  }

  // -------------------------------------------------------------------------

  _open() {
    this._refused = null;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this._closed(0, String(e));
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "register_gamer", gamer_id: this.gamerId, ...(this.apiKey ? { api_key: this.apiKey } : {}) }));
    };
    ws.onmessage = (ev) => { if (this._ws === ws) this._message(ev.data); };
    ws.onclose = (ev) => { if (this._ws === ws) { this._ws = null; this._closed(ev.code, ev.reason); } };
  }

  _message(text) {
    if (typeof text !== "string" || text.length > 64 * 1024 * 1024) return;
    let m;
    try { m = JSON.parse(text); } catch { return; }
    if (!m || typeof m !== "object") return;
    if (m.type === "registered") {
      if (this.state === "ready") return;
      this._backoff.reset();
      this.stats.connects++;
      this._setState("ready", null, "");
      this._flush();
    } else if (m.type === "task_result") {
      const task = this._byRef.get(m.client_ref);
      if (!task || !task.sent) { this._protocolError(m.client_ref); return; }
      this._forget(task);
      if (task.abandoned) return;
      if (m.status === "completed") {
        const usd = /"cost_usd":(-?[0-9.]+)}$/.exec(text);
        this._settle(task, null, {
          taskId: m.task_id, clientRef: task.ref, result: m.result || {},
          imageB64: m.result && m.result.image_b64, cached: !!m.cached,
          processingTimeMs: m.processing_time_ms, costUsd: usd ? Number(usd[1]) : 0,
          costPico: usd ? usdTextToPico(usd[1]) : 0n,
          latencyMs: performance.now() - task.submitted,
        });
      } else {
        this._settle(task, new P2C2RError(m.code || "server_error", m.error, { clientRef: task.ref, taskId: m.task_id }));
      }
    } else if (m.type === "error") {
      if (this.state !== "ready") {
        // The registration was refused: the close that follows says why
        this._refused = { code: m.code, message: m.error };
        if (this._ws) this._ws.close(1000);
      } else if (m.client_ref) {
        const task = this._byRef.get(m.client_ref);
        if (!task || !task.sent) { this._protocolError(m.client_ref); return; }
        this._forget(task);
        if (!task.abandoned) this._settle(task, new P2C2RError(m.code, m.error, { clientRef: task.ref }));
      }
    }
  }

  _closed(code, reason) {
    if (this.state === "closed") return;
    const refused = this._refused;
    const why = refused ? `registration refused: ${refused.message} (${refused.code})`
      : `connection closed${code ? ` ${code}` : ""}${reason ? ` ${reason}` : ""}`;
    const errCode = refused ? refused.code : this.state === "ready" ? "connection_lost" : "not_connected";
    const auth = !!refused && refused.code === "auth_failed";
    if (this.reconnect) {
      const delay = this._backoff.after(code, reason, auth);
      this._timer = setTimeout(() => { this._setState("connecting", null, ""); this._open(); }, delay);
      this._setState("disconnected", errCode, why);
    } else {
      clearInterval(this._cron);
      this._setState("closed", errCode, why);
    }
    // Sent tasks: lost with the connection (or resent, see RESUBMIT_LOST)
    const sent = [...this._byRef.values()].filter((t) => t.sent);
    for (const task of sent.reverse()) {
      if (RESUBMIT_LOST && !task.abandoned) {
        task.sent = false;
        this._queue.unshift(task);
        continue;
      }
      this._forget(task);
      if (!task.abandoned) this._settle(task, new P2C2RError("connection_lost", "the connection closed before the reply; the task may have run, and its result cannot be collected yet", { clientRef: task.ref }));
    }
    if (!this.reconnect || auth)
      for (const task of [...this._queue]) {
        this._forget(task);
        this._settle(task, new P2C2RError(errCode, why, { clientRef: task.ref }));
      }
  }

  _flush() {
    while (this.state === "ready" && this._queue.length && this._ws && this._ws.readyState === 1) {
      const task = this._queue.shift();
      const msg = { type: "submit_task", task: { type: task.type, data: task.params }, client_ref: task.ref };
      if (task.deadlineMs) msg.deadline_ms = task.deadlineMs;
      this._ws.send(JSON.stringify(msg));
      task.sent = true;
    }
  }

  _checkDeadlines() {
    const now = performance.now();
    for (const task of [...this._queue])
      if (task.deadlineMs && now - task.submitted > task.deadlineMs) {
        this._forget(task);
        this._settle(task, new P2C2RError("timeout", "the deadline passed before the task could be sent", { clientRef: task.ref }));
      }
  }

  _forget(task) {
    this._byRef.delete(task.ref);
    const i = this._queue.indexOf(task);
    if (i >= 0) this._queue.splice(i, 1);
  }

  _settle(task, error, result) {
    this.stats.completed++;
    if (error) {
      this.stats.failed++;
      task.reject(error);
    } else {
      task.resolve(result);
    }
  }

  _protocolError(ref) {
    this.stats.protocolErrors++;
    console.warn(`p2c2r: reply for no task in flight client_ref=${String(ref).slice(0, 40)}`);
  }

  _setState(state, code, why) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, code, why } }));
  }
}

// Creates a client and resolves once it is registered; rejects with a
// P2C2RError if the first attempt is refused (auth_failed, ...) or, without
// reconnect, cannot reach the server.
export function connect(url, options = {}) {
  return new Promise((resolve, reject) => {
    let client;
    try {
      client = new Client(url, options);
    } catch (e) {
      reject(e);
      return;
    }
    const onState = (ev) => {
      const { state, code, why } = ev.detail;
      if (state === "ready") {
        client.removeEventListener("state", onState);
        resolve(client);
      } else if (state === "closed" || (state === "disconnected" && code !== "not_connected")) {
        client.removeEventListener("state", onState);
        if (state !== "closed") client.close();
        reject(new P2C2RError(code || "not_connected", why));
      }
    };
    client.addEventListener("state", onState);
  });
}
