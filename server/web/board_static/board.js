/* tourpulse board: wiring — token, connection, messages, commands, polling, filters, language, sound.
 *
 * Loaded last (all scripts are `defer`, so they run in order after parsing). Exposes
 * window.tourpulseBoard.state() → {connected, connection, synced, lastSeq, alerts, lang} for tests.
 */
(function () {
  "use strict";
  const TP = window.TP;
  const t = TP.i18n.t;
  const el = TP.dom.el;

  const TOKEN_KEY = "tourpulse.token";
  const MUTE_KEY = "tourpulse.muted";
  const POLL_MS = 15000;
  const TOUR_REFRESH_DELAY_MS = 800;
  const TOUR_REFRESH_MAX = 5;
  const TOAST_MS = { ok: 2500, warn: 6000, error: 10000 };
  const TOAST_MAX = 5;
  const BEEP_GAP_MS = 1500;

  const $ = function (id) { return document.getElementById(id); };

  const store = {
    token: null,
    claims: null,
    lastSeq: null,
    synced: false,
    muted: false,
    pollTimer: null,
    tourTimer: null,
    tourIds: new Set(),
    httpFailed: {},
    loading: {},
  };

  /* ---- storage and token ---- */

  function storageGet(area, key) {
    try { return window[area].getItem(key); } catch (_) { return null; }
  }

  function storageSet(area, key, value) {
    try {
      if (value === null) window[area].removeItem(key);
      else window[area].setItem(key, value);
    } catch (_) { /* storage disabled: keep it in memory only */ }
  }

  /* #token=… in the address → sessionStorage, then out of the address bar. */
  function takeToken() {
    const hash = window.location.hash.replace(/^#/, "");
    if (hash) {
      const params = new URLSearchParams(hash);
      const token = (params.get("token") || "").trim();
      if (token) {
        storageSet("sessionStorage", TOKEN_KEY, token);
        store.token = token;
        params.delete("token");
        const rest = params.toString();
        window.history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? "#" + rest : ""));
      }
    }
    return store.token || storageGet("sessionStorage", TOKEN_KEY);
  }

  /* The token's claims, for display only (the server verifies the signature). */
  function decodeClaims(token) {
    try {
      const parts = token.split(".");
      if (parts.length !== 3) return null;
      let b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
      while (b64.length % 4) b64 += "=";
      const bin = window.atob(b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i += 1) bytes[i] = bin.charCodeAt(i);
      const claims = JSON.parse(new TextDecoder().decode(bytes));
      return claims && typeof claims === "object" ? claims : null;
    } catch (_) {
      return null;
    }
  }

  function claimRegions() {
    const regions = store.claims && Array.isArray(store.claims.regions) ? store.claims.regions : [];
    return regions.filter(function (r) { return typeof r === "string" && r && r !== "*"; });
  }

  function renderWhoami() {
    const c = store.claims;
    if (!c) { $("whoami").textContent = ""; return; }
    const regions = Array.isArray(c.regions) && c.regions.indexOf("*") >= 0 ? t("regions.all")
      : claimRegions().join(", ") || TP.dom.DASH;
    $("whoami").textContent = t("whoami", { sub: TP.dom.dash(c.sub), regions: regions });
  }

  /* ---- toasts ---- */

  function toast(text, kind) {
    const level = kind || "ok";
    const box = $("toasts");
    const close = el("button", { cls: "toast-close", text: "×", attrs: { type: "button", "aria-label": t("toast.dismiss") } });
    const node = el("div", { cls: "toast toast-" + level, attrs: { role: level === "error" ? "alert" : "status" } },
      [el("span", { cls: "toast-text", text: text }), close]);
    const remove = function () { if (node.parentNode) node.parentNode.removeChild(node); };
    close.addEventListener("click", remove);
    box.appendChild(node);
    while (box.children.length > TOAST_MAX) box.removeChild(box.firstChild);
    setTimeout(remove, TOAST_MS[level] || TOAST_MS.warn);
  }

  /* ---- sound: a short WebAudio beep; the AudioContext is made on the first user gesture ---- */

  let audio = null;
  let lastBeep = 0;

  function unlockAudio() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      if (!audio) audio = new Ctx();
      if (audio.state === "suspended") audio.resume();
    } catch (_) { /* no audio on this device */ }
  }

  function beep() {
    if (store.muted || !audio || audio.state !== "running") return;
    const now = Date.now();
    if (now - lastBeep < BEEP_GAP_MS) return;
    lastBeep = now;
    const t0 = audio.currentTime + 0.01;
    [[880, 0], [660, 0.2], [880, 0.4]].forEach(function (tone) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = tone[0];
      gain.gain.setValueAtTime(0.0001, t0 + tone[1]);
      gain.gain.exponentialRampToValueAtTime(0.15, t0 + tone[1] + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + tone[1] + 0.16);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(t0 + tone[1]);
      osc.stop(t0 + tone[1] + 0.18);
    });
  }

  function renderMute() {
    const button = $("mute-toggle");
    button.textContent = store.muted ? t("sound.off") : t("sound.on");
    button.setAttribute("aria-pressed", store.muted ? "true" : "false");
    button.dataset.muted = store.muted ? "1" : "0";
  }

  /* ---- the alert list and panels ---- */

  const list = new TP.AlertList($("alert-list"), $("alerts-empty"), $("alerts-count"), { onAction: onAction });
  const tours = new TP.ToursPanel($("tours-table"), $("tours-empty"), $("tours-stamp"));
  const pool = new TP.PoolPanel($("pool-table"), $("pool-empty"), $("pool-summary"));

  /* ---- connection ---- */

  function wsUrl() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const since = store.lastSeq ? "&since=" + encodeURIComponent(store.lastSeq) : "";
    return scheme + "//" + window.location.host + "/ws/board?token=" + encodeURIComponent(store.token || "") + since;
  }

  const conn = new TP.BoardConnection({
    url: wsUrl,
    since: function () { return store.lastSeq; },
    onMessage: onMessage,
    onState: renderConn,
    onCommandDone: onCommandDone,
    onRetry: function (failures) { if (failures === 3 || failures % 10 === 0) loadPool(); },
    onSubscribeError: function (msg) { toast(errorText(t("conn.online"), msg), "warn"); },
    onResumed: function () { setSynced(true); },
  });

  function onMessage(msg) {
    if (msg.type === "snapshot") {
      if (typeof msg.seq === "string") store.lastSeq = msg.seq;
      list.snapshot(msg.alerts);
      setSynced(true);
      refreshFilters();
    } else if (msg.type === "alert") {
      if (typeof msg.seq === "string") {
        const order = store.lastSeq ? TP.dom.compareSeq(msg.seq, store.lastSeq) : 1;
        if (order !== null && order <= 0) return; // already seen: nothing twice
        store.lastSeq = msg.seq;
      }
      const cue = list.upsert(msg.alert, false);
      list.render();
      refreshFilters();
      if (cue) beep();
      if (msg.alert && typeof msg.alert.tour_id === "string") scheduleTourRefresh(msg.alert.tour_id);
    } else if (msg.type === "error") {
      toast(errorText(TP.dom.dash(msg.code), msg), "error");
    }
  }

  function setSynced(synced) {
    store.synced = synced;
    document.body.dataset.synced = synced ? "true" : "false";
  }

  function renderConn(state) {
    if (state !== "online") setSynced(false);
    const pill = $("conn-state");
    pill.dataset.state = state;
    pill.textContent = t(state === "online" ? "conn.online" : state === "offline" ? "conn.offline" : "conn.connecting");
    document.body.dataset.connection = state;
    renderBanner();
  }

  function renderBanner() {
    const banner = $("offline-banner");
    const show = conn.state === "offline" || (conn.state === "connecting" && conn.failuresSinceOpen > 0);
    banner.hidden = !show;
    if (!show) return;
    const left = conn.retryAt ? Math.ceil((conn.retryAt - Date.now()) / 1000) : 0;
    banner.textContent = conn.state === "offline" && left > 0 ? t("banner.offline", { n: left }) : t("banner.now");
  }

  /* ---- commands ---- */

  function errorText(action, answer) {
    const code = answer && typeof answer.code === "string" ? answer.code : "";
    const known = code && t("error." + code) !== "error." + code ? t("error." + code) : code;
    const reason = [known, answer && answer.message ? String(answer.message) : "",
      answer && answer.field ? t("error.field", { field: String(answer.field) }) : ""]
      .filter(function (s, i, all) { return s && all.indexOf(s) === i; }).join(" · ");
    return t("toast.error", { action: action, reason: reason || TP.dom.DASH });
  }

  function onAction(action, alertId, value, row, input) {
    unlockAudio();
    const frame = { alert_id: alertId };
    if (action === "ack") {
      frame.type = "ack_alert";
    } else if (action === "assign") {
      if (!value) {
        toast(t("toast.need_assignee"), "warn");
        if (input) input.focus();
        return;
      }
      frame.type = "assign_alert";
      frame.assignee = value;
    } else if (action === "resolve") {
      frame.type = "resolve_alert";
      frame.note = value || "";
    } else {
      return;
    }
    const sent = conn.command({ action: action, alertId: alertId, input: input, value: value, frame: frame });
    if (!sent) {
      toast(t("toast.offline"), "warn");
      return;
    }
    list.setBusy(alertId, true);
  }

  function onCommandDone(cmd, answer) {
    list.setBusy(cmd.alertId, false);
    const action = t("action." + cmd.action);
    if (answer.type === "ack") {
      if (cmd.input && cmd.input.value.trim() === (cmd.value || "")) cmd.input.value = "";
      toast(t("toast.ok", { action: action }), "ok");
    } else if (answer.type === "error") {
      toast(errorText(action, answer), "error");
    } else {
      toast(t("toast.timeout", { action: action }), "warn");
    }
  }

  /* ---- HTTP ---- */

  async function api(path, what) {
    let res;
    try {
      res = await fetch(path, {
        headers: { Authorization: "Bearer " + store.token, Accept: "application/json" },
        cache: "no-store",
        credentials: "same-origin",
      });
    } catch (_) {
      return null; // network down: the connection banner already says so
    }
    if (res.status === 401) {
      signOut(true);
      return null;
    }
    if (!res.ok) {
      if (what && !store.httpFailed[what]) {
        toast(res.status === 403 ? t("toast.forbidden", { what: t(what) })
          : t("toast.http", { what: t(what), status: res.status }), "warn");
      }
      if (what) store.httpFailed[what] = true;
      return null;
    }
    if (what) store.httpFailed[what] = false;
    try { return await res.json(); } catch (_) { return null; }
  }

  /* The raw body of a GET (the feedback CSV), or null after the same toasts as api(). */
  async function fetchRaw(path) {
    let res;
    try {
      res = await fetch(path, { headers: { Authorization: "Bearer " + store.token }, cache: "no-store",
        credentials: "same-origin" });
    } catch (_) {
      return null;
    }
    if (!res.ok) {
      toast(t("toast.http", { what: t("what.feedback"), status: res.status }), "warn");
      return null;
    }
    return res.blob();
  }

  /* ---- tabs: live, feedback, reports ---- */

  function showTab(name) {
    document.querySelectorAll(".tab[data-tab]").forEach(function (tab) {
      tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
    });
    document.querySelectorAll("[data-tab-panel]").forEach(function (panel) {
      panel.hidden = panel.dataset.tabPanel !== name;
    });
    document.body.dataset.tab = name;
    if (name === "feedback" && !feedbackTab.loaded) { feedbackTab.loaded = true; feedbackTab.load(false); }
    if (name === "reports" && !reportsTab.data) reportsTab.load();
  }

  function spotlight(node) {
    node.scrollIntoView({ block: "center" });
    node.classList.add("focus");
    setTimeout(function () { node.classList.remove("focus"); }, 4000);
  }

  function focusTour(tourId) {
    showTab("live");
    const row = Array.from(document.querySelectorAll("#tours-table tr[data-tour-id]")).find(function (r) {
      return r.dataset.tourId === tourId;
    });
    if (row && !row.hidden) spotlight(row);
    else toast(t("feedback.tour_gone", { tour: tourId }), "warn");
  }

  function focusAlert(dedupKey) {
    showTab("live");
    const row = Array.from(document.querySelectorAll("li.alert[data-dedup-key]")).find(function (r) {
      return r.dataset.dedupKey === dedupKey;
    });
    if (row && !row.hidden) spotlight(row);
    else toast(t("feedback.alert_gone"), "warn");
  }

  const insightsHost = { api: api, fetchRaw: fetchRaw, focusTour: focusTour, focusAlert: focusAlert };
  const feedbackTab = new TP.FeedbackTab(insightsHost, {
    form: $("feedback-filters"), list: $("feedback-list"), empty: $("feedback-empty"), more: $("feedback-more"),
    count: $("feedback-count"), csv: $("feedback-csv"),
  });
  const reportsTab = new TP.ReportsTab(insightsHost, {
    form: $("reports-filters"), charts: $("reports-charts"), empty: $("reports-empty"), range: $("reports-range"),
  });
  document.querySelectorAll(".tab[data-tab]").forEach(function (tab) {
    tab.addEventListener("click", function () { showTab(tab.dataset.tab); });
  });

  async function loadTours() {
    if (store.loading.tours || !store.token) return;
    store.loading.tours = true;
    try {
      const data = await api("/api/tours?active=1", "what.tours");
      if (data && Array.isArray(data.tours)) {
        tours.setAll(data.tours);
        refreshFilters();
      }
    } finally {
      store.loading.tours = false;
    }
  }

  async function loadPool() {
    if (store.loading.pool || !store.token) return;
    store.loading.pool = true;
    try {
      const data = await api("/api/pool", "what.pool");
      if (data && Array.isArray(data.resources)) {
        pool.setAll(data.resources);
        refreshFilters();
      }
    } finally {
      store.loading.pool = false;
    }
  }

  /* An alert about a tour: refresh that tour's row soon (batched). */
  function scheduleTourRefresh(tourId) {
    store.tourIds.add(tourId);
    if (store.tourTimer) return;
    store.tourTimer = setTimeout(async function () {
      store.tourTimer = null;
      const ids = Array.from(store.tourIds);
      store.tourIds.clear();
      if (ids.length > TOUR_REFRESH_MAX) { loadTours(); return; }
      let fallback = false;
      for (const id of ids) {
        const data = await api("/api/tours/" + encodeURIComponent(id), null);
        const tour = data && data.tour_id !== undefined ? data : data && data.tour;
        if (!tour || typeof tour.live !== "object" || !tours.setOne(tour)) fallback = true;
      }
      if (fallback) loadTours();
    }, TOUR_REFRESH_DELAY_MS);
  }

  function poll() {
    loadTours();
    loadPool();
  }

  /* ---- filters ---- */

  function fillSelect(select, values, labelOf) {
    const current = select.value;
    if (current && values.indexOf(current) < 0) values = values.concat([current]);
    const key = TP.i18n.lang() + "|" + values.join("\u0000");
    if (select.dataset.key === key) return;
    select.dataset.key = key;
    const options = [el("option", { text: t("filter.all"), attrs: { value: "" } })].concat(values.map(function (v) {
      return el("option", { text: labelOf(v), attrs: { value: v } });
    }));
    select.replaceChildren.apply(select, options);
    select.value = current;
  }

  function refreshFilters() {
    const regions = new Set(list.values("region").concat(tours.regions(), pool.regions(), claimRegions()));
    fillSelect($("filter-region"), Array.from(regions).sort(), function (v) { return v; });
    fillSelect($("filter-severity"), TP.SEVERITIES.slice(), function (v) { return TP.i18n.label("severity", v); });
    fillSelect($("filter-kind"), list.values("kind"), function (v) { return TP.i18n.label("kind", v); });
  }

  function applyFilters() {
    const region = $("filter-region").value;
    list.filters = { region: region, severity: $("filter-severity").value, kind: $("filter-kind").value };
    list.render();
    tours.region = region;
    pool.region = region;
    tours.render();
    pool.render();
  }

  /* ---- language ---- */

  function relabel() {
    TP.i18n.apply(document);
    $("lang-toggle").setAttribute("aria-label", t("lang.label"));
    renderWhoami();
    renderMute();
    renderConn(conn.state);
    refreshFilters();
    list.relabel();
    tours.render();
    pool.render();
    feedbackTab.render();
    reportsTab.render();
  }

  /* ---- start, sign in, sign out ---- */

  function start(token) {
    store.token = token;
    store.claims = decodeClaims(token);
    $("login").hidden = true;
    $("board").hidden = false;
    renderWhoami();
    refreshFilters();
    conn.start();
    poll();
    clearInterval(store.pollTimer);
    store.pollTimer = setInterval(function () { if (!document.hidden) poll(); }, POLL_MS);
  }

  function signOut(rejected) {
    storageSet("sessionStorage", TOKEN_KEY, null);
    store.token = null;
    store.claims = null;
    store.lastSeq = null;
    clearInterval(store.pollTimer);
    conn.stop();
    list.snapshot([]);
    $("board").hidden = true;
    $("login").hidden = false;
    $("login-error").hidden = !rejected;
    $("token-input").value = "";
    $("token-input").focus();
  }

  function submitToken() {
    const token = $("token-input").value.trim();
    if (!token) { $("token-input").focus(); return; }
    storageSet("sessionStorage", TOKEN_KEY, token);
    $("login-error").hidden = true;
    start(token);
  }

  /* ---- events ---- */

  document.addEventListener("pointerdown", unlockAudio, true);
  document.addEventListener("keydown", unlockAudio, true);
  document.addEventListener("click", unlockAudio, true);

  $("lang-toggle").addEventListener("click", function () {
    TP.i18n.setLang(TP.i18n.lang() === "zh" ? "en" : "zh");
    relabel();
  });
  $("mute-toggle").addEventListener("click", function () {
    store.muted = !store.muted;
    storageSet("localStorage", MUTE_KEY, store.muted ? "1" : null);
    renderMute();
  });
  $("signout").addEventListener("click", function () { signOut(false); });
  $("token-submit").addEventListener("click", submitToken);
  $("token-input").addEventListener("keydown", function (ev) { if (ev.key === "Enter") submitToken(); });
  ["filter-region", "filter-severity", "filter-kind"].forEach(function (id) {
    $(id).addEventListener("change", applyFilters);
  });
  window.addEventListener("online", function () { conn.retryNow(); });
  window.addEventListener("offline", function () { conn.drop(); });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !store.token) return;
    conn.retryNow();
    poll();
  });

  setInterval(function () {
    const now = Date.now();
    list.tick(now);
    tours.tick(now);
    renderBanner();
  }, 1000);

  window.tourpulseBoard = {
    state: function () {
      return {
        connected: conn.state === "online",
        connection: conn.state,
        synced: store.synced,
        lastSeq: store.lastSeq,
        alerts: list.activeCount(),
        lang: TP.i18n.lang(),
      };
    },
    drop: function () { conn.drop(); },
    reconnect: function () { conn.retryNow(); },
  };

  store.muted = storageGet("localStorage", MUTE_KEY) === "1";
  relabel();
  const token = takeToken();
  if (token) start(token);
  else signOut(false);
})();
