/* tourpulse board: the feedback inbox and the reports, each a tab over the HTTP API (contract §10).
 *
 * FeedbackTab reads GET /api/feedback page by page (cursor), filters by kind, route, tour and words, and jumps from
 * an item to its tour and alert on the live tab. ReportsTab reads GET /api/reports and draws CSAT and NPS over
 * time per route or region as plain SVG, with the targets as dashed lines. Everything a traveller wrote is set
 * with textContent; the charts are built element by element, never from markup.
 */
(function () {
  "use strict";
  const TP = (window.TP = window.TP || {});
  const el = TP.dom.el;
  const dash = TP.dom.dash;
  const SVG = "http://www.w3.org/2000/svg";

  function query(params) {
    const parts = [];
    Object.keys(params).forEach(function (k) {
      if (params[k] !== "" && params[k] !== null && params[k] !== undefined) {
        parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(params[k]));
      }
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  function formParams(form) {
    const out = {};
    Array.from(form.elements).forEach(function (field) {
      if (field.name) out[field.name] = field.value.trim();
    });
    return out;
  }

  /* ---- feedback ---- */

  function FeedbackTab(host, nodes) {
    this.host = host; // { api(path, what), fetchRaw(path), focusTour(id), focusAlert(key) }
    this.nodes = nodes; // form, list, empty, more, count, csv
    this.items = [];
    this.next = null;
    this.params = {};
    const self = this;
    nodes.form.addEventListener("submit", function (ev) { ev.preventDefault(); self.load(false); });
    nodes.more.addEventListener("click", function () { self.load(true); });
    nodes.csv.addEventListener("click", function () { self.download(); });
  }

  FeedbackTab.prototype.load = async function (more) {
    if (!more) {
      this.params = formParams(this.nodes.form);
      this.items = [];
      this.next = null;
    }
    const params = Object.assign({}, this.params, more && this.next ? { cursor: this.next } : {});
    const data = await this.host.api("/api/feedback" + query(params), "what.feedback");
    if (!data || !Array.isArray(data.items)) return;
    this.items = this.items.concat(data.items);
    this.next = typeof data.next === "string" ? data.next : null;
    this.render();
  };

  FeedbackTab.prototype.download = async function () {
    const blob = await this.host.fetchRaw("/api/feedback" + query(Object.assign(formParams(this.nodes.form),
      { format: "csv" })));
    if (!blob) return;
    const link = el("a", { attrs: { href: URL.createObjectURL(blob), download: "feedback.csv" } });
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  };

  FeedbackTab.prototype.render = function () {
    const t = TP.i18n.t;
    const self = this;
    this.nodes.list.replaceChildren.apply(this.nodes.list, this.items.map(function (item) { return self.item(item); }));
    this.nodes.empty.hidden = this.items.length > 0;
    this.nodes.more.hidden = !this.next;
    this.nodes.count.textContent = t("feedback.count", { n: this.items.length }) + (this.next ? "+" : "");
  };

  FeedbackTab.prototype.item = function (item) {
    const t = TP.i18n.t;
    const host = this.host;
    const tourButton = el("button", { cls: "btn btn-small", text: t("feedback.to_tour"),
      attrs: { type: "button" }, data: { action: "tour" } });
    tourButton.addEventListener("click", function () { host.focusTour(String(item.tour_id)); });
    const jumps = [tourButton];
    if (typeof item.alert_key === "string" && item.alert_key) {
      const alertButton = el("button", { cls: "btn btn-small", text: t("feedback.to_alert"),
        attrs: { type: "button" }, data: { action: "alert" } });
      alertButton.addEventListener("click", function () { host.focusAlert(item.alert_key); });
      jumps.push(alertButton);
    }
    return el("li", { cls: "feedback-item", data: { kind: dash(item.kind), tourId: dash(item.tour_id),
      status: dash(item.status) } }, [
      el("div", { cls: "head" }, [
        el("span", { cls: "fb-kind", text: t("feedback.kind." + dash(item.kind)) }),
        el("span", { cls: "fb-score", text: "★ " + dash(item.score) }),
        el("span", { cls: "fb-tour", text: dash(item.tour_id) + " · " + dash(item.route) }),
        el("span", { cls: "fb-day", text: dash(item.day) }),
        el("span", { cls: "fb-who", text: dash(item.traveller) }),
        item.category ? el("span", { cls: "fb-category", text: t("feedback.category", { c: dash(item.category) }) })
          : null,
        el("span", { cls: "fb-status", text: t("feedback.status." + dash(item.status)) }),
      ]),
      item.comment ? el("p", { cls: "comment", text: String(item.comment) }) : null,
      el("div", { cls: "jumps" }, jumps),
    ]);
  };

  /* ---- reports: CSAT and NPS over time, one line per route or region ---- */

  const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  const W = 560;
  const H = 240;
  const PAD = { left: 44, right: 12, top: 12, bottom: 36 };

  function svgEl(name, attrs, children) {
    const node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function svgText(x, y, text, anchor) {
    const node = svgEl("text", { x: x, y: y, "text-anchor": anchor || "middle" });
    node.textContent = text;
    return node;
  }

  /* One chart: periods along x, a value per group and period (null: a gap), and the target as a dashed line. */
  function lineChart(title, periods, series, range, target, format) {
    const plotW = W - PAD.left - PAD.right;
    const plotH = H - PAD.top - PAD.bottom;
    const n = periods.length;
    const x = function (i) { return PAD.left + (n <= 1 ? plotW / 2 : (plotW * i) / (n - 1)); };
    const y = function (v) { return PAD.top + plotH * (1 - (v - range[0]) / (range[1] - range[0])); };
    const parts = [
      svgEl("line", { class: "axis", x1: PAD.left, y1: PAD.top + plotH, x2: PAD.left + plotW, y2: PAD.top + plotH }),
      svgEl("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: PAD.top + plotH }),
      svgText(PAD.left - 6, y(range[1]) + 4, format(range[1]), "end"),
      svgText(PAD.left - 6, y(range[0]) + 4, format(range[0]), "end"),
    ];
    if (target !== null && target !== undefined) {
      parts.push(svgEl("line", { class: "target", x1: PAD.left, y1: y(target), x2: PAD.left + plotW, y2: y(target),
        "data-target": target }));
      parts.push(svgText(PAD.left + plotW, y(target) - 4, TP.i18n.t("reports.target", { v: format(target) }), "end"));
    }
    const step = Math.max(1, Math.ceil(n / 6));
    periods.forEach(function (p, i) {
      if (i % step === 0 || i === n - 1) parts.push(svgText(x(i), PAD.top + plotH + 16, p.start.slice(5)));
    });
    series.forEach(function (s, k) {
      const colour = COLOURS[k % COLOURS.length];
      let d = "";
      let pen = false;
      s.values.forEach(function (v, i) {
        if (v === null || v === undefined) { pen = false; return; }
        d += (pen ? " L " : " M ") + x(i).toFixed(1) + " " + y(v).toFixed(1);
        pen = true;
      });
      const group = svgEl("g", { class: "group", "data-group": s.name }, [
        d ? svgEl("path", { class: "series", d: d.trim(), stroke: colour }) : null,
      ]);
      s.values.forEach(function (v, i) {
        if (v === null || v === undefined) return;
        const dot = svgEl("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 3, fill: colour,
          "data-value": v, "data-period": periods[i].start });
        const tip = svgEl("title");
        tip.textContent = s.name + " · " + periods[i].start + " · " + format(v);
        dot.appendChild(tip);
        group.appendChild(dot);
      });
      parts.push(group);
    });
    const chart = svgEl("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title }, parts);
    const legend = el("ul", { cls: "legend" }, series.map(function (s, k) {
      const swatch = el("span", { cls: "swatch" });
      swatch.style.background = COLOURS[k % COLOURS.length]; // CSSOM: the CSP refuses inline style attributes
      return el("li", { data: { group: s.name } }, [swatch, el("span", { text: s.name })]);
    }));
    return el("figure", { cls: "chart" }, [el("figcaption", { text: title }), chart, legend]);
  }

  function ReportsTab(host, nodes) {
    this.host = host;
    this.nodes = nodes; // form, charts, empty, range
    const self = this;
    nodes.form.addEventListener("submit", function (ev) { ev.preventDefault(); self.load(); });
  }

  ReportsTab.prototype.load = async function () {
    // only the latest request is drawn: an earlier one answering late (a slower range) must not replace it
    const ticket = this.ticket = (this.ticket || 0) + 1;
    const data = await this.host.api("/api/reports" + query(formParams(this.nodes.form)), "what.reports");
    if (ticket !== this.ticket || !data || !Array.isArray(data.periods)) return;
    this.data = data;
    this.render();
  };

  ReportsTab.prototype.render = function () {
    const data = this.data;
    if (!data) return;
    const t = TP.i18n.t;
    const periods = data.periods;
    const names = new Set();
    periods.forEach(function (p) { Object.keys(p.groups || {}).forEach(function (g) { names.add(g); }); });
    const groups = Array.from(names).sort();
    const seriesOf = function (field) {
      return groups.map(function (g) {
        return { name: g, values: periods.map(function (p) {
          const fig = (p.groups || {})[g];
          return fig && typeof fig[field] === "number" ? fig[field] : null;
        }) };
      });
    };
    const targets = data.targets || {};
    const pct = function (v) { return Math.round(v * 100) + "%"; };
    const whole = function (v) { return String(Math.round(v)); };
    this.nodes.range.textContent = dash(data.from) + " – " + dash(data.to);
    this.nodes.empty.hidden = groups.length > 0;
    this.nodes.charts.replaceChildren(
      lineChart(t("reports.csat"), periods, seriesOf("csat"), [0, 1], targets.csat, pct),
      lineChart(t("reports.nps"), periods, seriesOf("nps"), [-100, 100], targets.nps, whole));
  };

  TP.FeedbackTab = FeedbackTab;
  TP.ReportsTab = ReportsTab;
})();
