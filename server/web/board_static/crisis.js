/* tourpulse board: the crisis panel (contract §11) — the live roll-up of recent safety checks per tour (safe /
 * need help / unanswered / unknown, with the CSV for the authorities) and the tally of notices with choices.
 *
 * Self-contained: it polls GET /api/crisis every POLL_MS while the board is shown, with the board's token (kept in
 * sessionStorage by board.js), and builds its panel at the top of the side column. All text goes through
 * textContent (TP.dom.el). window.tourpulseCrisis.state() → the last answer, for tests.
 */
(function () {
  "use strict";
  const TP = window.TP;
  const el = TP.dom.el;
  const POLL_MS = 3000;
  const TOKEN_KEY = "tourpulse.token";
  const WORDS = {
    en: { title: "Crisis", empty: "No safety checks or notices with choices.", check: "Safety check",
      deadline: "deadline", tour: "Tour", safe: "Safe", need_help: "Need help", unanswered: "Unanswered",
      unknown: "Unknown", total: "All tours", csv: "CSV", notice: "Notice", reads: "read", recipients: "recipients" },
    zh: { title: "危机", empty: "没有安全确认或选择题通知。", check: "安全确认", deadline: "截止", tour: "团",
      safe: "安全", need_help: "需要帮助", unanswered: "未回复", unknown: "未知", total: "全部", csv: "CSV",
      notice: "通知", reads: "已读", recipients: "接收人" },
  };
  let last = null;

  function w(key) {
    const lang = TP.i18n && TP.i18n.lang ? TP.i18n.lang() : "en";
    return (WORDS[lang] || WORDS.en)[key] || WORDS.en[key] || key;
  }

  function token() {
    try { return window.sessionStorage.getItem(TOKEN_KEY) || window.localStorage.getItem(TOKEN_KEY); }
    catch (_) { return null; }
  }

  function panel() {
    let node = document.getElementById("crisis");
    if (node) return node;
    const side = document.querySelector("#board .side");
    if (!side) return null;
    node = el("section", { cls: "panel", attrs: { id: "crisis", "aria-labelledby": "crisis-title" } }, [
      el("div", { cls: "panel-head" }, [el("h2", { text: w("title"), attrs: { id: "crisis-title" } })]),
      el("div", { attrs: { id: "crisis-body", "aria-live": "polite" } }),
    ]);
    side.insertBefore(node, side.firstChild);
    return node;
  }

  async function download(checkId) {
    const res = await fetch("/api/safety-checks/" + encodeURIComponent(checkId) + "?format=csv", {
      headers: { Authorization: "Bearer " + token() }, cache: "no-store" });
    if (!res.ok) return;
    const url = URL.createObjectURL(await res.blob());
    const a = el("a", { attrs: { href: url, download: "safety-check-" + checkId + ".csv" } });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  const COLUMNS = ["safe", "need_help", "unanswered", "unknown"];

  function countsRow(label, counts) {
    return el("tr", null, [el("td", { text: label, attrs: { "data-label": w("tour") } })].concat(
      COLUMNS.map(function (k) {
        return el("td", { text: counts[k], cls: "num crisis-" + k, attrs: { "data-label": w(k), "data-count": k } });
      })));
  }

  function checkView(check) {
    const link = el("button", { text: w("csv"), cls: "btn btn-small", attrs: { type: "button", "data-csv": check.check_id } });
    link.addEventListener("click", function () { download(check.check_id); });
    const head = el("thead", null, [el("tr", null, [el("th", { text: w("tour") })].concat(
      COLUMNS.map(function (k) { return el("th", { text: w(k) }); })))]);
    const body = el("tbody", null, Object.keys(check.tours).map(function (tourId) {
      return countsRow(tourId, check.tours[tourId]);
    }).concat([countsRow(w("total"), check.overall)]));
    return el("article", { cls: "crisis-check", data: { checkId: check.check_id } }, [
      el("p", null, [el("strong", { text: w("check") + ": " }), el("span", { text: check.message }),
        el("span", { cls: "muted", text: " · " + w("deadline") + " " + check.deadline + " " }), link]),
      el("div", { cls: "table-wrap" }, [el("table", { cls: "grid" }, [head, body])]),
    ]);
  }

  function groupView(group) {
    return el("article", { cls: "crisis-group", data: { groupId: group.group_id } }, [
      el("p", null, [el("strong", { text: w("notice") + ": " }), el("span", { text: group.title }),
        el("span", { cls: "muted", text: " · " + group.reads + " " + w("reads") + " / " + group.recipients + " " + w("recipients") })]),
      el("ol", { cls: "crisis-choices" }, group.choices.map(function (c) {
        return el("li", null, [el("span", { text: c.text }), el("span", { cls: "num", text: " " + c.count, data: { count: c.count } })]);
      })),
    ]);
  }

  /* A check already shown keeps its article and its CSV button: only its table is swapped. The panel is polled
   * every few seconds, and a button replaced between mousedown and mouseup loses the supervisor's click. */
  function keptCheck(shown, check) {
    const fresh = checkView(check);
    const old = shown[check.check_id];
    if (!old) return fresh;
    const table = fresh.querySelector(".table-wrap");
    if (!old.querySelector(".table-wrap").isEqualNode(table)) old.querySelector(".table-wrap").replaceWith(table);
    return old;
  }

  function render(doc) {
    const node = panel();
    if (!node) return;
    const body = node.querySelector("#crisis-body");
    const shown = {};
    body.querySelectorAll("article.crisis-check").forEach(function (a) { shown[a.dataset.checkId] = a; });
    const items = (doc.checks || []).map(function (check) { return keptCheck(shown, check); })
      .concat((doc.groups || []).filter(function (g) { return g.choices && g.choices.length; }).map(groupView));
    if (!items.length) items.push(el("p", { cls: "empty", text: w("empty") }));
    // what is shown as it would be drawn stays; replaceChildren would take a kept article out and back in
    TP.dom.place(body, items.map(function (item, i) {
      const shown = body.children[i];
      return shown && item !== shown && item.isEqualNode(shown) ? shown : item;
    }));
    node.hidden = false;
  }

  async function once() {
    const board = document.getElementById("board");
    const tok = token();
    if (!board || board.hidden || !tok) return;
    try {
      const res = await fetch("/api/crisis", { headers: { Authorization: "Bearer " + tok, Accept: "application/json" },
        cache: "no-store" });
      if (res.ok) {
        last = await res.json();
        render(last);
      }
    } catch (_) { /* offline: the board's banner says so; try again next time */ }
  }

  async function poll() {
    await once();
    setTimeout(poll, POLL_MS);
  }

  window.tourpulseCrisis = { state: function () { return last; }, refresh: once };
  poll();
})();
