/* The phone's link to the server: one WebSocket, the outbox drained through it in order, pushes resumed by seq.
 *
 * - Every message is in the outbox (IndexedDB) before it is sent, and leaves it only on its ack (a duplicate ack
 *   counts: the server already has it). A permanent error (invalid, forbidden, ...) also removes it, and says so.
 * - The `offline` event closes the socket (an emulated or real loss of signal may leave it half-open); `online`
 *   reconnects at once; any other loss reconnects after a backoff with full jitter, capped at 10 s.
 * - Pushes carry a seq; the last one seen is kept, and a reconnect asks for what came after it (?since=). */
import * as outbox from "./store.js";

const WINDOW = 16;        // messages in flight at once (the server answers them in order)
const CAP_MS = 10000;
const BASE_MS = 500;
const RETRY = new Set(["rate_limited", "unavailable"]);
const SEQ_KEY = "tp.seq";

export class Link {
  constructor({ role, token, sub, onPush, onAck, onFail, onState, onCount, onRefused }) {
    Object.assign(this, { role, token, sub, onPush, onAck, onFail, onState, onCount, onRefused });
    this.ws = null;
    this.attempt = 0;
    this.timer = 0;
    this.inflight = new Map(); // id -> outbox entry
    this.pausedUntil = 0;
    this.draining = false;
    this.again = false;
    this.opened = false;
  }

  start() {
    addEventListener("offline", () => { this.close(); this.state("offline"); });
    addEventListener("online", () => { clearTimeout(this.timer); this.attempt = 0; this.connect(); });
    this.count();
    if (navigator.onLine) this.connect(); else this.state("offline");
  }

  state(name) { this.onState && this.onState(name); }

  close() {
    clearTimeout(this.timer);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.onclose = null; ws.close(); }
    this.inflight.clear();
  }

  connect() {
    this.close();
    if (!navigator.onLine) { this.state("offline"); return; }
    this.state("connecting");
    const since = localStorage.getItem(SEQ_KEY) || `${Date.now() - 86400000}-0`; // first visit: the last day
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${proto}//${location.host}/ws/${this.role}?token=${encodeURIComponent(this.token)}&since=${since}`;
    const ws = (this.ws = new WebSocket(url));
    this.opened = false;
    ws.onopen = () => { this.opened = true; this.attempt = 0; this.state("online"); this.drain(); };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.inflight.clear();
      this.state(navigator.onLine ? "connecting" : "offline");
      if (!this.opened && this.onRefused) this.onRefused(); // refused handshake: maybe an expired token
      this.retry();
    };
  }

  retry() {
    if (!navigator.onLine) return;
    const delay = Math.random() * Math.min(CAP_MS, BASE_MS * 2 ** this.attempt++);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  async send(msg, ref) {
    await outbox.add({ msg, sub: this.sub, ref: ref || null });
    this.count();
    this.drain();
  }

  async count() { this.onCount && this.onCount((await outbox.all(this.sub)).length); }

  /* send what waits, oldest first, up to WINDOW in flight; an update waiting for its incident's id holds the line */
  async drain() {
    if (this.draining) { this.again = true; return; }
    this.draining = true;
    try {
      do {
        this.again = false;
        const ws = this.ws;
        if (!ws || ws.readyState !== WebSocket.OPEN || Date.now() < this.pausedUntil) break;
        for (const entry of await outbox.all(this.sub)) {
          if (this.inflight.has(entry.msg.id)) continue;
          if (this.inflight.size >= WINDOW) break;
          if (entry.ref && !entry.msg.incident_id) {
            const known = JSON.parse(localStorage.getItem("tp.incidentIds") || "{}")[entry.ref];
            if (!known) break;
            entry.msg.incident_id = known;
            await outbox.put(entry);
          }
          if (ws !== this.ws || ws.readyState !== WebSocket.OPEN) break;
          this.inflight.set(entry.msg.id, entry);
          ws.send(JSON.stringify(entry.msg));
        }
      } while (this.again);
    } finally {
      this.draining = false;
    }
  }

  async receive(data) {
    let frame;
    try { frame = JSON.parse(data); } catch (e) { return; }
    if (frame.type === "ack" || frame.type === "error") {
      const entry = this.inflight.get(frame.id);
      if (!entry) return;
      this.inflight.delete(frame.id);
      if (frame.type === "error" && RETRY.has(frame.code)) {
        this.pausedUntil = Date.now() + 1000 + Math.random() * 1000;
        this.onFail && this.onFail(entry, frame, true);
        setTimeout(() => this.drain(), 2100);
        return;
      }
      await outbox.remove(entry.n);
      this.count();
      if (frame.type === "ack") this.onAck && this.onAck(entry, frame);
      else this.onFail && this.onFail(entry, frame, false);
      this.drain();
      return;
    }
    if (frame.seq) localStorage.setItem(SEQ_KEY, frame.seq);
    this.onPush && this.onPush(frame);
  }
}
