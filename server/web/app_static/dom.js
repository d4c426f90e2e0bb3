/* Safe DOM building: every node from createElement, every text through textContent. Server and user text
 * (titles, bodies, summaries, names) is never parsed as HTML. */
export function el(tag, props, children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "cls") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children || []) if (child) node.append(child);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

/* Shows `fresh` in `container`, keeping every shown node whose markup equals its fresh copy: a list redrawn when
 * something else in it changed (a new notice, an ack) neither moves a finger's target (a node replaced between
 * mousedown and mouseup loses the tap) nor drops the keyboard's focus. Inputs keep what is typed in them.
 * A merged node keeps its listeners: merge only what is drawn from the same ids (a check, a person). */
export function keepUnchanged(container, fresh, merge) {
  const spare = new Set(container.children);
  const nodes = fresh.map((node) => {
    for (const old of spare) if (old.isEqualNode(node)) { spare.delete(old); return old; }
    // merge(old, node): `old` is the same thing as `node` (same check, same list) and was updated in place to show it
    if (merge) for (const old of spare) if (merge(old, node)) { spare.delete(old); return old; }
    return node;
  });
  nodes.forEach((node, i) => { if (container.children[i] !== node) container.insertBefore(node, container.children[i] || null); });
  while (container.children.length > nodes.length) container.lastElementChild.remove();
  return container;
}

/* a message id made on the phone: unique per sender, at most 64 characters */
export function newId(prefix) {
  const rand = crypto.getRandomValues(new Uint32Array(2));
  return `${prefix}-${Date.now().toString(36)}-${rand[0].toString(36)}${rand[1].toString(36)}`;
}

/* YYYY-MM-DD in a time zone (the tour's), falling back to the phone's own */
export function dayIn(timeZone, when) {
  try {
    return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })
      .format(when || new Date());
  } catch (e) {
    const d = when || new Date();
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  }
}

export function showError(text) {
  const node = document.getElementById("error");
  if (!node) return;
  node.textContent = text || "";
  node.hidden = !text;
}

/* cached JSON in localStorage: the last known tour, notices, incidents (small, read synchronously at start) */
export function load(key, fallback) {
  try { const raw = localStorage.getItem(key); return raw ? JSON.parse(raw) : fallback; } catch (e) { return fallback; }
}

export function save(key, value) { localStorage.setItem(key, JSON.stringify(value)); }
