"""Benchmark (not a test): Backfill's page against DuckDB-Wasm on the lesson's models, in headless
Chromium, plus the native CLI against Python duckdb (benches/lesson_vs_duckdb.py).

    python3 benches/tab_vs_duckdb_wasm.py --backfill BIN [--dist DIR] [--rows 3000000] [--repeat 3] [--label TEXT]

What is measured, on `backfill gen --month 2023-03 --rows N --seed 1`:
 1. load the month; 2. full build (stg_trips + daily_metrics); 3. one daily partition
    (2023-03-04); 4. a 7-day backfill, one run per day (2023-03-05..2023-03-11). Each is the
    time of the awaited call, taken inside the page with performance.now(). Backfill's calls
    are its page API (window.backfill), which answers after saving the state to OPFS, as the
    page does. DuckDB-Wasm (1.32, eh bundle, benches/duckdb-wasm/) runs the same compiled SQL
    that `backfill` produces, the way dbt-duckdb runs it (create or replace table; delete+insert
    for a partition), in memory.
 5. open the page -> first chart: Backfill, ms from navigation until the page shows the 31 bars
    of its sample month and says "Ready"; DuckDB-Wasm charts nothing, so only when its
    database is instantiated.
 6. peak renderer memory: the summed RSS of this browser's `--type=renderer` processes (the
    pages' Web Workers live there), sampled every 100 ms over the whole run.
 7. wasm shipped: every *.wasm of Backfill's dist and duckdb-eh.wasm, raw, brotli -11, gzip -9.
 8. longest main-thread block during load + full build, and again during the partition and
    the 7-day backfill: the longest gap between the ticks of a 20 ms setInterval, and the
    longest 'longtask' entry, both injected before the load (and read, then zeroed, between).

Each browser run gets a fresh Chromium profile; runs alternate (Backfill 1, DuckDB-Wasm 1,
Backfill 2, ...) and the table shows medians. DuckDB-Wasm reads the month as an Arrow IPC stream
converted from the same Parquet file with pyarrow: since 1.29 its Parquet reader is an extension
fetched from the web, and this machine is offline but for package registries.

Prints the table and appends it to benches/results.md. Without --dist, builds the release page
first (`trunk build --release`). Installs DuckDB-Wasm from npm (benches/duckdb-wasm/package-lock.json)
into ~/.cache/backfill-bench, and brotli into the venv of tests/parity.
"""

import argparse
import contextlib
import datetime as dt
import gzip
import hashlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from lesson_vs_duckdb import (  # noqa: E402
    PARTITION, ZONES, bf, delete_insert_sql, ensure_venv, full_build_sql, generate, runs_of, time_backfill,
    time_duckdb, trips_sql, zones_sql)

sys.path.append(str(ROOT / "tests" / "browser"))  # appended: tests/parity's run.py must win `import run`
from webdriver import Browser, StaticServer  # noqa: E402

CACHE = Path.home() / ".cache" / "backfill-bench"
DUCKDB_WASM = HERE / "duckdb-wasm"
RESULTS = HERE / "results.md"
WEEK = "2023-03-05..2023-03-11"
MONTH_FILE = "yellow_tripdata_2023-03.parquet"  # the sample's month: loading it replaces the sample
TIMEOUT = 1800  # seconds for one step (a dev build on 3M rows is slow)
MIB = 1024 * 1024

NOTE = ("DuckDB-Wasm reads the month as Arrow IPC converted from the same Parquet with pyarrow (since 1.29 its"
        " Parquet reader is an extension fetched from the web; this machine is offline). Backfill's page saves"
        " its state to OPFS before answering, DuckDB-Wasm keeps everything in memory.")

# Injected before any page script: when the page first shows the 31 bars and "Ready".
FIRST_CHART = """
const shown = () => document.querySelectorAll('[data-testid="trip-count-bar"]').length >= 31
  && (document.querySelector('[data-testid="status"]')?.textContent || "").includes("Ready");
const observer = new MutationObserver(() => {
  if (shown()) { window.firstChartMs = performance.now(); observer.disconnect(); }
});
observer.observe(document, {childList: true, subtree: true, characterData: true});
"""

