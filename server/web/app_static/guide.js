/* The guide's screen: today at a glance, report an incident, post updates (three alternatives within the
 * 10-minute clock, notes, resolve), help dispatched, the tour's notices and the join QR.
 * Complaints are shown by kind and clock only: the server never tells a guide who complained. */
import { el, clear, newId, load, save, showError } from "./dom.js";
import { t, duration } from "./i18n.js";
import { RollUp } from "./rollup.js";

const KINDS = ["attraction_closed", "vehicle_breakdown", "medical", "lost_document", "accident", "delay", "weather",
               "lodging_problem", "conflict", "complaint", "other"];
const SEVERITIES = ["low", "medium", "high", "critical"];
const NEEDS = ["vehicle", "lodging", "medical", "guide", "interpreter"];
const ALT_SLA_MS = 600000; // [sla] attraction_alternatives default; the server's deadline replaces it once known
const POLL_MS = 30000;
const IDS = "tp.incidentIds";

/* an attraction closed and the three alternatives not yet offered (here or, as the server knows, from another phone) */
function needsAlternatives(c) {
  return c.kind === "attraction_closed" && !c.alts_sent && !(c.server && c.server.alternatives >= 3);
}

export class GuideScreen {
  constructor({ claims, link, inbox, checks, token }) {
    Object.assign(this, { claims, link, inbox, checks, token });
    const chosen = localStorage.getItem("tp.guide.tour");
    this.tourId = claims.tours.includes(chosen) ? chosen : claims.tours[0];
    this.today = load(`tp.today.${this.tourId}`, null);
    this.local = load("tp.incidents", []).filter((i) => i.tour_id === this.tourId);
    this.qr = load(`tp.qr.${this.tourId}`, null);
    this.rollup = new RollUp({ link, checks, auth: () => this.token, tourId: this.tourId });
  }

