/* The token on the device: read from #token= once, kept in localStorage, decoded (not verified: the server does
 * that) to pick the screens, and refreshed before it expires. */
const KEY = "tp.token";
const REFRESH_WHEN_LEFT = 0.5; // refresh once half its life is gone (at most once a day for a tour's token)

export function decode(token) {
  try {
    const body = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(body + "=".repeat((4 - (body.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims.role === "string" ? claims : null;
  } catch (e) {
    return null;
  }
}

/* the token from the URL fragment (then removed from the address bar) or the one kept */
export function current() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    const token = decodeURIComponent(match[1]);
    localStorage.setItem(KEY, token);
    localStorage.setItem("tp.token.got", String(Date.now()));
    history.replaceState(null, "", location.pathname);
    return token;
  }
  return localStorage.getItem(KEY);
}

export function expired(claims) { return !claims || claims.exp * 1000 <= Date.now(); }

/* ask for a fresh token when half the current one's life (as seen from this phone) is gone */
export async function refreshIfDue(token, claims) {
  const got = Number(localStorage.getItem("tp.token.got") || Date.now());
  const life = claims.exp * 1000 - got;
  if (Date.now() < got + life * REFRESH_WHEN_LEFT || !navigator.onLine) return token;
  try {
    const resp = await fetch("/api/tokens/refresh", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
    if (!resp.ok) return token;
    const fresh = (await resp.json()).token;
    localStorage.setItem(KEY, fresh);
    localStorage.setItem("tp.token.got", String(Date.now()));
    return fresh;
  } catch (e) {
    return token;
  }
}
