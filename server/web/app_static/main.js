/* The app's start: the token picks the screens (traveller or guide), nothing waits for the network to draw the
 * first screen, then the link, the service worker and a token refresh start behind it. */
import { t, lang, setLang } from "./i18n.js";
import { el, clear, showError, load, save } from "./dom.js";
import { current, decode, expired, refreshIfDue } from "./token.js";
import { Link } from "./conn.js";
import { Inbox } from "./notices.js";
import { SafetyChecks } from "./safety.js";
import { TravellerScreen } from "./traveller.js";
import { GuideScreen } from "./guide.js";

const root = document.getElementById("screen");
let screen = null;
let link = null;
const REFRESH_CHECK_MS = 3600000;

function header() {
  document.getElementById("outbox-label").textContent = t("outbox");
  const button = document.getElementById("lang");
  button.textContent = t("lang.other");
  button.lang = lang() === "zh" ? "en" : "zh";
  setConn(document.body.dataset.conn);
}

function setConn(state) {
  document.body.dataset.conn = state;
  const key = { online: "conn.online", offline: "conn.offline" }[state] || "conn.connecting";
  document.getElementById("conn").textContent = t(key);
}

function rejoin() {
  if (link) link.close();
  link = null;
  showError(t("err.expired"));
  clear(root).append(el("section", { cls: "card", "data-tp": "rejoin" }, [el("p", { text: t("err.expired") })]));
}

async function checkToken(token, claims) {
  // a refused handshake says nothing about why: ask the API whether the token itself is refused
  try {
    const resp = await fetch(`/api/tours/${encodeURIComponent(claims.tours[0] || "-")}`,
                             { headers: { Authorization: `Bearer ${token}` } });
    if (resp.status === 401) rejoin();
    else if (resp.status === 403 || resp.status === 404) showError(t("err.forbidden"));
  } catch (e) { /* no network: the link keeps retrying */ }
}

async function tourInfo(token, tourId) {
  try {
    const resp = await fetch(`/api/tours/${encodeURIComponent(tourId)}`, { headers: { Authorization: `Bearer ${token}` } });
    if (!resp.ok) return;
    const tour = await resp.json();
    const before = load(`tp.tour.${tourId}`, null);
    save(`tp.tour.${tourId}`, { timezone: tour.timezone, start: tour.start, end: tour.end });
    if (!before || before.timezone !== tour.timezone || before.end !== tour.end) {
      screen.tour = load(`tp.tour.${tourId}`, null);
      screen.render(root);
    }
  } catch (e) { /* offline: the cached tour stays */ }
}

function serviceWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/app/sw.js", { scope: "/app" }).catch(() => {});
  navigator.serviceWorker.ready.then(() => {
    if (navigator.serviceWorker.controller) document.body.dataset.sw = "ready";
    else navigator.serviceWorker.addEventListener("controllerchange", () => { document.body.dataset.sw = "ready"; });
  });
}

function start() {
  header();
  document.getElementById("lang").addEventListener("click", () => {
    setLang(lang() === "zh" ? "en" : "zh");
    header();
    if (screen) screen.render(root);
    else if (document.querySelector("[data-tp=rejoin]")) rejoin();
  });
  serviceWorker();
  let token = current();
  const claims = token && decode(token);
  if (!claims || !["traveller", "guide"].includes(claims.role) || !claims.tours.length) {
    showError(t("err.notoken"));
    clear(root);
    return;
  }
  if (expired(claims)) { rejoin(); return; }
  document.body.dataset.role = claims.role;
  const outbox = document.getElementById("outbox");
  link = new Link({
    role: claims.role, token, sub: `${claims.role}:${claims.sub}`,
    onState: setConn,
    onCount: (n) => { outbox.textContent = String(n); document.body.dataset.outbox = String(n); },
    onAck: (entry, frame) => {
      showError("");
      inbox.acked(entry);
      checks.acked(entry);
      screen.acked(entry, frame);
    },
    onFail: (entry, frame, retrying) => {
      showError(t(`err.${frame.code}`, { message: frame.message || "" }) + (retrying ? "" : ` (${t(`msg.${entry.msg.type}`)})`));
      if (retrying) return;
      inbox.failed(entry);
      checks.failed(entry);
      if (screen.failed) screen.failed(entry);
    },
    onPush: (frame) => {
      if (frame.type === "notice") inbox.add(frame);
      if (frame.type === "safety_check") checks.add(frame);
      screen.pushed(frame);
    },
    onRefused: () => checkToken(link ? link.token : token, claims),
  });
  const inbox = new Inbox(link, claims.role);
  const checks = new SafetyChecks(link);
  const tourId = claims.tours[0];
  screen = claims.role === "guide"
    ? new GuideScreen({ claims, link, inbox, checks, token })
    : new TravellerScreen({ claims, link, inbox, checks, tour: load(`tp.tour.${tourId}`, null) });
  screen.render(root);
  document.body.dataset.ready = "true";
  link.start();
  if (navigator.onLine && claims.role === "traveller") tourInfo(token, tourId);
  const refresh = () => refreshIfDue(token, decode(token)).then((fresh) => {
    if (fresh !== token) { token = fresh; link.token = fresh; screen.token = fresh; }
  });
  refresh();
  setInterval(refresh, REFRESH_CHECK_MS); // an app left open for days keeps a live token
}

start();
