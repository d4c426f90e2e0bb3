/* The app's service worker: keeps the shell (page, styles, scripts) so the app opens with no network at all.
 * The server writes VERSION (a digest of every file) and SHELL in when it serves this file, so any change to the
 * app installs a new worker, which fetches the new shell and deletes the old cache. API calls and the WebSocket
 * are never cached: the outbox, not the cache, carries what the person writes offline. */
const VERSION = "__VERSION__";
const SHELL = ["__SHELL__"];
const CACHE = `tp-shell-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith("tp-shell-") && n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

let opened = null; // the shell's cache, opened once per worker life (caches.match would search every cache)
function shell() { return opened || (opened = caches.open(CACHE)); }

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  const isShell = url.pathname === "/app" || url.pathname.startsWith("/app/static/");
  if (!isShell) return;
  // cache first: on a mountain road the network may take tens of seconds to fail
  const key = url.pathname === "/app" ? "/app" : url.pathname;
  event.respondWith(shell().then((cache) => cache.match(key)).then((hit) => hit || fetch(event.request)));
});