# Injected before the load: the longest gap between 20 ms ticks, and the longest long task;
# TAKE_BLOCKS reads them and starts the next window from zero.
WATCH_BLOCKS = """
const blocks = window.blocks = {gap: 0, longtask: 0};
let last = performance.now();
setInterval(() => { const now = performance.now(); blocks.gap = Math.max(blocks.gap, now - last); last = now; }, 20);
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) blocks.longtask = Math.max(blocks.longtask, entry.duration);
}).observe({type: "longtask"});
"""
TAKE_BLOCKS = "const taken = {...window.blocks}; window.blocks.gap = 0; window.blocks.longtask = 0; return taken;"

# Starts window[object][method](...args); its outcome and duration land in window.timed[key].
START_TIMED = """
const [object, method, args, key] = arguments;
const timed = window.timed = window.timed || {};
const started = performance.now();
window[object][method](...args).then(
  () => { timed[key] = {ms: performance.now() - started}; },
  e => { timed[key] = {error: String((e && e.message) || e)}; });
"""

CALL = """
const [object, method, args, done] = arguments;
window[object][method](...args).then(v => done({ok: v}), e => done({error: String((e && e.message) || e)}));
"""

CHECK_SQL = "select count(*) as days, cast(sum(trip_count) as bigint) as trips from daily_metrics"


def main():
    args = parse_args()
    ensure_venv()
    ensure_brotli()
    dist = Path(args.dist) if args.dist else build_release_page()
    node_modules = install_duckdb_wasm()
    with tempfile.TemporaryDirectory(prefix="bench-wasm-") as work:
        work = Path(work)
        data = work / MONTH_FILE
        generate(args.backfill, args.rows, data)
        native, sql = native_half(args.backfill, data, work, args.repeat)
        backfill_site = serve_backfill(work / "backfill-site", dist, data)
        duckdb_site = serve_duckdb(work / "duckdb-site", node_modules, data)
        runs = {"backfill": [], "duckdb": []}
        for i in range(1, args.repeat + 1):
            runs["backfill"].append(report(f"backfill run {i}", run_backfill(backfill_site.url)))
            runs["duckdb"].append(report(f"duckdb-wasm run {i}", run_duckdb(duckdb_site.url, sql)))
        backfill_site.close()
        duckdb_site.close()
    check_same_result(runs)
    sizes = {"backfill": wasm_sizes(sorted(dist.rglob("*.wasm"))),
             "duckdb": wasm_sizes([node_modules / "@duckdb" / "duckdb-wasm" / "dist" / "duckdb-eh.wasm"])}
    text = results_section(args, dist, runs, sizes, native)
    print(text)
    append_results(text)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backfill", required=True, help="the backfill CLI binary")
    parser.add_argument("--dist", help="the built page (default: trunk build --release into $CARGO_TARGET_DIR/dist-release)")
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--label", default="", help="what this run measures, e.g. 'before: ...'")
    return parser.parse_args()


# --- setup -----------------------------------------------------------------------------------

def ensure_brotli():
    try:
        import brotli  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "brotli"], check=True)


def build_release_page():
    """`trunk build --release` as scripts/test.sh does; returns the dist folder."""
    script = 'source scripts/tools.sh >&2 && trunk build --release --dist "$CARGO_TARGET_DIR/dist-release" >&2' \
             ' && echo "$CARGO_TARGET_DIR/dist-release"'
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def install_duckdb_wasm():
    """`npm ci` of benches/duckdb-wasm/package-lock.json into the cache; returns its node_modules."""
    folder = CACHE / "duckdb-wasm"
    folder.mkdir(parents=True, exist_ok=True)
    lock = (DUCKDB_WASM / "package-lock.json").read_bytes()
    if not (folder / "node_modules").is_dir() or (folder / "package-lock.json").read_bytes() != lock:
        for name in ["package.json", "package-lock.json"]:
            shutil.copy(DUCKDB_WASM / name, folder / name)
        print(f"installing DuckDB-Wasm into {folder} (npm ci)", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True, stdout=subprocess.DEVNULL)
    return folder / "node_modules"


