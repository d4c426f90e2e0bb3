/* The join page: one tap trades the code in the URL for a traveller token, then opens the app with it. */
import { t, lang, setLang } from "./i18n.js";

const code = decodeURIComponent(location.pathname.split("/").pop() || "");
const button = document.getElementById("join");
const error = document.getElementById("error");

function texts() {
  document.getElementById("join-title").textContent = t("join.title");
  document.getElementById("join-help").textContent = t("join.help");
  document.getElementById("name-label").textContent = t("join.name");
  button.textContent = t("join.button");
  const toggle = document.getElementById("lang");
  toggle.textContent = t("lang.other");
  toggle.lang = lang() === "zh" ? "en" : "zh";
}

function fail(key) {
  error.textContent = t(key);
  error.hidden = false;
  button.disabled = false;
  button.textContent = t("join.button");
}

async function join() {
  button.disabled = true;
  button.textContent = t("join.busy");
  error.hidden = true;
  try {
    const resp = await fetch("/api/join", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code, name: document.getElementById("name").value.trim() }) });
    if (resp.status === 429) { fail("err.join429"); setTimeout(join, 60000); return; }
    if (!resp.ok) { fail(resp.status === 404 ? "err.join404" : "err.network"); return; }
    const { token, tour_id: tourId, tour } = await resp.json();
    // the tour's timezone before the app opens: its first rating is on the tour's day even if the tour's details
    // do not arrive (the app keeps this under the same key when they do)
    if (tour) localStorage.setItem(`tp.tour.${tourId}`, JSON.stringify(tour));
    location.assign(`/app#token=${encodeURIComponent(token)}`);
  } catch (e) {
    fail("err.network");
  }
}

document.getElementById("lang").addEventListener("click", () => { setLang(lang() === "zh" ? "en" : "zh"); texts(); });
button.addEventListener("click", join);
texts();
