/* tourpulse board: the /ws/board connection — reconnects by itself, resumes from the last seq, sends commands.
 *
 * States: "idle" (not started or stopped) → "connecting" → "online" → "offline" (waiting to retry) → "connecting"…
 * Backoff after a failure: 0.5 s doubling up to 15 s, each delay drawn in [half, full] (jitter), reset once a
 * connection has delivered a message. A reconnect opens /ws/board?since=<last seq seen>, so the server replays
 * only what the board missed, in order, before the live changes (a fresh snapshot, reset: true, if too old).
 * Commands carry a unique id; their ack / error answers are matched by id (or timed out).
 */
(function () {
  "use strict";
  const TP = (window.TP = window.TP || {});

  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const COMMAND_TIMEOUT_MS = 10000;

  let counter = 0;
  const session = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);

  function newId(prefix) {
    counter += 1;
    return (prefix || "b") + "-" + session + "-" + counter;
  }

  /* opts: url() → string; since() → last seq or null; onMessage(msg); onState(state); onCommandDone(cmd, answer) */
  function BoardConnection(opts) {
    this.opts = opts;
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.retryAt = null;
    this.retryTimer = null;
    this.pending = new Map();
    this.subscribeId = null;
    this.openedOnce = false;
    this.failuresSinceOpen = 0;
  }

  BoardConnection.prototype.setState = function (state) {
    if (this.state === state) return;
    this.state = state;
    this.opts.onState(state);
  };

  BoardConnection.prototype.start = function () {
    if (this.state !== "idle") return;
    this.connect();
  };

  BoardConnection.prototype.stop = function () {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000, "board closed"); } catch (_) { /* already closed */ }
    }
    this.failPending("offline");
    this.setState("idle");
  };

  /* Close the socket as if the network dropped it; the usual reconnect follows. */
  BoardConnection.prototype.drop = function () {
    if (this.ws) {
      try { this.ws.close(4000, "dropped by client"); } catch (_) { /* ignore */ }
      this.onClosed(this.ws);
    }
  };

  /* Skip the wait: try now (the network came back, the page became visible). */
  BoardConnection.prototype.retryNow = function () {
    if (this.state !== "offline") return;
    clearTimeout(this.retryTimer);
    this.connect();
  };

  BoardConnection.prototype.connect = function () {
    this.retryTimer = null;
    this.retryAt = null;
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.opts.url());
    } catch (_) {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    const self = this;
    ws.onopen = function () {
      if (self.ws !== ws) return;
      self.openedOnce = true;
      self.failuresSinceOpen = 0;
      self.setState("online");
      // a reconnect asked for ?since=<last seq> in its URL: the server replays only what was missed
      // (or sends a fresh snapshot with reset: true when that seq is too old), so there is no snapshot to wait for
      if (self.opts.since() && self.opts.onResumed) self.opts.onResumed();
    };
    ws.onmessage = function (event) {
      if (self.ws !== ws) return;
      self.attempt = 0;
      if (typeof event.data !== "string") return; // the board speaks JSON text frames only
      let msg;
      try { msg = JSON.parse(event.data); } catch (_) { return; }
      if (!msg || typeof msg !== "object") return;
      self.route(msg);
    };
    ws.onclose = function () { self.onClosed(ws); };
    ws.onerror = function () { /* a close event always follows */ };
  };

  BoardConnection.prototype.onClosed = function (ws) {
    if (this.ws !== ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this.ws = null;
    this.failuresSinceOpen += 1;
    this.failPending("offline");
    this.scheduleRetry();
  };

  BoardConnection.prototype.scheduleRetry = function () {
    const full = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, this.attempt));
    const delay = Math.max(BACKOFF_MIN_MS, full / 2 + Math.random() * full / 2);
    this.attempt = Math.min(this.attempt + 1, 16);
    this.retryAt = Date.now() + delay;
    this.setState("offline");
    const self = this;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(function () { self.connect(); }, delay);
    if (this.opts.onRetry) this.opts.onRetry(this.failuresSinceOpen);
  };

  BoardConnection.prototype.route = function (msg) {
    if ((msg.type === "ack" || msg.type === "error") && msg.id !== undefined && msg.id !== null) {
      if (msg.id === this.subscribeId) {
        this.subscribeId = null;
        if (msg.type === "error" && this.opts.onSubscribeError) this.opts.onSubscribeError(msg);
        return;
      }
      const cmd = this.pending.get(msg.id);
      if (cmd) {
        this.pending.delete(msg.id);
        clearTimeout(cmd.timer);
        this.opts.onCommandDone(cmd, msg);
        return;
      }
    }
    this.opts.onMessage(msg);
  };

  BoardConnection.prototype.sendRaw = function (obj) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    try {
      this.ws.send(JSON.stringify(obj));
      return true;
    } catch (_) {
      return false;
    }
  };

  /* Send a command; false when offline (nothing sent). cmd: {type, alert_id, …, context} */
  BoardConnection.prototype.command = function (cmd) {
    const id = newId("cmd");
    const frame = Object.assign({}, cmd.frame, { id: id });
    if (!this.sendRaw(frame)) return false;
    const self = this;
    const entry = Object.assign({}, cmd, { id: id });
    entry.timer = setTimeout(function () {
      if (!self.pending.has(id)) return;
      self.pending.delete(id);
      self.opts.onCommandDone(entry, { type: "timeout", id: id });
    }, COMMAND_TIMEOUT_MS);
    this.pending.set(id, entry);
    return true;
  };

  BoardConnection.prototype.failPending = function (why) {
    const self = this;
    this.pending.forEach(function (entry) {
      clearTimeout(entry.timer);
      self.opts.onCommandDone(entry, { type: why, id: entry.id });
    });
    this.pending.clear();
    this.subscribeId = null;
  };

  TP.BoardConnection = BoardConnection;
  TP.newId = newId;
})();