def native_half(binary, data, work, repeat):
    """The CLI against Python duckdb (lesson_vs_duckdb.py); returns its medians in seconds and
    the compiled SQL, with "week" the incremental daily_metrics of each day of WEEK."""
    full, partition, sql = time_backfill(binary, data, work / "state", repeat)
    duck_full, duck_partition = time_duckdb(data, sql, work / "duck.duckdb", repeat)
    bf(binary, "materialize", "--state", str(work / "state"), "--partition", WEEK)
    sql["week"] = [run["models"][0]["compiled_sql"] for run in runs_of(work / "state")[-7:]]
    m = statistics.median
    native = {"full": (m(duck_full), m(full)), "partition": (m(duck_partition), m(partition))}
    return native, sql


def serve_backfill(folder, dist, data):
    """The built page with the month beside it (the page fetches it from its own origin)."""
    folder.mkdir()
    for entry in [*dist.iterdir(), data]:
        (folder / entry.name).symlink_to(entry.resolve())
    return StaticServer(folder)


def serve_duckdb(folder, node_modules, data):
    """The harness page, DuckDB-Wasm's npm install, the zones and the month as Arrow IPC."""
    import pyarrow.ipc
    import pyarrow.parquet

    folder.mkdir()
    for name in ["index.html", "bench.js"]:
        (folder / name).symlink_to(DUCKDB_WASM / name)
    (folder / "node_modules").symlink_to(node_modules)
    (folder / "taxi_zones.csv").symlink_to(ZONES)
    table = pyarrow.parquet.read_table(data)
    with pyarrow.ipc.new_stream(folder / "trips.arrow", table.schema) as stream:
        stream.write_table(table)
    print(f"month: Parquet {data.stat().st_size / MIB:.0f} MiB for backfill,"
          f" Arrow IPC {(folder / 'trips.arrow').stat().st_size / MIB:.0f} MiB for DuckDB-Wasm")
    return StaticServer(folder)


# --- one browser run -------------------------------------------------------------------------

class RendererMemory(threading.Thread):
    """Every 0.1 s, the summed RSS of the renderer processes under `root` (chromedriver); keeps the max."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root = root
        self.peak = 0
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(0.1):
            self.peak = max(self.peak, sum(rss(pid) for pid in descendants(self.root) if is_renderer(pid)))

    def stop(self):
        self.stopped.set()
        self.join()


def descendants(root):
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def is_renderer(pid):
    with contextlib.suppress(OSError):
        return b"--type=renderer" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


def rss(pid):
    """VmRSS in bytes; 0 for a process that is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def fresh_chromium():
    """Headless Chromium on a new profile, its renderers' memory sampled meanwhile."""
    browser = Browser()
    memory = RendererMemory(browser.driver.pid)
    memory.start()
    try:
        yield browser, memory
    finally:
        memory.stop()
        browser.close()


_keys = itertools.count()


def timed(browser, obj, method, *args):
    """Milliseconds of `await window[obj][method](...args)`, measured in the page."""
    key = f"{method}-{next(_keys)}"
    browser.js(START_TIMED, obj, method, list(args), key)
    result = browser.wait(f"{obj}.{method}", lambda: browser.js("return (window.timed || {})[arguments[0]];", key),
                          TIMEOUT)
    if "error" in result:
        sys.exit(f"{obj}.{method}{tuple(args)} failed: {result['error']}")
    return result["ms"]


def call(browser, obj, method, *args):
    result = browser.js_async(CALL, obj, method, list(args))
    if "error" in result:
        sys.exit(f"{obj}.{method}{tuple(args)} failed: {result['error']}")
    return result["ok"]


def page_value(browser, what, expression):
    return browser.wait(what, lambda: browser.js(f"return {expression};"), TIMEOUT)


def run_backfill(url):
    with fresh_chromium() as (browser, memory):
        browser.s("/goog/cdp/execute", {"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": FIRST_CHART}})
        browser.open(url)
        result = {"ready": page_value(browser, "the sample chart", "window.firstChartMs")}
        browser.js(WATCH_BLOCKS)
        result["load"] = timed(browser, "backfill", "load", MONTH_FILE, {"name": MONTH_FILE, "month": "2023-03"})
        result["full"] = timed(browser, "backfill", "build", {"select": "stg_trips daily_metrics", "fullRefresh": True})
        result["blocks"] = browser.js(TAKE_BLOCKS)
        result["partition"] = timed(browser, "backfill", "materialize", {"partition": PARTITION})
        result["week"] = timed(browser, "backfill", "materialize", {"partition": WEEK, "singleRun": False})
        result["backfill_blocks"] = browser.js(TAKE_BLOCKS)
        result["check"] = call(browser, "backfill", "query", CHECK_SQL)
        result["phases"] = partition_phases(call(browser, "backfill", "runs"), result["partition"])
    result["memory"] = memory.peak / MIB
    return result


