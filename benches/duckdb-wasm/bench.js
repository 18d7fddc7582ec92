// The DuckDB-Wasm side of benches/tab_vs_duckdb_wasm.py: instantiates DuckDB-Wasm (the eh
// bundle, from the local npm install) and exposes `window.bench`, whose functions the harness
// times from the page. `window.duckReadyMs` is when the database was ready (ms after navigation).
import * as duckdb from "./node_modules/@duckdb/duckdb-wasm/dist/duckdb-browser.mjs";

const dist = new URL("node_modules/@duckdb/duckdb-wasm/dist/", location.href);
const worker = new Worker(new URL("duckdb-browser-eh.worker.js", dist));
const db = new duckdb.AsyncDuckDB(new duckdb.VoidLogger(), worker);
await db.instantiate(new URL("duckdb-eh.wasm", dist).href);
const conn = await db.connect();
window.duckReadyMs = performance.now();
document.querySelector('[data-testid="status"]').textContent = "Ready";

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function run(statements) {
  for (const sql of statements) await conn.query(sql);
}

window.bench = {
  // The month: an Arrow IPC stream into the table raw_trips, the zones CSV registered as
  // taxi_zones.csv, then `statements` (the harness's: main.trips and main.zones from them).
  async load(arrowUrl, zonesUrl, statements) {
    await conn.insertArrowFromIPCStream(await fetchBytes(arrowUrl), { name: "raw_trips", create: true });
    await db.registerFileBuffer("taxi_zones.csv", await fetchBytes(zonesUrl));
    await run(statements);
  },
  run,
  // Rows as plain objects (BigInts as numbers, which WebDriver can return).
  async query(sql) {
    const rows = (await conn.query(sql)).toArray().map((row) => row.toJSON());
    return JSON.parse(JSON.stringify(rows, (_, v) => (typeof v === "bigint" ? Number(v) : v)));
  },
};
