/* tourpulse board: the "tours in progress" table and the emergency pool, both rebuilt from polled JSON.
 *
 * Tables carry data-label on every cell so that, under ~800 px, CSS turns each row into a card. Deadlines tick
 * via [data-deadline] elements, refreshed each second by tick(). All text goes through textContent.
 */
(function () {
  "use strict";
  const TP = (window.TP = window.TP || {});
  const el = TP.dom.el;
  const dash = TP.dom.dash;

  const SCORE_THRESHOLD = 4;
  const SUMMARY_LIMIT = 140;
  const STATE_ORDER = { free: 0, held: 1, dispatched: 2 };

  function clip(text, limit) {
    const s = dash(text);
    return s.length > limit ? s.slice(0, limit - 1) + "…" : s;
  }

  function cell(labelKey, children, cls) {
    return el("td", { cls: cls || null, attrs: { "data-label": TP.i18n.t(labelKey) } }, [el("div", { cls: "cell" }, children)]);
  }

  function header(keys) {
    return el("thead", null, [el("tr", null, keys.map(function (k) {
      return el("th", { text: TP.i18n.t(k), attrs: { scope: "col" } });
    }))]);
  }

  const tickDeadline = TP.dom.tickDeadline;

  /* ---- tours ---- */

  function ToursPanel(table, emptyNode, stampNode) {
    this.table = table;
    this.emptyNode = emptyNode;
    this.stampNode = stampNode;
    this.tours = new Map(); // tour_id → tour (insertion order = server order)
    this.region = "";
    this.stamp = null;
  }

  ToursPanel.prototype.setAll = function (tours) {
    this.tours.clear();
    const self = this;
    (Array.isArray(tours) ? tours : []).forEach(function (tour) {
      if (tour && typeof tour === "object" && tour.tour_id !== undefined && tour.tour_id !== null) {
        self.tours.set(String(tour.tour_id), tour);
      }
    });
    this.stamp = Date.now();
    this.render();
  };

  ToursPanel.prototype.setOne = function (tour) {
    if (!tour || typeof tour !== "object" || tour.tour_id === undefined || tour.tour_id === null) return false;
    const id = String(tour.tour_id);
    if (!this.tours.has(id)) return false; // not an active tour on this board: leave it to the next poll
    this.tours.set(id, tour);
    const body = this.table.tBodies[0];
    const old = body ? Array.from(body.rows).find(function (r) { return r.dataset.tourId === id; }) : null;
    if (!old) {
      this.render();
      return true;
    }
    const row = this.row(tour);
    row.hidden = !!this.region && tour.region !== this.region;
    body.replaceChild(row, old);
    return true;
  };

  ToursPanel.prototype.regions = function () {
    const seen = new Set();
    this.tours.forEach(function (tour) { if (typeof tour.region === "string" && tour.region) seen.add(tour.region); });
    return Array.from(seen);
  };

  ToursPanel.prototype.render = function () {
    const keys = ["tours.col.tour", "tours.col.today", "tours.col.trend", "tours.col.response",
      "tours.col.incidents", "tours.col.resources", "tours.col.alerts"];
    const body = el("tbody");
    let shown = 0;
    const self = this;
    this.tours.forEach(function (tour) {
      const row = self.row(tour);
      row.hidden = !!self.region && tour.region !== self.region;
      if (!row.hidden) shown += 1;
      body.appendChild(row);
    });
    this.table.replaceChildren(header(keys), body);
    this.emptyNode.hidden = shown > 0;
    this.stampNode.textContent = this.stamp ? TP.i18n.t("tours.updated", { time: TP.dom.clock(this.stamp) }) : "";
  };

  ToursPanel.prototype.row = function (tour) {
    const t = TP.i18n.t;
    const live = tour.live && typeof tour.live === "object" ? tour.live : {};
    const mean = TP.dom.num(live.today_mean);
    const todayCls = mean === null ? "score" : mean < SCORE_THRESHOLD ? "score score-low" : "score score-ok";
    const travellers = TP.dom.num(tour.travellers);
    const row = el("tr", { data: { tourId: String(tour.tour_id) } }, [
      cell("tours.col.tour", [
        el("span", { cls: "tour-id", text: dash(tour.tour_id) }),
        el("span", { cls: "sub", text: dash(tour.route) }),
        el("span", { cls: "sub region", text: t("alert.region") + ": " + dash(tour.region) }),
        travellers === null ? null : el("span", { cls: "sub", text: t("tours.travellers", { n: travellers }) }),
      ]),
      cell("tours.col.today", [
        el("span", { cls: todayCls, text: TP.dom.fixed(mean, 2) }),
        el("span", { cls: "sub", text: t("tours.ratings", { n: dash(live.today_count) }) }),
      ]),
      cell("tours.col.trend", [TP.dom.sparkline(live.days, SCORE_THRESHOLD)]),
      cell("tours.col.response", [el("span", { text: TP.dom.percent(live.response_rate) })]),
      cell("tours.col.incidents", [this.incidents(live.open_incidents)]),
      cell("tours.col.resources", [this.resources(live.resources)]),
      cell("tours.col.alerts", [el("span", {
        cls: TP.dom.num(live.open_alerts) ? "pill pill-alert" : "pill",
        text: dash(live.open_alerts),
      })]),
    ]);
    return row;
  };

  ToursPanel.prototype.incidents = function (list) {
    const items = Array.isArray(list) ? list : [];
    if (!items.length) return el("span", { text: TP.dom.DASH });
    const now = Date.now();
    return el("ul", { cls: "mini-list" }, items.map(function (inc) {
      if (!inc || typeof inc !== "object") return null;
      const countdown = el("span", { cls: "countdown", data: { deadline: inc.deadline || "" } });
      tickDeadline(countdown, now);
      const sev = typeof inc.severity === "string" ? inc.severity : "unknown";
      return el("li", { cls: "incident sev-" + sev, data: { incidentId: dash(inc.incident_id) } }, [
        el("span", { cls: "sev-dot", attrs: { title: TP.i18n.label("severity", inc.severity) } }),
        el("span", { cls: "kind", text: TP.i18n.label("incident", inc.kind) }),
        el("span", { cls: "sub", text: clip(inc.summary, SUMMARY_LIMIT) }),
        countdown,
      ]);
    }));
  };

  ToursPanel.prototype.resources = function (list) {
    const items = Array.isArray(list) ? list : [];
    if (!items.length) return el("span", { text: TP.dom.DASH });
    return el("ul", { cls: "mini-list" }, items.map(function (res) {
      if (!res || typeof res !== "object") return null;
      return el("li", { data: { resourceId: dash(res.resource_id) } }, [
        el("span", { cls: "kind", text: TP.i18n.label("resource", res.kind) }),
        el("span", { cls: "sub", text: dash(res.partner) }),
        el("span", { cls: "state state-" + dash(res.state), text: TP.i18n.label("state", res.state) }),
      ]);
    }));
  };

  ToursPanel.prototype.tick = function (now) {
    this.table.querySelectorAll(".countdown").forEach(function (node) { tickDeadline(node, now); });
  };

  /* ---- pool ---- */

  function PoolPanel(table, emptyNode, summaryNode) {
    this.table = table;
    this.emptyNode = emptyNode;
    this.summaryNode = summaryNode;
    this.resources = [];
    this.region = "";
  }

  PoolPanel.prototype.setAll = function (resources) {
    this.resources = (Array.isArray(resources) ? resources : []).filter(function (r) {
      return r && typeof r === "object";
    });
    this.render();
  };

  PoolPanel.prototype.regions = function () {
    const seen = new Set();
    this.resources.forEach(function (r) { if (typeof r.region === "string" && r.region) seen.add(r.region); });
    return Array.from(seen);
  };

  PoolPanel.prototype.render = function () {
    const region = this.region;
    const list = this.resources.filter(function (r) { return !region || r.region === region; }).sort(function (a, b) {
      const sa = STATE_ORDER[a.state] === undefined ? 9 : STATE_ORDER[a.state];
      const sb = STATE_ORDER[b.state] === undefined ? 9 : STATE_ORDER[b.state];
      return sa - sb || dash(a.kind).localeCompare(dash(b.kind)) || dash(a.region).localeCompare(dash(b.region)) ||
        dash(a.resource_id).localeCompare(dash(b.resource_id));
    });
    const counts = { free: 0, held: 0, dispatched: 0 };
    list.forEach(function (r) { if (counts[r.state] !== undefined) counts[r.state] += 1; });
    this.summaryNode.textContent = TP.i18n.t("pool.summary", counts);
    const keys = ["pool.col.kind", "pool.col.capacity", "pool.col.region", "pool.col.partner", "pool.col.contact",
      "pool.col.state", "pool.col.held_by", "pool.col.resource"];
    const body = el("tbody", null, list.map(function (r) {
      return el("tr", { cls: "res", data: { resourceId: dash(r.resource_id), state: dash(r.state) } }, [
        cell("pool.col.kind", [el("span", { cls: "kind", text: TP.i18n.label("resource", r.kind) })]),
        cell("pool.col.capacity", [el("span", { text: dash(r.capacity) })]),
        cell("pool.col.region", [el("span", { text: dash(r.region) })]),
        cell("pool.col.partner", [el("span", { text: dash(r.partner) })]),
        cell("pool.col.contact", [el("span", { text: dash(r.contact) })]),
        cell("pool.col.state", [el("span", { cls: "state state-" + dash(r.state), text: TP.i18n.label("state", r.state) })]),
        cell("pool.col.held_by", [el("span", { text: dash(r.held_by) })]),
        cell("pool.col.resource", [el("span", { cls: "sub", text: dash(r.resource_id) })]),
      ]);
    }));
    this.table.replaceChildren(header(keys), body);
    this.emptyNode.hidden = list.length > 0;
  };

  TP.ToursPanel = ToursPanel;
  TP.PoolPanel = PoolPanel;
})();