def partition_phases(runs, call_ms):
    """Where step 3's time went, in ms: each phase its models' runs record (compile, plan,
    execute, merge, diff), then the rest of the run, then what the page call adds around the
    run (ledger, fingerprints, OPFS save, snapshot, worker messages)."""
    run = next(r for r in runs if r["partitions"] == [PARTITION])
    phases = {}
    for model in run["models"]:
        for name, micros in model.get("phases", []):
            phases[name] = phases.get(name, 0) + micros / 1000
    phases["rest of the run"] = run["duration_ms"] - sum(phases.values())
    phases["around the run"] = call_ms - run["duration_ms"]
    return phases


def run_duckdb(url, sql):
    load = [trips_sql("raw_trips"), "drop table raw_trips", zones_sql("taxi_zones.csv")]
    week = [statement for day in sql["week"] for statement in delete_insert_sql(day)]
    with fresh_chromium() as (browser, memory):
        browser.open(url)
        result = {"ready": page_value(browser, "DuckDB-Wasm instantiated", "window.duckReadyMs")}
        browser.js(WATCH_BLOCKS)
        result["load"] = timed(browser, "bench", "load", "trips.arrow", "taxi_zones.csv", load)
        result["full"] = timed(browser, "bench", "run", full_build_sql(sql))
        result["blocks"] = browser.js(TAKE_BLOCKS)
        result["partition"] = timed(browser, "bench", "run", delete_insert_sql(sql["partition"]))
        result["week"] = timed(browser, "bench", "run", week)
        result["backfill_blocks"] = browser.js(TAKE_BLOCKS)
        result["check"] = call(browser, "bench", "query", CHECK_SQL)
    result["memory"] = memory.peak / MIB
    return result


def report(name, result):
    print(f"{name}: ready {result['ready']:.0f} ms, load {result['load']:.0f} ms, full build {result['full']:.0f} ms,"
          f" partition {result['partition']:.0f} ms, 7 days {result['week']:.0f} ms,"
          f" longest gap {result['blocks']['gap']:.0f} ms (backfill {result['backfill_blocks']['gap']:.0f} ms),"
          f" peak renderers {result['memory']:.0f} MiB", flush=True)
    return result


def check_same_result(runs):
    """Both engines must end with the same daily_metrics (days and trips), or the race is void."""
    seen = {(name, int(row["days"]), int(row["trips"])) for name, results in runs.items()
            for row in (r["check"][0] for r in results)}
    if len({(days, trips) for _, days, trips in seen}) != 1:
        sys.exit(f"daily_metrics differs between the engines: {sorted(seen)}")


# --- wasm sizes ------------------------------------------------------------------------------

def wasm_sizes(paths):
    """{file name: (raw, brotli -11, gzip -9) bytes}; compressed sizes cached by content hash."""
    import brotli

    cache_file = CACHE / "wasm-sizes.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    sizes = {}
    for path in paths:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest not in cache:
            print(f"compressing {path.name} ({len(data) / MIB:.1f} MiB; brotli -11 is slow)", flush=True)
            cache[digest] = [len(brotli.compress(data, quality=11)), len(gzip.compress(data, compresslevel=9))]
            cache_file.write_text(json.dumps(cache, indent=1))
        sizes[path.name] = (len(data), *cache[digest])
    return sizes


# --- results ---------------------------------------------------------------------------------

