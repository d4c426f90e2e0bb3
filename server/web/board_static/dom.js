/* tourpulse board: small pure helpers — safe DOM building, formatting, stream ids, the sparkline.
 *
 * Every node is built with createElement / createElementNS and filled with textContent or setAttribute:
 * text from the server (summaries, comments, names) is never parsed as HTML.
 */
(function () {
  "use strict";
  const TP = (window.TP = window.TP || {});
  const SVG_NS = "http://www.w3.org/2000/svg";
  const DASH = "—";

  /* el("li", {cls, text, attrs: {name: value}, data: {alertId: value}}, [children]) */
  function el(tag, opts, children) {
    const node = document.createElement(tag);
    fill(node, opts);
    if (children) children.forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function fill(node, opts) {
    if (!opts) return node;
    if (opts.cls) node.setAttribute("class", opts.cls);
    if (opts.text !== undefined) node.textContent = opts.text === null ? DASH : String(opts.text);
    if (opts.attrs) {
      Object.keys(opts.attrs).forEach(function (name) {
        const value = opts.attrs[name];
        if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
      });
    }
    if (opts.data) {
      Object.keys(opts.data).forEach(function (name) {
        const value = opts.data[name];
        if (value !== null && value !== undefined) node.dataset[name] = String(value);
      });
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    if (attrs) Object.keys(attrs).forEach(function (name) { node.setAttribute(name, String(attrs[name])); });
    return node;
  }

  /* A value for display: "—" when missing. */
  function dash(value) {
    if (value === null || value === undefined || value === "") return DASH;
    if (typeof value === "number" && !isFinite(value)) return DASH;
    if (typeof value === "object") {
      try { return JSON.stringify(value); } catch (_) { return DASH; }
    }
    return String(value);
  }

  function num(value) {
    return typeof value === "number" && isFinite(value) ? value : null;
  }

  function fixed(value, digits) {
    const n = num(value);
    return n === null ? DASH : n.toFixed(digits);
  }

  function percent(value) {
    const n = num(value);
    if (n === null) return DASH;
    return Math.round(n <= 1 ? n * 100 : n) + "%";
  }

  /* ISO 8601 → epoch ms, or null. */
  function parseTime(iso) {
    if (typeof iso !== "string" || !iso) return null;
    const ms = Date.parse(iso);
    return isNaN(ms) ? null : ms;
  }

  /* "3m 12s", "2h 5m", "1d 3h" (or 3分12秒 …): the two largest units. */
  function duration(ms) {
    const t = TP.i18n.t;
    let s = Math.max(0, Math.floor(ms / 1000));
    const parts = [[Math.floor(s / 86400), "unit.d"], [Math.floor(s / 3600) % 24, "unit.h"],
      [Math.floor(s / 60) % 60, "unit.m"], [s % 60, "unit.s"]];
    let first = 0;
    while (first < parts.length - 1 && parts[first][0] === 0) first += 1;
    return parts.slice(first, first + 2)
      .map(function (p) { return p[0] + t(p[1]); })
      .join(t("unit.sep"));
  }

  function clock(ms) {
    const d = new Date(ms);
    const pad = function (n) { return n < 10 ? "0" + n : String(n); };
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  /* Redis stream ids "ms-n" compared as two integers; null when unparsable. */
  function parseSeq(seq) {
    const m = /^(\d+)-(\d+)$/.exec(typeof seq === "string" ? seq : "");
    return m ? [Number(m[1]), Number(m[2])] : null;
  }

  /* -1, 0, 1 — or null if either is not a stream id. */
  function compareSeq(a, b) {
    const x = parseSeq(a);
    const y = parseSeq(b);
    if (!x || !y) return null;
    if (x[0] !== y[0]) return x[0] < y[0] ? -1 : 1;
    if (x[1] !== y[1]) return x[1] < y[1] ? -1 : 1;
    return 0;
  }

  /* The trip's daily means as a small inline SVG (scores 1..5). */
  function sparkline(days, threshold) {
    const W = 96;
    const H = 28;
    const PAD = 3;
    const list = (Array.isArray(days) ? days : [])
      .filter(function (d) { return d && typeof d === "object"; })
      .slice()
      .sort(function (a, b) { return String(a.day).localeCompare(String(b.day)); });
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, class: "spark", role: "img" });
    const title = svg("title");
    title.textContent = list.length ? list.map(function (d) {
      return TP.i18n.t("trend.day", { day: dash(d.day), mean: fixed(d.mean, 2), count: dash(d.count) });
    }).join("\n") : DASH;
    root.appendChild(title);
    const limit = threshold === undefined ? 4 : threshold;
    // scale from the lowest score shown (at most one point under the threshold) up to 5, so drops are visible
    const means = list.map(function (d) { return num(d.mean); }).filter(function (m) { return m !== null; });
    const lo = Math.max(1, Math.min(Math.floor(Math.min.apply(null, means.concat([limit - 1]))), 4));
    const y = function (score) { return PAD + (5 - Math.min(5, Math.max(lo, score))) / (5 - lo) * (H - 2 * PAD); };
    root.appendChild(svg("line", { x1: 0, x2: W, y1: y(limit), y2: y(limit), class: "spark-threshold" }));
    if (!list.length) return root;
    const step = list.length > 1 ? (W - 2 * PAD) / (list.length - 1) : 0;
    let segment = [];
    const dots = [];
    const flush = function () {
      if (segment.length > 1) root.appendChild(svg("polyline", { points: segment.join(" "), class: "spark-line" }));
      segment = [];
    };
    list.forEach(function (d, i) {
      const mean = num(d.mean);
      if (mean === null) { flush(); return; }
      const x = list.length > 1 ? PAD + i * step : W / 2;
      segment.push(x.toFixed(1) + "," + y(mean).toFixed(1));
      dots.push(svg("circle", {
        cx: x.toFixed(1), cy: y(mean).toFixed(1), r: i === list.length - 1 ? 2.6 : 1.8,
        class: mean < limit ? "spark-dot spark-low" : "spark-dot",
      }));
    });
    flush();
    dots.forEach(function (dot) { root.appendChild(dot); });
    return root;
  }

  /* A countdown element ([data-deadline] = an ISO time): "due in 1h 5m" / "overdue 3m", refreshed each second. */
  function tickDeadline(node, now) {
    const t = TP.i18n.t;
    const due = parseTime(node.dataset.deadline);
    if (due === null) {
      node.textContent = t("deadline.none");
      return;
    }
    const left = due - now;
    node.textContent = left >= 0 ? t("deadline.in", { t: duration(left) }) : t("deadline.over", { t: duration(-left) });
    node.classList.toggle("overdue", left < 0);
    node.classList.toggle("soon", left >= 0 && left < 10 * 60 * 1000);
  }

  /* Puts `nodes` in `box` in this order, moving only what is out of place: a node already where it belongs is never
   * taken out and put back (a node taken out under the pointer loses the click, and the focus). */
  function place(box, nodes) {
    nodes.forEach(function (node, i) { if (box.children[i] !== node) box.insertBefore(node, box.children[i] || null); });
    while (box.children.length > nodes.length) box.removeChild(box.lastChild);
  }

  TP.dom = {
    el: el,
    place: place,
    tickDeadline: tickDeadline,
    fill: fill,
    svg: svg,
    dash: dash,
    num: num,
    fixed: fixed,
    percent: percent,
    parseTime: parseTime,
    duration: duration,
    clock: clock,
    parseSeq: parseSeq,
    compareSeq: compareSeq,
    sparkline: sparkline,
    DASH: DASH,
  };
})();
