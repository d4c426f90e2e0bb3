/* The outbox: every message waits in IndexedDB, in the order it was written, until the server acks it.
 * IndexedDB (not localStorage) because it survives a closed app and is written atomically per message. */
const DB = "tourpulse";
const STORE = "outbox";
let opened = null;

function db() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "n", autoIncrement: true });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return opened;
}

function run(mode, work) {
  return db().then((conn) => new Promise((resolve, reject) => {
    const tx = conn.transaction(STORE, mode);
    const result = work(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    tx.onerror = () => reject(tx.error);
  }));
}

/* entry: {msg, sub, ref?}; ref names the message id of the incident an update waits for */
export function add(entry) { return run("readwrite", (store) => store.add(entry)); }

/* entries of one sender (a phone may hold more than one person's token over time), oldest first */
export async function all(sub) {
  const rows = await run("readonly", (store) => store.getAll());
  return rows.filter((row) => row.sub === sub);
}

export function remove(n) { return run("readwrite", (store) => store.delete(n)); }

export function put(entry) { return run("readwrite", (store) => store.put(entry)); }