  render(root) {
    this.todayBox = el("div");
    this.incidentBox = el("div", { cls: "incidents" });
    this.resourceBox = el("div");
    this.qrBox = el("div", { cls: "qr" });
    this.status = el("p", { cls: "status", role: "status", "aria-live": "polite" });
    clear(root).append(
      this.checks.view(),
      this.rollup.view(this.tourId),
      el("section", { cls: "card", "aria-labelledby": "today-h" }, [
        el("h2", { id: "today-h", text: `${t("guide.today")} · ${this.tourId}` }), this.tourPicker(root),
        this.todayBox]),
      el("section", { cls: "card", "aria-labelledby": "inc-h" }, [
        el("h2", { id: "inc-h", text: t("guide.incidents") }), this.incidentBox]),
      this.reportForm(),
      el("section", { cls: "card", "aria-labelledby": "res-h" }, [
        el("h2", { id: "res-h", text: t("guide.resources") }), this.resourceBox]),
      this.inbox.view("guide.notices"),
      el("section", { cls: "card", "aria-labelledby": "qr-h" }, [
        el("h2", { id: "qr-h", text: t("guide.join") }),
        el("div", { cls: "row qr-actions" }, [
          el("button", { type: "button", cls: "btn", text: t("guide.join.show"), onclick: () => this.loadQr("GET") }),
          el("button", { type: "button", cls: "btn", text: t("guide.join.new"), onclick: () => {
            if (confirm(t("guide.join.confirm"))) this.loadQr("POST");
          } })]),
        this.qrBox]),
    );
    this.drawn = null; // a new, empty incident box: draw it whatever was drawn before
    this.views = null;
    this.renderToday();
    this.renderIncidents();
    this.renderQr();
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.tick(), 1000);
    clearInterval(this.poller);
    this.poller = setInterval(() => this.refresh(), POLL_MS);
    this.refresh();
  }

  /* a guide leading several tours picks one (kept on the phone); one tour: nothing to pick */
  tourPicker(root) {
    if (this.claims.tours.length < 2) return null;
    const select = el("select", { id: "tour-pick", "aria-label": t("guide.tour") },
      this.claims.tours.map((id) => el("option", { value: id, text: id, selected: id === this.tourId })));
    select.addEventListener("change", () => {
      localStorage.setItem("tp.guide.tour", select.value);
      this.tourId = select.value;
      this.today = load(`tp.today.${this.tourId}`, null);
      this.local = load("tp.incidents", []).filter((i) => i.tour_id === this.tourId);
      this.qr = load(`tp.qr.${this.tourId}`, null);
      this.render(root);
    });
    return el("label", { cls: "field" }, [el("span", { text: t("guide.tour") }), select]);
  }

  async api(method, path) {
    const resp = await fetch(path, { method, headers: { Authorization: `Bearer ${this.token}` } });
    if (!resp.ok) throw Object.assign(new Error(`HTTP ${resp.status}`), { status: resp.status });
    return resp.json();
  }

  async refresh() {
    if (!navigator.onLine) return;
    try {
      this.today = await this.api("GET", `/api/tours/${encodeURIComponent(this.tourId)}/today`);
      save(`tp.today.${this.tourId}`, this.today);
      this.renderToday();
      this.renderIncidents();
    } catch (e) { /* offline or refused: keep showing the last view */ }
  }

  async loadQr(method) {
    try {
      this.qr = await this.api(method, `/api/tours/${encodeURIComponent(this.tourId)}/join`);
      save(`tp.qr.${this.tourId}`, this.qr);
      this.renderQr();
    } catch (e) { showError(t(e.status === 403 || e.status === 404 ? "err.forbidden" : "err.network")); }
  }

  renderQr() {
    clear(this.qrBox);
    if (!this.qr) return;
    this.qrBox.append(
      el("img", { "data-tp": "join-qr", alt: this.qr.url, width: 240, height: 240,
                  src: `data:image/svg+xml,${encodeURIComponent(this.qr.qr_svg)}` }),
      el("p", { cls: "url", text: this.qr.url }),
      el("p", { cls: "muted", text: t("guide.join.expires", { t: new Date(this.qr.expires_at).toLocaleString() }) }));
  }

  renderToday() {
    const live = this.today && this.today.live;
    const pct = (v) => (v === null || v === undefined ? "—" : `${Math.round(v * 100)}%`);
    const trend = el("ol", { cls: "trend", "aria-label": t("guide.trend") });
    for (const day of (live && live.days) || []) {
      trend.append(el("li", {}, [el("span", { text: day.day.slice(5) }),
        el("span", { cls: "bar", style: null, "data-w": day.mean ? Math.round(day.mean * 20) : 0 }),
        el("b", { text: day.mean === null ? "—" : day.mean.toFixed(1) })]));
    }
    trend.querySelectorAll(".bar").forEach((bar) => { bar.style.width = `${bar.dataset.w}%`; });
    const complaints = el("ul", { cls: "plain" });
    for (const c of (this.today && this.today.complaints) || []) {
      complaints.append(el("li", { cls: `complaint sev-${c.severity}` }, [
        el("b", { text: t(`kindname.${c.kind}`) }),
        el("span", { text: ` ${c.day || ""} ${c.category || ""} · ` }),
        el("span", { cls: "clock", "data-deadline": c.deadline })]));
    }
    if (!complaints.children.length) complaints.append(el("li", { cls: "muted", text: t("guide.none") }));
    clear(this.todayBox).append(
      el("dl", { cls: "stats" }, [
        el("div", {}, [el("dt", { text: t("guide.mean") }),
          el("dd", { "data-tp": "today-score", text: live && live.today_mean !== null ? live.today_mean.toFixed(1) : "—" })]),
        el("div", {}, [el("dt", { text: t("guide.ratings") }), el("dd", { text: live ? live.today_count : "—" })]),
        el("div", {}, [el("dt", { text: t("guide.response") }), el("dd", { text: live ? pct(live.response_rate) : "—" })]),
      ]),
      el("h3", { text: t("guide.trend") }), trend,
      el("h3", { text: t("guide.complaints") }), complaints,
      this.today ? el("p", { cls: "muted small", text: t("guide.updated", { t: new Date(this.today.now).toLocaleTimeString() }) }) : null);
    this.renderResources(live ? live.resources : []);
    this.tick();
  }

  renderResources(resources) {
    const list = el("ul", { cls: "plain" });
    for (const r of resources || []) {
      list.append(el("li", { cls: "resource" }, [
        el("b", { text: `${t(`need.${r.kind}`)} · ${r.partner || ""}` }),
        el("span", { text: ` ${t("guide.capacity", { n: r.capacity ?? "—" })} ` }),
        r.contact ? el("a", { cls: "btn", href: `tel:${String(r.contact).replace(/[^0-9+]/g, "")}`,
                              text: t("guide.call", { contact: r.contact }) }) : null]));
    }
    if (!list.children.length) list.append(el("li", { cls: "muted", text: t("guide.none") }));
    clear(this.resourceBox).append(list);
  }

  /* local incidents (some maybe not sent yet) merged with the server's open ones */
  cards() {
    const ids = load(IDS, {});
    const server = new Map(((this.today && this.today.live && this.today.live.open_incidents) || [])
      .map((i) => [i.incident_id, i]));
    const out = [];
    for (const mine of this.local) {
      const id = mine.incident_id || ids[mine.msg_id];
      if (mine.status === "resolved") continue;
      const known = id ? server.get(id) : null;
      if (id) server.delete(id);
      out.push({ ...mine, incident_id: id, server: known });
    }
    for (const [id, inc] of server) out.push({ incident_id: id, kind: inc.kind, severity: inc.severity,
                                               summary: inc.summary, server: inc, status: inc.status });
    return out;
  }

  /* Cards are kept and updated in place, keyed by the phone's message id (or the server's incident id): a card
   * redrawn under a finger loses the tap (mousedown lands on the old button, mouseup on its copy), and an ack or a
   * refresh can arrive at any moment. A card is built anew only when its alternatives form comes or goes. */
  renderIncidents() {
    const cards = this.cards();
    const signature = JSON.stringify(cards);
    if (signature === this.drawn && this.incidentBox.isConnected) return;
    this.drawn = signature;
    const views = new Map();
    for (const c of cards) {
      const key = c.msg_id || c.incident_id;
      const kept = this.views && this.views.get(key);
      const view = kept && kept.needsAlts === needsAlternatives(c) ? kept : this.card(c);
      view.set(c);
      views.set(key, view);
    }
    this.views = views;
    const nodes = [...views.values()].map((v) => v.node);
    if (!nodes.length) nodes.push(el("p", { cls: "muted", text: t("guide.none") }));
    const shown = [...this.incidentBox.children];
    if (shown.length !== nodes.length || shown.some((n, i) => n !== nodes[i])) clear(this.incidentBox).append(...nodes);
    this.tick(); // the new cards' clocks show at once, not a second later
  }

  card(first) {
    const view = { c: first, needsAlts: needsAlternatives(first) };
    const title = el("h3");
    const summary = el("p");
    const state = el("p", { cls: "muted" });
    const node = el("article", {}, [title, summary, state]);
    const key = first.msg_id || first.incident_id;
    let clock = null;
    if (view.needsAlts) {
      clock = el("p", { cls: "clock big-clock", "data-countdown": "alternatives" });
      const inputs = [1, 2, 3].map((n) => this.draft(el("input", { type: "text", "data-tp": `alternative-${n}`, maxlength: 200,
                                                        id: `alt-${key}-${n}`, "aria-label": t("guide.alt", { n }) })));
      node.append(
        el("h4", { text: t("guide.alts") }), clock,
        ...inputs.map((input, i) => el("label", { cls: "field" }, [el("span", { text: t("guide.alt", { n: i + 1 }) }), input])),
        el("button", { type: "button", cls: "btn primary big", "data-tp": "send-alternatives", text: t("guide.alts.send"),
                       onclick: () => this.sendAlternatives(view.c, inputs) }));
    } else if (first.kind === "attraction_closed") {
      node.append(el("p", { cls: "ok", text: t("guide.alts.done") }));
    }
    const note = this.draft(el("input", { type: "text", maxlength: 2000, "aria-label": t("guide.note"),
                                         placeholder: t("guide.note"), id: `note-${key}` }));
    node.append(el("div", { cls: "row" }, [note,
      el("button", { type: "button", cls: "btn", text: t("guide.note.send"), onclick: () => {
        if (note.value.trim()) { this.update(view.c, { note: note.value.trim() }); note.value = ""; this.drafts[note.id] = ""; }
      } })]),
    el("button", { type: "button", cls: "btn", text: t("guide.resolve"), onclick: () => this.resolve(view.c) }));
    view.node = node;
    view.set = (c) => {
      view.c = c;
      node.className = `incident sev-${c.severity}`;
      node.dataset.incidentId = c.incident_id || "";
      title.textContent = `${t(`kindname.${c.kind}`)} · ${t(`sev.${c.severity}`)}`;
      summary.textContent = c.summary;
      state.textContent = c.incident_id ? t(`status.${(c.server && c.server.status) || "open"}`) : t("guide.pending");
      if (!clock) return;
      const deadline = (c.server && c.server.deadline) || (c.at && !c.alts_sent ? new Date(c.at + ALT_SLA_MS).toISOString() : null);
      if (deadline) clock.dataset.deadline = deadline; else delete clock.dataset.deadline;
      clock.hidden = !deadline;
    };
    return view;
  }

  /* what is typed into a card survives the card being drawn again (an ack, a refresh, a language switch) */
  draft(input) {
    this.drafts = this.drafts || {};
    input.value = this.drafts[input.id] || "";
    input.addEventListener("input", () => { this.drafts[input.id] = input.value; });
    return input;
  }

  update(c, fields) {
    const msg = { type: "incident_update", id: newId("u"), at: new Date().toISOString(), ...fields };
    if (c.incident_id) msg.incident_id = c.incident_id;
    this.link.send(msg, c.incident_id ? null : c.msg_id);
  }

  sendAlternatives(c, inputs) {
    const alternatives = inputs.map((i) => i.value.trim());
    if (alternatives.some((a) => !a)) { this.status.textContent = t("guide.alts.need"); showError(t("guide.alts.need")); return; }
    showError("");
    this.update(c, { alternatives });
    this.patchLocal(c, { alts_sent: true });
  }

  resolve(c) {
    this.update(c, { status: "resolved" });
    this.patchLocal(c, { status: "resolved" });
  }

  patchLocal(c, fields) {
    let mine = this.local.find((i) => (c.msg_id && i.msg_id === c.msg_id) || (c.incident_id && i.incident_id === c.incident_id));
    if (!mine) { mine = { tour_id: this.tourId, incident_id: c.incident_id, kind: c.kind, severity: c.severity, summary: c.summary }; this.local.push(mine); }
    Object.assign(mine, fields);
    this.saveLocal();
    this.renderIncidents();
  }

  saveLocal() {
    const others = load("tp.incidents", []).filter((i) => i.tour_id !== this.tourId);
    save("tp.incidents", [...others, ...this.local].slice(-50));
  }

  reportForm() {
    const select = (hook, values, prefix) => el("select", { "data-tp": hook, id: hook },
      values.map((v) => el("option", { value: v, text: t(`${prefix}.${v}`) })));
    const kind = select("incident-kind", KINDS, "kindname");
    const severity = select("incident-severity", SEVERITIES, "sev");
    const summary = el("textarea", { "data-tp": "incident-summary", id: "incident-summary", rows: 3, maxlength: 500 });
    const lat = el("input", { id: "lat", type: "number", step: "any", inputmode: "decimal", min: -90, max: 90 });
    const lon = el("input", { id: "lon", type: "number", step: "any", inputmode: "decimal", min: -180, max: 180 });
    const affected = el("input", { id: "affected", type: "number", min: 0, step: 1, inputmode: "numeric" });
    const locStatus = el("span", { cls: "muted", role: "status" });
    const needs = NEEDS.map((n) => el("input", { type: "checkbox", value: n, id: `need-${n}` }));
    const locate = () => {
      if (!navigator.geolocation) { locStatus.textContent = t("guide.nolocation"); return; }
      locStatus.textContent = t("guide.locating");
      navigator.geolocation.getCurrentPosition((pos) => {
        lat.value = pos.coords.latitude.toFixed(5); lon.value = pos.coords.longitude.toFixed(5);
        locStatus.textContent = t("guide.located");
      }, () => { locStatus.textContent = t("guide.nolocation"); }, { timeout: 10000, maximumAge: 60000 });
    };
    const send = () => {
      const text = summary.value.trim();
      if (!text) { summary.focus(); return; }
      const msg = { type: "incident", id: newId("i"), tour_id: this.tourId, kind: kind.value, severity: severity.value,
                    summary: text, at: new Date().toISOString() };
      const la = parseFloat(lat.value), lo = parseFloat(lon.value);
      if (Number.isFinite(la) && Number.isFinite(lo)) msg.location = { lat: la, lon: lo };
      const chosen = needs.filter((n) => n.checked).map((n) => n.value);
      if (chosen.length) msg.needs = chosen;
      if (affected.value !== "" && Number.isInteger(Number(affected.value))) msg.travellers_affected = Number(affected.value);
      this.link.send(msg);
      this.local.push({ msg_id: msg.id, tour_id: this.tourId, kind: msg.kind, severity: msg.severity, summary: text,
                        at: Date.now(), status: "open" });
      this.saveLocal();
      summary.value = ""; affected.value = "";
      needs.forEach((n) => { n.checked = false; });
      this.status.textContent = t("guide.sent");
      this.renderIncidents();
    };
    const form = el("div", { cls: "report", hidden: true }, [
      el("label", { cls: "field", for: "incident-kind" }, [el("span", { text: t("guide.kind") })]), kind,
      el("label", { cls: "field", for: "incident-severity" }, [el("span", { text: t("guide.severity") })]), severity,
      el("label", { cls: "field", for: "incident-summary" }, [el("span", { text: t("guide.summary") })]), summary,
      el("fieldset", {}, [el("legend", { text: t("guide.location") }),
        el("button", { type: "button", cls: "btn", text: t("guide.locate"), onclick: locate }), locStatus,
        el("div", { cls: "row" }, [el("label", { cls: "field", for: "lat" }, [el("span", { text: t("guide.lat") })]), lat,
                                   el("label", { cls: "field", for: "lon" }, [el("span", { text: t("guide.lon") })]), lon])]),
      el("label", { cls: "field", for: "affected" }, [el("span", { text: t("guide.affected") })]), affected,
      el("fieldset", { cls: "needs" }, [el("legend", { text: t("guide.needs") }),
        ...needs.map((box) => el("label", { cls: "check", for: box.id }, [box, el("span", { text: t(`need.${box.value}`) })]))]),
      el("button", { type: "button", cls: "btn primary big", "data-tp": "send-incident", text: t("guide.send"), onclick: send }),
    ]);
    const open = el("button", { type: "button", cls: "btn primary big", "data-tp": "report-incident",
                                "aria-expanded": "false", text: t("guide.report"), onclick: () => {
      form.hidden = !form.hidden;
      open.setAttribute("aria-expanded", String(!form.hidden));
      if (!form.hidden) kind.focus();
    } });
    return el("section", { cls: "card", "aria-labelledby": "rep-h" }, [
      el("h2", { id: "rep-h", cls: "sr-only", text: t("guide.report") }), open, form, this.status]);
  }

  acked(entry, frame) {
    this.rollup.acked(entry);
    if (entry.msg.type === "incident" && frame.incident_id) {
      const ids = load(IDS, {});
      ids[entry.msg.id] = frame.incident_id;
      save(IDS, ids);
      const mine = this.local.find((i) => i.msg_id === entry.msg.id);
      if (mine) { mine.incident_id = frame.incident_id; this.saveLocal(); }
      this.link.drain(); // updates that waited for this id may go now
      this.renderIncidents();
      setTimeout(() => this.refresh(), 1500);
    }
  }

  pushed(frame) { if (frame.type === "incident") this.refresh(); }

  failed(entry) { this.rollup.failed(entry); }

  tick() {
    const now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach((node) => {
      const left = Date.parse(node.dataset.deadline) - now;
      if (node.dataset.countdown === "alternatives") {
        node.textContent = left > 0 ? t("guide.countdown", { t: duration(left) }) : t("guide.countdown.over");
      } else {
        node.textContent = left > 0 ? t("guide.due", { t: duration(left) }) : t("guide.overdue", { t: duration(-left) });
      }
      node.classList.toggle("late", left <= 0);
    });
  }
}