def results_section(args, dist, runs, sizes, native):
    m = statistics.median

    def med(engine, pick):
        return m(pick(r) for r in runs[engine])

    def row(step, duck, back, unit, digits=0):
        ratio = f"{back / duck:.2f}x" if duck else "—"
        return f"| {step} | {duck:,.{digits}f} {unit} | {back:,.{digits}f} {unit} | {ratio} |"

    def timing(step, key):
        return row(step, med("duckdb", lambda r: r[key]), med("backfill", lambda r: r[key]), "ms")

    def size(step, column):
        duck, back = (sum(s[column] for s in sizes[e].values()) / MIB for e in ["duckdb", "backfill"])
        return row(step, duck, back, "MiB", 1)

    lines = [
        f"## {dt.datetime.now():%Y-%m-%d %H:%M} · {commit()} · {args.label or '(no label)'}",
        "",
        f"{args.rows:,} rows; medians of {args.repeat} run{'s' if args.repeat != 1 else ''} per engine, interleaved,"
        " each in a fresh Chromium profile."
        f" Machine: {len(os.sched_getaffinity(0))} cores, {chromium_version()}. Page: `{dist}`.",
        "",
        f"{NOTE} Ratio = Backfill / DuckDB.",
        "",
        "| step | DuckDB-Wasm | Backfill | ratio |",
        "| --- | --- | --- | --- |",
        timing("1. load the month", "load"),
        timing("2. full build (stg_trips + daily_metrics)", "full"),
        timing(f"3. one daily partition ({PARTITION})", "partition"),
        timing(f"4. 7-day backfill, one run per day ({WEEK})", "week"),
        f"| 5. open the page → first chart | ready at {med('duckdb', lambda r: r['ready']):,.0f} ms, nothing charted"
        f" | {med('backfill', lambda r: r['ready']):,.0f} ms | — |",
        row("6. peak renderer memory", med("duckdb", lambda r: r["memory"]), med("backfill", lambda r: r["memory"]), "MiB"),
        size("7. wasm shipped, raw", 0),
        size("7. wasm shipped, brotli -11", 1),
        size("7. wasm shipped, gzip -9", 2),
        row("8. longest main-thread block, load + full build: 20 ms tick gap",
            med("duckdb", lambda r: r["blocks"]["gap"]), med("backfill", lambda r: r["blocks"]["gap"]), "ms"),
        row("8. longest main-thread block, load + full build: longtask",
            med("duckdb", lambda r: r["blocks"]["longtask"]), med("backfill", lambda r: r["blocks"]["longtask"]), "ms"),
        row("8. longest main-thread block, partition + 7-day backfill: 20 ms tick gap",
            med("duckdb", lambda r: r["backfill_blocks"]["gap"]), med("backfill", lambda r: r["backfill_blocks"]["gap"]), "ms"),
        row("8. longest main-thread block, partition + 7-day backfill: longtask",
            med("duckdb", lambda r: r["backfill_blocks"]["longtask"]),
            med("backfill", lambda r: r["backfill_blocks"]["longtask"]), "ms"),
        "",
        f"Backfill's step 3, where the time went (medians, ms): "
        + " · ".join(f"{name} {med('backfill', lambda r: r['phases'][name]):,.1f}" for name in runs["backfill"][0]["phases"]) + ".",
        "",
        "Wasm files: " + "; ".join(f"{name} {raw / MIB:.1f} / {br / MIB:.1f} / {gz / MIB:.1f} MiB"
                                   for engine in ["duckdb", "backfill"] for name, (raw, br, gz) in sizes[engine].items())
        + " (raw / brotli / gzip).",
        "",
        "| native (CLI, engine run time) | Python duckdb | backfill | ratio |",
        "| --- | --- | --- | --- |",
        row("full build (stg_trips + daily_metrics)", *(s * 1000 for s in native["full"]), "ms"),
        row(f"one daily partition ({PARTITION})", *(s * 1000 for s in native["partition"]), "ms"),
        "",
    ]
    return "\n".join(lines)


def commit():
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    return f"{head} + uncommitted changes" if dirty else head


def chromium_version():
    return subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()


def append_results(text):
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\n"
            "A history of runs of `benches/tab_vs_duckdb_wasm.py`: Backfill's page against DuckDB-Wasm in headless"
            " Chromium (load, full build, partitions, first chart, memory, wasm size, main-thread blocking), and"
            " the native CLI against Python duckdb. Each run appends a section below, newest last; an optimisation"
            " appends a run before it and one after, labelled, so its effect reads as two neighbouring tables.\n\n")
    with RESULTS.open("a") as out:
        out.write("\n" + text)
    print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
