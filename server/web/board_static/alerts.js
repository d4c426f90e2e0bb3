/* tourpulse board: the live alert list.
 *
 * Keyed by alert_id: each alert has one <li data-alert-id> built once and updated in place, so what a supervisor
 * is typing into an assign / note box survives updates. The list changes only from the server's stream
 * (snapshot / alert messages), never by optimistic edits. Order: most severe first, then newest opened.
 * A resolved alert gets data-status="resolved", fades, and leaves the list.
 */
(function () {
  "use strict";
  const TP = (window.TP = window.TP || {});
  const el = TP.dom.el;
  const dash = TP.dom.dash;

  const SEVERITY_RANK = { critical: 3, high: 2, medium: 1, low: 0 };
  const SEVERITIES = ["critical", "high", "medium", "low"];
  const FADE_MS = 1500;
  const CLOCKS = ["solution", "followup", "response"]; // a complaint's 2 h, 24 h and 48 h clocks (contract §10)

  function rank(alert) {
    const r = SEVERITY_RANK[alert.severity];
    return r === undefined ? -1 : r;
  }

  function compare(a, b) {
    const r = rank(b.data) - rank(a.data);
    if (r) return r;
    const ta = TP.dom.parseTime(a.data.opened_at) || 0;
    const tb = TP.dom.parseTime(b.data.opened_at) || 0;
    if (ta !== tb) return tb - ta;
    return String(a.id).localeCompare(String(b.id));
  }

  /* container: the <ol>; handlers.onAction(action, alertId, value, row) */
  function AlertList(container, emptyNode, countNode, handlers) {
    this.container = container;
    this.emptyNode = emptyNode;
    this.countNode = countNode;
    this.handlers = handlers;
    this.entries = new Map(); // alert_id → {id, data, row, parts, leaving}
    this.filters = { region: "", severity: "", kind: "" };
  }

  AlertList.prototype.activeCount = function () {
    let n = 0;
    this.entries.forEach(function (e) { if (!e.leaving) n += 1; });
    return n;
  };

  AlertList.prototype.values = function (field) {
    const seen = new Set();
    this.entries.forEach(function (e) {
      const v = e.data[field];
      if (typeof v === "string" && v) seen.add(v);
    });
    return Array.from(seen).sort();
  };

  AlertList.prototype.get = function (alertId) {
    const e = this.entries.get(alertId);
    return e ? e.data : null;
  };

  /* Replace everything with a snapshot. */
  AlertList.prototype.snapshot = function (alerts) {
    const keep = new Set();
    const self = this;
    (Array.isArray(alerts) ? alerts : []).forEach(function (a) {
      if (!a || typeof a !== "object" || a.alert_id === undefined || a.alert_id === null) return;
      if (a.status === "resolved") return;
      keep.add(String(a.alert_id));
      self.upsert(a, true);
    });
    this.entries.forEach(function (e, id) { if (!keep.has(id)) self.remove(id); });
    this.render();
  };

  /* Apply one alert; returns true when it deserves the audible cue (a new or escalated critical alert). */
  AlertList.prototype.upsert = function (alert, quiet) {
    if (!alert || typeof alert !== "object" || alert.alert_id === undefined || alert.alert_id === null) return false;
    const id = String(alert.alert_id);
    let entry = this.entries.get(id);
    const prev = entry ? entry.data : null;
    if (alert.status === "resolved") {
      if (entry) this.leave(entry, alert);
      return false;
    }
    if (!entry) {
      entry = this.build(id);
      this.entries.set(id, entry);
    } else if (entry.leaving) {
      clearTimeout(entry.leaveTimer);
      entry.leaving = false;
      entry.row.classList.remove("leaving");
    }
    entry.data = alert;
    this.fillRow(entry);
    if (quiet) return false;
    const escalated = prev && (Number(alert.escalation_level) || 0) > (Number(prev.escalation_level) || 0);
    const critical = alert.severity === "critical";
    const fresh = !prev;
    if (fresh || escalated || (prev && prev.severity !== alert.severity)) this.flash(entry);
    return critical && (fresh || escalated || prev.severity !== "critical");
  };

  AlertList.prototype.flash = function (entry) {
    const row = entry.row;
    row.classList.remove("flash");
    void row.offsetWidth; // restart the animation
    row.classList.add("flash");
  };

  AlertList.prototype.leave = function (entry, alert) {
    entry.data = alert;
    this.fillRow(entry);
    if (entry.leaving) return;
    entry.leaving = true;
    entry.row.classList.add("leaving");
    const self = this;
    entry.leaveTimer = setTimeout(function () { self.remove(entry.id); self.render(); }, FADE_MS);
  };

  AlertList.prototype.remove = function (id) {
    const entry = this.entries.get(id);
    if (!entry) return;
    clearTimeout(entry.leaveTimer);
    if (entry.row.parentNode) entry.row.parentNode.removeChild(entry.row);
    this.entries.delete(id);
  };

  AlertList.prototype.build = function (id) {
    const parts = {};
    const self = this;
    parts.severity = el("span", { cls: "sev-badge" });
    parts.kind = el("span", { cls: "kind" });
    parts.status = el("span", { cls: "status-badge" });
    parts.level = el("span", { cls: "level" });
    parts.count = el("span", { cls: "count" });
    parts.age = el("span", { cls: "age" });
    parts.summary = el("p", { cls: "summary" });
    parts.tour = el("dd", { cls: "tour" });
    parts.region = el("dd", { cls: "region" });
    parts.assignee = el("dd", { cls: "assignee" });
    parts.tourLabel = el("dt");
    parts.regionLabel = el("dt");
    parts.assigneeLabel = el("dt");
    parts.details = el("p", { cls: "details" });
    parts.clocks = el("ul", { cls: "clocks" });
    parts.paged = el("p", { cls: "paged" }); // who was paged, and whether they were reached (said.js)
    parts.ack = el("button", { cls: "btn btn-ack", attrs: { type: "button" }, data: { action: "ack" } });
    parts.assigneeInput = el("input", {
      cls: "inline-input",
      attrs: { type: "text", maxlength: 128, autocomplete: "off", enterkeyhint: "send" },
      data: { field: "assignee" },
    });
    parts.assign = el("button", { cls: "btn btn-assign", attrs: { type: "button" }, data: { action: "assign" } });
    parts.noteInput = el("input", {
      cls: "inline-input",
      attrs: { type: "text", maxlength: 2000, autocomplete: "off", enterkeyhint: "send" },
      data: { field: "note" },
    });
    parts.resolve = el("button", { cls: "btn btn-resolve", attrs: { type: "button" }, data: { action: "resolve" } });

    const row = el("li", { cls: "alert", data: { alertId: id } }, [
      el("div", { cls: "alert-head" }, [parts.severity, parts.kind, parts.status, parts.level, parts.count, parts.age]),
      parts.summary,
      el("dl", { cls: "alert-meta" }, [
        el("div", null, [parts.tourLabel, parts.tour]),
        el("div", null, [parts.regionLabel, parts.region]),
        el("div", null, [parts.assigneeLabel, parts.assignee]),
      ]),
      parts.details,
      parts.clocks,
      parts.paged,
      el("div", { cls: "alert-actions" }, [
        parts.ack,
        el("div", { cls: "inline-action" }, [parts.assigneeInput, parts.assign]),
        el("div", { cls: "inline-action" }, [parts.noteInput, parts.resolve]),
      ]),
    ]);

    const act = function (action, input) {
      return function () {
        self.handlers.onAction(action, id, input ? input.value.trim() : null, row, input);
      };
    };
    parts.ack.addEventListener("click", act("ack", null));
    parts.assign.addEventListener("click", act("assign", parts.assigneeInput));
    parts.resolve.addEventListener("click", act("resolve", parts.noteInput));
    parts.assigneeInput.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") act("assign", parts.assigneeInput)();
    });
    parts.noteInput.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") act("resolve", parts.noteInput)();
    });
    return { id: id, data: {}, row: row, parts: parts, leaving: false, leaveTimer: null };
  };

  AlertList.prototype.fillRow = function (entry) {
    const t = TP.i18n.t;
    const label = TP.i18n.label;
    const a = entry.data;
    const p = entry.parts;
    const row = entry.row;
    const severity = SEVERITY_RANK[a.severity] === undefined ? "unknown" : a.severity;
    row.dataset.status = dash(a.status);
    row.dataset.severity = severity;
    row.dataset.kind = dash(a.kind);
    row.dataset.region = dash(a.region);
    row.dataset.tourId = dash(a.tour_id);
    row.dataset.dedupKey = dash(a.dedup_key);
    const keep = ["flash", "busy"].filter(function (c) { return row.classList.contains(c); });
    row.className = ["alert", "sev-" + severity, "status-" + (typeof a.status === "string" ? a.status : "unknown")]
      .concat(entry.leaving ? ["leaving"] : [], keep).join(" ");

    p.severity.textContent = label("severity", a.severity);
    p.kind.textContent = label("kind", a.kind);
    p.status.textContent = label("status", a.status);
    const level = Number(a.escalation_level) || 0;
    p.level.textContent = t("level", { n: level });
    p.level.hidden = level <= 0;
    p.level.setAttribute("title", t("alert.level"));
    p.count.textContent = t("times", { n: dash(a.count) });
    p.count.setAttribute("title", t("alert.count"));
    p.age.setAttribute("title", t("alert.age"));
    p.summary.textContent = dash(a.summary);
    p.tourLabel.textContent = t("alert.tour");
    p.regionLabel.textContent = t("alert.region");
    p.assigneeLabel.textContent = t("alert.assignee");
    p.tour.textContent = dash(a.tour_id);
    p.region.textContent = dash(a.region);
    p.assignee.textContent = a.assignee ? String(a.assignee) : t("alert.unassigned");
    p.assignee.classList.toggle("none", !a.assignee);
    // said as to a person (said.js, the port of alerts/rules/say.py): never raw details, epochs or internal ids
    TP.said.fill(p.details, a, TP.i18n.lang());
    TP.said.fillPaged(p.paged, a, TP.i18n.lang());
    this.fillClocks(p.clocks, a.details);

    p.ack.textContent = t("action.ack");
    p.assign.textContent = t("action.assign");
    p.resolve.textContent = t("action.resolve");
    p.assigneeInput.setAttribute("placeholder", t("placeholder.assignee"));
    p.assigneeInput.setAttribute("aria-label", t("placeholder.assignee"));
    p.noteInput.setAttribute("placeholder", t("placeholder.note"));
    p.noteInput.setAttribute("aria-label", t("placeholder.note"));
    const busy = row.classList.contains("busy");
    p.ack.disabled = busy || entry.leaving || a.status !== "open";
    p.assign.disabled = busy || entry.leaving;
    p.resolve.disabled = busy || entry.leaving;
    p.assigneeInput.disabled = entry.leaving;
    p.noteInput.disabled = entry.leaving;
    this.tickRow(entry, Date.now());
  };

  /* A complaint's clocks (details.clocks: solution 2 h, followup 24 h, response 48 h) as countdowns. */
  AlertList.prototype.fillClocks = function (list, details) {
    const clocks = details && typeof details.clocks === "object" && details.clocks ? details.clocks : {};
    const now = Date.now();
    list.replaceChildren.apply(list, CLOCKS.filter(function (name) { return typeof clocks[name] === "string"; })
      .map(function (name) {
        const countdown = el("span", { cls: "countdown", data: { deadline: clocks[name] } });
        TP.dom.tickDeadline(countdown, now);
        return el("li", { cls: "clock", data: { clock: name } }, [
          el("span", { cls: "clock-name", text: TP.i18n.t("clock." + name) }), countdown]);
      }));
    list.hidden = !list.children.length;
  };

  AlertList.prototype.tickRow = function (entry, now) {
    const opened = TP.dom.parseTime(entry.data.opened_at);
    entry.parts.age.textContent = opened === null ? TP.dom.DASH : TP.dom.duration(now - opened);
    entry.parts.clocks.querySelectorAll(".countdown").forEach(function (node) { TP.dom.tickDeadline(node, now); });
  };

  AlertList.prototype.tick = function (now) {
    const self = this;
    this.entries.forEach(function (e) { self.tickRow(e, now); });
  };

  AlertList.prototype.relabel = function () {
    const self = this;
    this.entries.forEach(function (e) { self.fillRow(e); });
    this.render();
  };

  AlertList.prototype.setBusy = function (alertId, busy) {
    const entry = this.entries.get(alertId);
    if (!entry) return;
    entry.row.classList.toggle("busy", busy);
    entry.row.setAttribute("aria-busy", busy ? "true" : "false");
    this.fillRow(entry);
  };

  AlertList.prototype.matches = function (a) {
    const f = this.filters;
    return (!f.region || a.region === f.region) && (!f.severity || a.severity === f.severity) &&
      (!f.kind || a.kind === f.kind);
  };

  /* Put rows in order (moving only those out of place) and apply the filters. */
  AlertList.prototype.render = function () {
    const sorted = Array.from(this.entries.values()).sort(compare);
    const box = this.container;
    let shown = 0;
    let hidden = 0;
    const self = this;
    sorted.forEach(function (entry) {
      const visible = self.matches(entry.data);
      entry.row.hidden = !visible;
      if (!entry.leaving) { if (visible) shown += 1; else hidden += 1; }
    });
    TP.dom.place(box, sorted.map(function (entry) { return entry.row; }));
    const t = TP.i18n.t;
    this.emptyNode.hidden = shown > 0;
    this.countNode.textContent = t("alerts.count", { n: this.activeCount() }) +
      (hidden ? " · " + t("alerts.hidden", { n: hidden }) : "");
  };

  TP.AlertList = AlertList;
  TP.SEVERITIES = SEVERITIES;
})();
