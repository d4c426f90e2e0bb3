/* "Are you safe?" (contract §11): a pushed `safety_check` becomes one card at the top of the screen, with the
 * message, the deadline's countdown and two big buttons. The answer (`safety_reply`) goes through the outbox; the
 * card then says it is waiting to be sent or was received. A check arrives again (repeats, a reconnect): it is
 * one check, kept on the phone by `check_id`, and once answered it does not ask again.
 * "I need help" attaches the phone's location when the Geolocation API gives one within LOCATE_MS; otherwise it
 * goes without. Checks are kept until a day after their deadline. */
import { el, clear, load, save, newId, showError } from "./dom.js";
import { t, duration } from "./i18n.js";

const KEY = "tp.checks";
const LOCATE_MS = 8000;  // an emergency answer waits at most this long for a position
const KEEP_MS = 86400000;

function locate() {
  if (!navigator.geolocation) return Promise.resolve(null);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), LOCATE_MS); // a permission prompt nobody answers
    navigator.geolocation.getCurrentPosition(
      (pos) => { clearTimeout(timer); resolve({ lat: +pos.coords.latitude.toFixed(5), lon: +pos.coords.longitude.toFixed(5) }); },
      () => { clearTimeout(timer); resolve(null); },
      { timeout: LOCATE_MS, maximumAge: 120000 });
  });
}

export class SafetyChecks {
  constructor(link) {
    this.link = link;
    const now = Date.now();
    this.checks = load(KEY, []).filter((c) => Array.isArray(c.tours) && Date.parse(c.deadline) + KEEP_MS > now);
    this.node = null;
    this.listeners = [];
    this.notes = {};
  }

  /* a safety_check push: new, or one already known (a repeat, a reconnect) that changes nothing shown */
  add(frame) {
    const known = this.checks.find((c) => c.check_id === frame.check_id);
    if (known && known.tours.includes(frame.tour_id)) return;
    if (known) known.tours.push(frame.tour_id); // a guide of two tours the check went to: one card, both roll-ups
    else {
      this.checks.unshift({ check_id: String(frame.check_id), message: String(frame.message || ""),
                            deadline: String(frame.deadline), tours: [frame.tour_id], status: null, reply: null,
                            delivered: false, located: false, busy: false });
    }
    this.keep();
    if (!known) this.alert(frame.check_id);
    this.listeners.forEach((fn) => fn(frame.check_id));
  }

  /* a new check: the phone buzzes and the card comes into view, whatever the person was reading */
  alert(checkId) {
    if (navigator.vibrate) navigator.vibrate([300, 150, 300]);
    const card = this.node && [...this.node.children].find((n) => n.dataset.checkId === checkId);
    if (card && card.scrollIntoView) card.scrollIntoView({ block: "start" });
  }

  /* shown: every check before its deadline; after it, only the unanswered (a late answer still counts) */
  open() {
    const now = Date.now();
    return this.checks.filter((c) => Date.parse(c.deadline) > now || (!c.status && Date.parse(c.deadline) + KEEP_MS > now));
  }

  keep() { save(KEY, this.checks.map(({ busy, ...rest }) => rest)); this.render(); }

  async answer(check, status) {
    if (check.busy) return;
    const msg = { type: "safety_reply", id: newId("sc"), check_id: check.check_id, status, at: new Date().toISOString() };
    const note = (this.notes[check.check_id] || "").trim();
    if (note) msg.note = note.slice(0, 2000);
    if (status === "need_help") {
      check.busy = true;
      this.render();
      const where = await locate();
      check.busy = false;
      if (where) msg.location = where;
    }
    Object.assign(check, { status, reply: msg.id, delivered: false, located: !!msg.location, again: false });
    this.notes[check.check_id] = "";
    this.link.send(msg);
    showError("");
    this.keep();
  }

  acked(entry) {
    const check = entry.msg.type === "safety_reply" && !entry.msg.for && this.checks.find((c) => c.reply === entry.msg.id);
    if (check) { check.delivered = true; this.keep(); }
  }

  failed(entry) {
    const check = entry.msg.type === "safety_reply" && !entry.msg.for && this.checks.find((c) => c.reply === entry.msg.id);
    if (check) { Object.assign(check, { status: null, reply: null, delivered: false }); this.keep(); }
  }

  view() {
    this.node = el("div", { cls: "checks" });
    this.render();
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.tick(), 1000);
    return this.node;
  }

  render() {
    if (!this.node) return;
    // keep the focus and a note being typed across a redraw
    const focused = document.activeElement && this.node.contains(document.activeElement) ? document.activeElement.id : null;
    clear(this.node);
    for (const check of this.open()) this.node.append(this.card(check));
    if (focused) { const again = document.getElementById(focused); if (again) again.focus(); }
    this.tick();
  }

  card(c) {
    const head = `check-h-${c.check_id}`;
    const answered = c.status && !c.again;
    const node = el("section", { cls: `card safety${answered ? " answered" : ""}`, "data-check-id": c.check_id,
                                 "data-status": c.status || "open", "aria-labelledby": head,
                                 role: answered ? null : "alert" }, [
      el("h2", { id: head, text: t("check.title") }),
      el("p", { cls: "check-message", text: c.message }),
      el("p", { cls: "clock big-clock", "data-check-deadline": c.deadline }),
    ]);
    if (answered) {
      const said = t(c.status === "safe" ? "check.said.safe" : "check.said.help");
      node.append(
        el("p", { cls: "ok", "data-tp": "check-answer", text: said }),
        el("p", { cls: "status", role: "status", "data-delivered": String(c.delivered),
                  text: t(c.delivered ? "check.delivered" : "check.queued") +
                        (c.status === "need_help" ? ` ${t(c.located ? "check.located" : "check.nolocation")}` : "") }),
        el("button", { type: "button", cls: "btn link", text: t("check.change"),
                       onclick: () => { c.again = true; this.render(); } }));
      return node;
    }
    const noteId = `check-note-${c.check_id}`;
    const note = el("textarea", { id: noteId, rows: 2, maxlength: 2000 });
    note.value = this.notes[c.check_id] || "";
    note.addEventListener("input", () => { this.notes[c.check_id] = note.value; });
    node.append(...[
      el("div", { cls: "check-buttons" }, [
        el("button", { type: "button", cls: "btn huge safe", "data-tp": "check-safe", text: t("check.safe"),
                       disabled: c.busy, onclick: () => this.answer(c, "safe") }),
        el("button", { type: "button", cls: "btn huge help", "data-tp": "check-help", text: t("check.help"),
                       disabled: c.busy, onclick: () => this.answer(c, "need_help") })]),
      c.busy ? el("p", { cls: "status", role: "status", text: t("check.locating") }) : null,
      el("label", { cls: "field", for: noteId }, [el("span", { text: t("check.note") })]), note].filter(Boolean));
    return node;
  }

  tick() {
    if (!this.node) return;
    const now = Date.now();
    this.node.querySelectorAll("[data-check-deadline]").forEach((node) => {
      const left = Date.parse(node.dataset.checkDeadline) - now;
      node.textContent = left > 0 ? t("check.left", { t: duration(left) }) : t("check.over");
      node.classList.toggle("late", left <= 0);
    });
  }
}
