"""Browser tests: the built app (trunk build output) in real headless Chromium, driven over
WebDriver, checked against the `backfill` CLI on the same data.

    python3 tests/browser/run.py --dist dist --backfill BIN [--screenshots DIR] [--only TEST,TEST]

Prints "browser: N passed, N failed" and exits 1 on any failure. Screenshots at 1280x800 and
390x844 go to --screenshots (default: a temporary folder, printed) for a person to look at.
"""

import argparse
import base64
import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import zipfile
import zlib
import traceback
from pathlib import Path

from webdriver import Browser, StaticServer, WebDriverError

SAMPLE = ("2023-03", 200000, 1)  # the page's built-in sample: gen --month 2023-03 --rows 200000 --seed 1


class Cli:
    """The same operations through the CLI, for the expected values."""

    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.state = work / "cli-state"

    def run(self, *args):
        done = subprocess.run([self.binary, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"backfill {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def gen(self, month, rows, seed=1, compression="snappy"):
        path = self.work / f"yellow_tripdata_{month}.parquet"
        self.run("gen", "--month", month, "--rows", str(rows), "--seed", str(seed), "--compression", compression,
                 "--out", str(path))
        return path

    def daily_counts(self, first, last):
        out = self.run("query", "--state", str(self.state), "--format", "csv",
                       "select cast(date_of_business as date) as d, trip_count from daily_metrics"
                       f" where date_of_business between '{first}' and '{last}' order by d")
        return {row["d"]: row["trip_count"] for row in csv.DictReader(io.StringIO(out))}


def bars(browser):
    script = ("return Array.from(document.querySelectorAll('[data-testid=\"trip-count-bar\"]'))"
              ".map(b => [b.getAttribute('data-date'), b.getAttribute('data-value'), b.getAttribute('class')]);")
    return browser.js(script)


def status_of(browser, day):
    return browser.attr(browser.find(f"partition-{day}"), "data-status")


def wait_ready(browser):
    browser.wait("the sample chart", lambda: len(bars(browser)) >= 31, timeout=120)
    browser.wait("idle status", lambda: "Ready" in browser.text(browser.find("status")))


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def opening_shows_the_sample_chart(ctx):
    b = ctx["browser"]
    b.open(ctx["url"])
    wait_ready(b)
    # Not asserted (speed goals live in benchmarks): how long a first visit took to show the chart.
    print(f"        first visit: chart ready {b.js('return Math.round(performance.now());')} ms after navigation")
    expected = ctx["cli"].daily_counts("2023-03-01", "2023-03-31")
    got = {date: value for date, value, _ in bars(b)}
    check(len(got) == 31, f"{len(got)} bars, expected one per day of March")
    check(got == expected, f"bars differ from the CLI: {sorted(set(got.items()) ^ set(expected.items()))[:6]}")
    check(all(s == "missing" for s in [status_of(b, "2023-03-01"), status_of(b, "2023-03-31")]),
          "partitions should start missing")
    b.screenshot(ctx["shots"] / "opened-1280x800.png")


def the_page_runs_only_its_own_code(ctx):
    """The Content-Security-Policy: no inline script, no eval, nothing fetched from another origin;
    the sample chart (wasm in a worker) works under it, with no violation on the way."""
    b = ctx["browser"]
    policy = b.js("const m = document.querySelector('meta[http-equiv=\"Content-Security-Policy\"]'); return m && m.content;")
    check(policy and "script-src 'self' 'wasm-unsafe-eval'" in policy, f"the page's policy is {policy!r}")
    check(b.js("return document.querySelectorAll('script:not([src])').length;") == 0, "the page has an inline script")
    violations = [m for m in b.console() if "Content Security Policy" in m]
    check(not violations, f"the page broke its own policy: {violations[:3]}")
    # What an injected link or model text could try: an inline script added to the page does not run.
    blocked = b.js_async(
        "const done = arguments[0];"
        "document.addEventListener('securitypolicyviolation', e => done(e.violatedDirective), {once: true});"
        "const s = document.createElement('script'); s.textContent = 'window.__injected = true;';"
        "document.body.appendChild(s);")
    check(blocked.startswith("script-src") and not b.js("return window.__injected === true;"),
          f"an injected inline script ran (violation: {blocked!r})")
    refused = b.js_async(
        "const done = arguments[0];"
        "document.addEventListener('securitypolicyviolation', e => done(e.violatedDirective), {once: true});"
        "fetch('https://example.com/trips.parquet').catch(() => {});")
    check(refused == "connect-src", f"a fetch to another origin was not refused by the policy: {refused!r}")


def materialize_a_partition(ctx):
    b, cli = ctx["browser"], ctx["cli"]
    runs_before = len(b.find_all("run-entry"))
    # A run the reader opened stays open while new runs arrive above it.
    b.click(b.find("run-command"))
    opened = b.attr(b.find("run-entry"), "data-run-id")
    is_open = f"return document.querySelector('[data-testid=\"run-entry\"][data-run-id=\"{opened}\"] details').open;"
    check(b.js(is_open), f"run {opened} did not open")
    b.click(b.find("partition-2023-03-04"))
    b.click(b.find("materialize-button"))
    b.wait("2023-03-04 materialized", lambda: status_of(b, "2023-03-04") == "materialized")
    check(status_of(b, "2023-03-05") == "missing", "only the selected day is a materialized partition")
    b.wait("a new run entry", lambda: len(b.find_all("run-entry")) == runs_before + 1)
    check(b.attr(b.find("run-entry"), "data-run-id") != opened, "the new run is not listed first")
    check(b.js(is_open), f"run {opened}, opened before the partition run, closed when the new run arrived")
    b.js(is_open.replace("return ", "").replace(".open;", ".open = false;"))
    command = b.text(b.find("run-command"))
    expected = """dbt build --select daily_metrics --vars '{"min_date": "2023-03-04", "max_date": "2023-03-05"}'"""
    check(command == expected, f"run command {command!r}")
    # Where the run's time went, phase by phase, once the run is opened.
    b.click(b.find("run-command"))
    phases = b.text(b.find("run-phases"))
    b.click(b.find("run-command"))
    pattern = r"compile \d+\.\d ms · plan \d+\.\d ms · execute \d+\.\d ms · merge \d+\.\d ms · diff \d+\.\d ms"
    check(re.fullmatch(pattern, phases), f"run phases {phases!r}")
    cli.run("materialize", "--state", str(cli.state), "--partition", "2023-03-04")
    expected_counts = cli.daily_counts("2023-03-01", "2023-03-31")
    rows = bars(b)
    check({d: v for d, v, _ in rows} == expected_counts, "chart differs from the CLI after the partition run")
    touched = sorted(d for d, _, cls in rows if "touched" in cls)
    check(touched == ["2023-03-04", "2023-03-05"], f"highlighted days {touched}: the between filter rewrites the 4th and 5th")


def the_calendar_works_by_keyboard(ctx):
    """2023-03-04..06 selected and materialized with the keyboard only: one tab stop in the
    calendar, arrows to move, Shift to extend, Enter to select and to press the button."""
    b, cli = ctx["browser"], ctx["cli"]
    stops = b.js("return Array.from(document.querySelectorAll('.calendar [tabindex=\"0\"]')).map(e => e.getAttribute('data-testid'));")
    check(len(stops) == 1, f"the calendar has one tab stop, not {stops}")
    # Tab reaches the calendar at its stop; from there the keyboard does everything.
    b.js("document.querySelector('.calendar [tabindex=\"0\"]').focus();")
    b.keys("PageUp", "PageUp", "Home")
    check(b.focused("data-testid") == "partition-2023-03-01", f"PageUp and Home stop at the first day: {b.focused('data-testid')}")
    b.keys("ArrowRight", "ArrowRight", "ArrowRight", "Enter")
    b.keys("ArrowRight", "ArrowRight", hold="Shift")
    check(b.text(b.find("selection")) == "Selected: 2023-03-04..2023-03-06", f"selection {b.text(b.find('selection'))!r}")
    check(b.focused("aria-label") == "6 March 2023, missing", f"the focused day's name is {b.focused('aria-label')!r}")
    b.keys("Tab")
    check(b.focused("data-testid") == "partition-range-field", "Tab leaves the calendar for the range field")
    b.keys("Tab", "Tab")
    check(b.focused("data-testid") == "materialize-button", f"then the button ({b.focused('data-testid')})")
    b.keys("Enter")
    b.wait("03-04..06 materialized", lambda: [status_of(b, f"2023-03-0{d}") for d in (4, 5, 6)] == ["materialized"] * 3)
    check(b.attr(b.find("partition-2023-03-05"), "aria-label") == "5 March 2023, materialized", "the name follows the status")
    b.wait("the outcome announced", lambda: b.text_content(b.find("announcer")) == "Done")
    check(b.js("return document.querySelector('[data-testid=\"partition-2023-03-05\"] .glyph').textContent;") == "✓",
          "a materialized day shows a glyph, not only a colour")
    cli.run("materialize", "--state", str(cli.state), "--partition", "2023-03-04...2023-03-06")
    check({d: v for d, v, _ in bars(b)} == cli.daily_counts("2023-03-01", "2023-03-31"), "chart differs from the CLI")
    # `?` outside a text field lists the shortcuts; Esc closes the list.
    b.js("document.activeElement.blur();")
    b.keys("?")
    check(b.prop(b.find("shortcuts-dialog"), "open") and "Page Up / Page Down" in b.text(b.find("shortcuts-dialog")), "? lists the shortcuts")
    b.keys("Escape")
    check(not b.prop(b.find("shortcuts-dialog"), "open"), "Esc closes the list")
    # A typed range selects too; one that is not a range of these partitions says why.
    set_field(b, "partition-range-field", "2023-03-10...2023-03-12", "change")
    check(b.text(b.find("selection")) == "Selected: 2023-03-10..2023-03-12", f"typed range {b.text(b.find('selection'))!r}")
    # On a touch screen: tap the first day, then the last.
    b.tap(b.find("partition-2023-03-20"))
    check(b.text(b.find("selection")) == "Selected: 2023-03-20", f"first tap {b.text(b.find('selection'))!r}")
    b.tap(b.find("partition-2023-03-22"))
    check(b.text(b.find("selection")) == "Selected: 2023-03-20..2023-03-22", f"second tap {b.text(b.find('selection'))!r}")
    set_field(b, "partition-range-field", "2023-03-30...2023-04-02", "change")
    problem = b.text(b.find("selection"))
    check("2023-04-02 is outside the partitions (2023-03-01 to 2023-03-31)" in problem, f"a bad range says {problem!r}")


def the_scratchpad_runs_a_query_with_a_ref(ctx):
    """A query with {{ ref() }}, run with Ctrl+Enter: its rows equal the CLI's query of the table;
    a bad column is named and underlined where it is written; both are kept as recent queries."""
    b, cli = ctx["browser"], ctx["cli"]
    body = ("select cast(date_of_business as date) as d, trip_count\nfrom {table}\n"
            "where date_of_business between '2023-03-01' and '2023-03-31'\norder by d")
    set_field(b, "scratch-input", body.format(table="{{ ref('daily_metrics') }}"), "input")
    b.js("document.querySelector('[data-testid=\"scratch-input\"]').focus();")
    b.keys("Enter", hold="Control")
    b.wait("the scratchpad's rows", lambda: b.find_all("scratch-result"))
    rows = b.js("return Array.from(document.querySelectorAll('[data-testid=\"scratch-result\"] tbody tr'))"
                ".map(r => Array.from(r.cells).map(c => c.textContent));")
    out = cli.run("query", "--state", str(cli.state), "--format", "csv", body.format(table="daily_metrics"))
    expected = [[r["d"], r["trip_count"]] for r in csv.DictReader(io.StringIO(out))]
    check(len(expected) == 31 and rows == expected[:25], f"scratchpad rows {len(rows)} vs the CLI's {len(expected)}: {[(r, e) for r, e in zip(rows, expected) if r != e][:3]}")
    pager = b.js("return document.querySelector('.scratch-panel .pager span').textContent;")
    check(pager == "page 1 of 2 · 31 rows", f"pager {pager!r}")
    set_field(b, "scratch-input", "select trip_count,\n       nope\nfrom {{ ref('daily_metrics') }}", "input")
    b.click(b.find("scratch-run"))
    message = b.wait("the scratchpad's error", lambda: b.find_all("scratch-error") and b.text(b.find("scratch-error")))
    check(message.startswith("inline_query.sql:2:8: model inline_query: ") and "nope" in message, f"error {message!r}")
    underlined = b.js("return Array.from(document.querySelectorAll('.scratch-panel .squiggle')).map(s => s.textContent).join('');")
    check(underlined == "nope", f"underlined {underlined!r}")
    b.js("document.querySelector('.scratch-panel').scrollIntoView()")
    b.screenshot(ctx["shots"] / "scratchpad-error.png")
    recent = b.text(b.find("scratch-recent"))
    check(recent.startswith("select trip_count, nope") and "ref('daily_metrics')" in recent.split("\n")[1], f"recent {recent!r}")


def upload_a_zstd_month(ctx):
    b, cli = ctx["browser"], ctx["cli"]
    path = cli.gen("2023-04", 20000, seed=2, compression="zstd")
    b.type_file(b.find("file-input"), path)
    b.wait("an April file card", lambda: any(b.attr(c, "data-month") == "2023-04" for c in b.find_all("file-card")))
    b.wait("April partitions", lambda: b.find_all("partition-2023-04-30"))
    check(status_of(b, "2023-04-15") == "missing", "a new month's partitions start missing")
    warning = b.wait("the stale-upstream hint", lambda: b.find_all("unbuilt-warning") and b.text(b.find("unbuilt-warning")))
    check("2023-04" in warning, f"hint says {warning!r}")


def a_bad_file_changes_nothing(ctx):
    b = ctx["browser"]
    cards = len(b.find_all("file-card"))
    before = bars(b)
    bad = ctx["work"] / "yellow_tripdata_2023-05.parquet"
    bad.write_bytes(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01")
    b.type_file(b.find("file-input"), bad)
    message = b.wait("an error message", lambda: b.find_all("error-message") and b.text(b.find("error-message")))
    check("yellow_tripdata_2023-05.parquet" in message and "JPEG" in message, f"error says {message!r}")
    check(len(b.find_all("file-card")) == cards, "a bad file added a card")
    check(bars(b) == before, "a bad file changed the chart")
    check(not b.find_all("partition-2023-05-01"), "a bad file added partitions")


def page_api_matches_the_cli(ctx):
    b, cli = ctx["browser"], ctx["cli"]
    result = b.api("query", "select count(*) as n from stg_trips where partition_date = '2023-03'")
    expected = cli.run("query", "--state", str(cli.state), "--format", "csv",
                       "select count(*) as n from stg_trips").splitlines()[1]
    check(result.get("ok") == [{"n": int(expected)}], f"query gave {result}, CLI {expected}")
    partitions = b.api("partitions")["ok"]
    day = next(p for p in partitions if p["partition"] == "2023-03-04")
    check(day["status"] == "materialized", f"partitions() says {day}")
    failed = b.api("query", "select nope from stg_trips")
    check("nope" in failed.get("error", ""), f"a bad query should reject with the message: {failed}")
    digest = b.js_async(
        "const done = arguments[0];"
        "backfill.exportProject().then(z => crypto.subtle.digest('SHA-256', z))"
        ".then(h => done(Array.from(new Uint8Array(h)).map(x => x.toString(16).padStart(2, '0')).join('')),"
        " e => done('error: ' + e.message));")
    exported = ctx["work"] / "cli-export.zip"
    # The page exports the backfill policy it runs (one run per partition unless chosen).
    cli.run("export", "--backfill-policy", "run-per-partition", "--out", str(exported))
    check(digest == hashlib.sha256(exported.read_bytes()).hexdigest(),
          f"the page's dbt project zip differs from `backfill export` ({digest})")
    runs = b.api("runs")["ok"]
    # The last run: the keyboard's backfill of 2023-03-04..06, one run per partition.
    check(runs[-1]["vars"] == {"min_date": "2023-03-06", "max_date": "2023-03-07"}, f"last run vars {runs[-1]['vars']}")


def a_crash_in_the_engine_is_contained(ctx):
    """A query that runs the engine out of memory kills its worker, not the page: the page says what
    happened (details to copy), restarts the engine on the saved state, and the next query works."""
    b = ctx["browser"]
    daily = "select count(*) as n, sum(trip_count) as trips from daily_metrics"
    before = query(b, daily)
    crashed = b.api("query", "select repeat('x', 2000000000) as s")
    check("the engine stopped" in crashed.get("error", ""), f"the query answered {str(crashed)[:200]!r}")
    b.wait("the crash report", lambda: b.find_all("crash-details") and "cause:" in b.prop(b.find("crash-details"), "textContent"))
    check("restarted on the last saved state" in b.text(b.find("error-message")), "the page does not say the engine restarted")
    b.click(b.find("copy-details"))
    b.wait("the copy", lambda: b.text(b.find("copy-details")) == "Copied")
    b.screenshot(ctx["shots"] / "engine-crash-1280x800.png")
    check(query(b, daily) == before, "the restarted engine lost tables")


def reload_keeps_state(ctx):
    b = ctx["browser"]
    runs = len(b.find_all("run-entry"))
    b.open(ctx["url"])
    b.wait("the saved state", lambda: len(bars(b)) >= 31 and b.find_all("partition-2023-04-30"))
    b.wait("idle status", lambda: "Ready" in b.text(b.find("status")))
    check(status_of(b, "2023-03-04") == "materialized", "partition status lost on reload")
    check(len(b.find_all("run-entry")) == runs, "run history lost on reload")
    check(len(b.find_all("file-card")) == 2, "files lost on reload")


def share_link_names_missing_files(ctx):
    b = ctx["browser"]
    b.click(b.find("share-button"))
    link = b.wait("a share link", lambda: b.find_all("share-link") and b.prop(b.find("share-link"), "value"))
    check("#s=" in link, f"link {link!r}")
    missing = b.text(b.find("share-missing"))
    check("yellow_tripdata_2023-04.parquet" in missing, f"the link should say the uploaded file is not in it: {missing!r}")


def diff_counts(b, testid="lesson-diff"):
    element = b.find(testid)
    return {k: int(b.attr(element, f"data-{k}")) for k in ("added", "changed", "removed", "rewritten")}


def diff_rows(b, kind):
    script = ("return Array.from(document.querySelectorAll('[data-testid=\"lesson-diff\"] [data-testid=\"diff-row\"]'))"
              ".filter(r => r.getAttribute('data-kind') === arguments[0]).map(r => [r.getAttribute('data-key'),"
              " Array.from(r.querySelectorAll('td.cell-changed')).map(c => [c.getAttribute('data-column'),"
              " c.querySelector('.old').textContent, c.querySelector('.new').textContent])]);")
    return b.js(script, kind)


def run_lesson_step(b, number, confirm=False):
    b.click(b.find("lesson-run-step"))
    if confirm:
        text = b.s("/alert/text", method="GET")
        check("replaces this session's files" in text, f"the lesson asks before replacing the session: {text!r}")
        b.s("/alert/accept", {})
    b.wait(f"lesson step {number}", lambda: b.find_all("lesson-step-view")
           and b.attr(b.find("lesson-step-view"), "data-step") == str(number), timeout=180)
    b.wait("idle status", lambda: "Ready" in b.text(b.find("status")))


def drift_days(b):
    return [d for d in b.attr(b.find("lesson-drift"), "data-days").split(",") if d]


def day_row(b, day):
    rows = b.api("query", "select trip_count, total_amount, average_amount from daily_metrics"
                          f" where date_of_business = '{day}'")["ok"]
    check(len(rows) == 1, f"{day}: {rows}")
    return rows[0]


def lesson_walks_six_steps(ctx):
    b = ctx["browser"]
    run_lesson_step(b, 1, confirm=True)
    check(diff_counts(b) == {"added": 33, "changed": 0, "removed": 0, "rewritten": 0},
          f"step 1 adds March and the two stray days: {diff_counts(b)}")
    check(drift_days(b) == [], "a full build is the truth")

    run_lesson_step(b, 2)
    check(diff_counts(b) == {"added": 30, "changed": 0, "removed": 0, "rewritten": 0}, f"step 2: {diff_counts(b)}")
    added = [key for key, _ in diff_rows(b, "added")]
    check(added == [f"2023-04-{d:02}" for d in range(1, 31)], f"step 2 added {added}")
    sql = b.text(b.find("lesson-sql-diff"))
    check("+     where date_of_business > (select max(date_of_business) from" in sql, f"step 2 SQL diff:\n{sql}")
    check(drift_days(b) == ["2008-12-31", "2023-03-31"], f"step 2 drift {drift_days(b)}")

    run_lesson_step(b, 3)
    check(diff_counts(b) == {"added": 0, "changed": 0, "removed": 0, "rewritten": 0}, f"step 3: {diff_counts(b)}")
    check(drift_days(b) == ["2008-12-31", "2023-03-15", "2023-03-31", "2023-04-02"], f"step 3 drift {drift_days(b)}")
    before = day_row(b, "2023-03-15")

    run_lesson_step(b, 4)
    check(diff_counts(b) == {"added": 0, "changed": 1, "removed": 0, "rewritten": 1}, f"step 4: {diff_counts(b)}")
    [(key, cells)] = diff_rows(b, "changed")
    counts = {column: (old, new) for column, old, new in cells}
    after = day_row(b, "2023-03-15")
    check(key == "2023-03-15" and counts["trip_count"] == (str(before["trip_count"]), str(after["trip_count"])),
          f"step 4 changed {key} {counts}, table {before} -> {after}")
    check(after["trip_count"] - before["trip_count"] == 400, "the 400 late trips are picked up")
    sql = b.text(b.find("lesson-sql-diff"))
    check("+     where date_of_business between '2023-03-15' and '2023-03-16'" in sql and "-     where date_of_business > " in sql,
          f"step 4 SQL diff:\n{sql}")
    check("2023-03-16" in b.text(b.find("lesson-diff")), "the between quirk: 2023-03-16 is rewritten too")

    run_lesson_step(b, 5)
    check(diff_counts(b) == {"added": 0, "changed": 2, "removed": 0, "rewritten": 7}, f"step 5: {diff_counts(b)}")
    check([k for k, _ in diff_rows(b, "changed")] == ["2023-03-31", "2023-04-02"], "step 5 fixes 03-31 and 04-02")
    check(drift_days(b) == ["2008-12-31"], f"step 5 drift {drift_days(b)}")
    before = day_row(b, "2023-04-05")

    run_lesson_step(b, 6)
    stale = b.text(b.find("lesson-stale"))
    check("2023-04-04" in stale and "2023-04-05" in stale, f"stale note {stale!r}")
    check(diff_counts(b) == {"added": 0, "changed": 1, "removed": 0, "rewritten": 1}, f"step 6: {diff_counts(b)}")
    [(key, cells)] = diff_rows(b, "changed")
    check(key == "2023-04-05" and [c[0] for c in cells] == ["total_amount", "average_amount"], f"step 6 changed {key} {cells}")
    after = day_row(b, "2023-04-05")
    check(abs(before["total_amount"] - after["total_amount"] - 5 * after["trip_count"]) < 0.01,
          f"$5 off each of {after['trip_count']} fares: {before['total_amount']} -> {after['total_amount']}")
    check(status_of(b, "2023-04-04") == "stale" and status_of(b, "2023-04-05") == "materialized",
          "04-04 stays stale (its window reads 04-05); 04-05 is fresh")
    b.screenshot(ctx["shots"] / "lesson-step-6.png")


def slide_to(b, stop):
    b.js("const s = document.querySelector('[data-testid=\"time-travel\"]'); s.value = String(arguments[0]);"
         " s.dispatchEvent(new Event('input', {bubbles: true}));", stop)


def bar_value(b, day):
    return next((int(v) for d, v, _ in bars(b) if d == day), None)


def time_travel_shows_earlier_tables(ctx):
    b = ctx["browser"]
    now = bar_value(b, "2023-03-15")
    stops = int(b.attr(b.find("time-travel"), "max")) + 1
    # The runs that changed daily_metrics: three builds (step 3's adds nothing), then 1 + 8 + 1 partitions.
    check(stops == 13, f"{stops} stops on the slider")
    slide_to(b, 2)
    label = b.wait("the third run shown", lambda: "As it was after run" in b.text(b.find("time-travel-label"))
                   and b.text(b.find("time-travel-label")))
    check(bar_value(b, "2023-03-15") == now - 400, f"after step 3's run the 15th lacks its late trips ({label})")
    b.screenshot(ctx["shots"] / "time-travel.png")
    b.click(b.find("time-travel-now"))
    b.wait("back to now", lambda: bar_value(b, "2023-03-15") == now)


def query(b, sql):
    result = b.api("query", sql)
    check("ok" in result, f"{sql}: {result.get('error')}")
    return result["ok"]


TABLES = ["trips", "zones", "stg_trips", "stg_zones", "location_metrics", "daily_metrics"]


def fingerprint_sql(name, columns, rounded=()):
    """Rows count and digest of a table; `rounded` columns to 4 decimals (the CLI sums floats on
    several threads, the page on one, so their last bits differ)."""
    value = lambda c: f"round({c}, 4)" if c in rounded else c
    row = ", ".join(f"coalesce(cast({value(c)} as varchar), 'NULL')" for c in columns)
    return (f"select count(*) as n, md5(string_agg(r, ';' order by r)) as rows"
            f" from (select concat_ws('|', {row}) as r from {name}) t")


def table_columns(b):
    return {name: list(query(b, f"select * from {name} limit 1")[0].keys()) for name in TABLES}


def table_fingerprints(b):
    return {name: query(b, fingerprint_sql(name, columns)) for name, columns in table_columns(b).items()}


def share_link_reopens_in_a_fresh_profile(ctx):
    b = ctx["browser"]
    b.click(b.find("partition-2023-04-03"))
    check(b.text(b.find("selection")) == "Selected: 2023-04-03", "a partition selected")
    slide_to(b, 5)
    travel = b.wait("travelled", lambda: "As it was after" in b.text(b.find("time-travel-label")) and b.text(b.find("time-travel-label")))
    link = b.api("shareLink")["ok"]
    check(len(link) < 2000, f"the lesson's link is {len(link)} characters")
    # Pasted into the open page, a link asks first (it replaces the session); cancelling keeps it.
    runs = len(b.find_all("run-entry"))
    b.open(link)
    prompt = b.wait("the replace prompt", lambda: b.s("/alert/text", method="GET"))
    check("replaces the session saved in this browser" in prompt, f"prompt {prompt!r}")
    b.s("/alert/dismiss", {})
    b.wait("the saved session", lambda: "Ready" in b.text(b.find("status")) and len(b.find_all("run-entry")) == runs)
    check("#s=" in b.js("return location.href;"), "a declined link stays in the address bar")
    print(f"        share link after the lesson: {len(link)} characters")
    expected = table_fingerprints(b)
    fresh = Browser(profile=ctx["work"] / "fresh-profile")
    try:
        fresh.open(link)
        fresh.wait("the shared lesson", lambda: fresh.find_all("lesson-step-view")
                   and fresh.attr(fresh.find("lesson-step-view"), "data-step") == "6", timeout=240)
        fresh.wait("idle status", lambda: "Ready" in fresh.text(fresh.find("status")))
        got = table_fingerprints(fresh)
        for name in expected:
            check(got[name] == expected[name], f"{name} differs in the reopened link: {got[name]} vs {expected[name]}")
        check(fresh.text(fresh.find("time-travel-label")) == travel, "the link keeps the time-travel position")
        check(fresh.text(fresh.find("selection")) == "Selected: 2023-04-03", "the link keeps the selected partition")
        check("select trip_count, nope" in fresh.text(fresh.find("scratch-recent")), "the link keeps the scratchpad's queries")
        rows = fresh.js("return document.querySelectorAll('[data-testid=\"time-travel-table\"] tbody tr').length;")
        check(rows > 31, f"the table as it was after the run shown: {rows} rows")
        check("#" not in fresh.js("return location.href;"), "once opened, the address drops the fragment")
        fresh.screenshot(ctx["shots"] / "shared-link-opened.png")
    finally:
        fresh.close()


def strategies_side_by_side(ctx):
    b = ctx["browser"]
    before = query(b, "select count(*) as n, sum(trip_count) as trips, sum(total_amount) as amount from daily_metrics")
    b.click(b.find("compare-lesson-button"))
    b.wait("four strategies compared", lambda: len(b.find_all("compare-variant")) == 4, timeout=240)
    b.wait("idle status", lambda: "Ready" in b.text(b.find("status")))
    drift = {b.attr(row, "data-strategy"): b.attr(row, "data-drift-days") for row in b.find_all("compare-variant")}
    expected = {
        "max-filter": "2008-12-31,2023-03-15,2023-03-31,2023-04-02,2023-04-05",
        "partitioned": "2008-12-31",
        "microbatch": "2008-12-31,2023-03-15,2023-04-02,2023-04-05",
        "full-refresh": "",
    }
    check(drift == expected, f"drift days {drift}")
    late = b.js("return document.querySelector('[data-testid=\"compare-cell\"][data-strategy=\"max-filter\"]"
                "[data-date=\"2023-03-15\"]').getAttribute('data-delta');")
    check(late == "-400", f"the max filter misses the 400 late trips of 2023-03-15 (delta {late!r})")
    after = query(b, "select count(*) as n, sum(trip_count) as trips, sum(total_amount) as amount from daily_metrics")
    check(before == after, "comparing changed the session's daily_metrics")
    b.js("document.querySelector('.compare-panel').scrollIntoView()")
    b.screenshot(ctx["shots"] / "compare.png")


def open_model(b, name):
    b.js("document.querySelector(`[data-testid=\"lineage-node\"][data-id=\"model:${arguments[0]}\"]`)"
         ".dispatchEvent(new MouseEvent('click', {bubbles: true}));", name)


def drawn_edges(b):
    """The lineage graph's ref and source arrows, (from, to) node ids."""
    return {tuple(e) for e in b.js(
        "return Array.from(document.querySelectorAll('[data-testid=\"lineage-edge\"]'))"
        ".filter(e => e.getAttribute('data-kind') !== 'test').map(e => [e.getAttribute('data-from'), e.getAttribute('data-to')]);")}


def written_edges(models):
    """One (from, to) per distinct ref() and source() each model file writes."""
    edges = set()
    for path in models.rglob("*.sql"):
        for kind, args in re.findall(r"\b(ref|source)\(([^)]*)\)", path.read_text()):
            names = re.findall(r"'([^']*)'", args)
            parent = f"model:{names[-1]}" if kind == "ref" else f"source:{names[0]}.{names[1]}"
            edges.add((parent, f"model:{path.stem}"))
    return edges


def the_lineage_graph_draws_every_ref_and_source(ctx):
    """The lesson project as a graph: one arrow per ref/source its models write (read from its
    export), nodes with their materialization; a node opens its model in the editor."""
    b, cli, work = ctx["browser"], ctx["cli"], ctx["work"]
    exported = work / "lineage-export.zip"
    cli.run("export", "--out", str(exported))
    with zipfile.ZipFile(exported) as z:
        z.extractall(work / "lineage-export")
    expected = written_edges(work / "lineage-export" / "analytics" / "models")
    check(len(expected) == 5 and drawn_edges(b) == expected, f"arrows {sorted(drawn_edges(b))}, the models write {sorted(expected)}")
    label = b.js("return document.querySelector('[data-testid=\"lineage-node\"][data-id=\"model:stg_zones\"] title').textContent;")
    check(label == "stg_zones table · built, model", f"stg_zones is labelled {label!r}")
    open_model(b, "stg_zones")
    check("ref" not in b.prop(b.find("model-editor"), "value") and "source(" in b.prop(b.find("model-editor"), "value"),
          "clicking stg_zones opens its SQL in the editor")
    b.js("document.querySelector('.project-panel').scrollIntoView()")
    b.screenshot(ctx["shots"] / "lineage.png")
    open_model(b, "daily_metrics")


def statuses(b):
    return dict(b.js("return Array.from(document.querySelectorAll('.calendar .day'))"
                     ".map(d => [d.getAttribute('data-testid').slice(10), d.getAttribute('data-status')]);"))


def the_backfill_dialog_picks_by_status_and_goes_on_past_a_failure(ctx):
    """After the lesson's step 6: "All stale" picks exactly the stale days; a backfill whose
    second day fails materializes the others, and "Re-run failed" finishes it once fixed."""
    b = ctx["browser"]
    stale = sorted(d for d, s in statuses(b).items() if s == "stale")
    check(stale, "the lesson leaves stale days")
    b.click(b.find("backfill-button"))
    b.click(b.find("backfill-all-stale"))
    field = b.prop(b.find("backfill-partitions"), "value")
    check(expand(field) == stale, f"all stale picked {field!r}, the calendar shows {stale}")
    summary = b.text(b.find("backfill-summary"))
    check(summary == f"{len(stale)} partition{'s' if len(stale) > 1 else ''} → {len(stale)} run{'s' if len(stale) > 1 else ''}",
          f"summary {summary!r} for stale days {stale}")
    b.click(b.find("policy-single-run"))
    set_field(b, "backfill-partitions", "2023-04-10...2023-04-12, 2023-04-20", "input")
    check(b.text(b.find("backfill-summary")) == "4 partitions → 2 runs", f"single run: {b.text(b.find('backfill-summary'))!r}")
    commands = b.text(b.find("backfill-preview"))
    check("""dbt build --select daily_metrics --vars '{"min_date": "2023-04-10", "max_date": "2023-04-13"}'""" in commands,
          f"the preview's commands:\n{commands}")
    b.screenshot(ctx["shots"] / "backfill-dialog.png")
    check("backfill_policy=BackfillPolicy.single_run()," in exported_definitions(b), "the export runs the chosen policy")
    b.click(b.find("policy-per-partition"))
    check(b.text(b.find("backfill-summary")) == "4 partitions → 4 runs", f"per partition: {b.text(b.find('backfill-summary'))!r}")
    check("backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1)," in exported_definitions(b),
          "the export follows the policy chosen")
    b.click(b.find("backfill-close"))

    # Break 2023-04-11 only, then launch.
    open_model(b, "daily_metrics")
    original = b.prop(b.find("model-editor"), "value")
    broken = original.replace("select *\nfrom daily_summary",
                              "select *{% if var('min_date', '') == '2023-04-11' %}, no_such_column{% endif %}\nfrom daily_summary")
    check(broken != original, "the model text changed")
    set_field(b, "model-editor", broken, "input")
    b.click(b.find("editor-save"))
    b.wait("the edit used", lambda: not b.find_all("editor-save"))
    b.click(b.find("backfill-button"))
    set_field(b, "backfill-partitions", "2023-04-10...2023-04-12, 2023-04-20", "input")
    b.click(b.find("backfill-launch"))
    message = b.wait("the failure", lambda: b.find_all("error-message") and b.text(b.find("error-message")))
    check(message.startswith("1 of 4 partition runs failed (the other 3 were materialized): 2023-04-11: ") and "no_such_column" in message,
          f"error says {message!r}")
    got = {d: statuses(b)[d] for d in ("2023-04-10", "2023-04-11", "2023-04-12", "2023-04-20")}
    check(got == {"2023-04-10": "materialized", "2023-04-11": "failed", "2023-04-12": "materialized", "2023-04-20": "materialized"},
          f"statuses after the backfill {got}")
    check(b.text(b.find("rerun-failed")) == "Re-run failed (1)", "the calendar offers the failed day")
    set_field(b, "model-editor", original, "input")
    b.click(b.find("editor-save"))
    b.wait("the fix used", lambda: not b.find_all("editor-save"))
    b.click(b.find("rerun-failed"))
    b.wait("04-11 materialized", lambda: status_of(b, "2023-04-11") == "materialized")
    check(not b.find_all("rerun-failed"), "nothing failed is left")


def audit(b, ctx, where):
    """axe-core's serious and critical violations on the page as it is now."""
    b.js(ctx["axe"] + "\nreturn typeof window.axe;")
    found = b.js_async("const done = arguments[0];"
                       "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations"
                       ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
                       ".map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))),"
                       " e => done(['axe failed: ' + e]));")
    check(found == [], f"accessibility violations {where}: {found}")


def the_page_passes_an_accessibility_audit_light_and_dark(ctx):
    """axe-core on the main views (lesson step, strategies, calendar with every status, a run
    opened, the backfill dialog), in the light theme and the dark one the toggle picks; the
    choice survives a reload."""
    b = ctx["browser"]
    b.js("document.querySelector('[data-testid=\"run-entry\"] summary').click();")
    for theme in ("light", "dark"):
        if b.js("return document.documentElement.dataset.theme || 'light';") != theme:
            b.click(b.find("theme-toggle"))
        check(b.attr(b.find("theme-toggle"), "aria-pressed") == str(theme == "dark").lower(), f"the toggle shows {theme}")
        background = b.js("return getComputedStyle(document.documentElement).backgroundColor;")
        check((background == "rgb(17, 21, 31)") == (theme == "dark"), f"{theme}: the page's background is {background}")
        audit(b, ctx, f"on the page ({theme})")
        b.screenshot(ctx["shots"] / f"page-{theme}-1280x800.png")
        b.js("document.querySelector('.partitions-panel').scrollIntoView()")
        b.screenshot(ctx["shots"] / f"partitions-{theme}-1280x800.png")
        b.click(b.find("backfill-button"))
        audit(b, ctx, f"in the backfill dialog ({theme})")
        b.click(b.find("backfill-close"))
    b.set_size(390, 844)
    b.screenshot(ctx["shots"] / "phone-dark-390x844.png")
    b.set_size(1280, 800)
    b.open(ctx["url"])
    wait_ready(b)
    check(b.js("return document.documentElement.dataset.theme;") == "dark", "the dark choice survives a reload")
    b.click(b.find("theme-toggle"))
    check(b.js("return document.documentElement.dataset.theme;") == "light", "the toggle goes back to light")


def exported_definitions(b):
    """The Dagster code in the page's dbt project export."""
    encoded = b.js_async(
        "const done = arguments[0];"
        "backfill.exportProject().then(z => { let s = ''; z.forEach(x => s += String.fromCharCode(x)); done(btoa(s)); },"
        " e => done('error: ' + e.message));")
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(encoded))) as z:
        return z.read("orchestration/definitions.py").decode()


def expand(selection):
    """`2023-04-04..2023-04-06, 2023-04-10` → every day it names."""
    from datetime import date, timedelta
    days = []
    for part in selection.split(", "):
        first, _, last = part.partition("..")
        first, last = date.fromisoformat(first), date.fromisoformat(last or first)
        days += [str(first + timedelta(n)) for n in range((last - first).days + 1)]
    return days


def import_a_project(ctx):
    b, cli, work = ctx["browser"], ctx["cli"], ctx["work"]
    exported = work / "for-import.zip"
    cli.run("export", "--out", str(exported))
    folder = work / "imported-project"
    with zipfile.ZipFile(exported) as z:
        z.extractall(folder)
    # An ephemeral model, inlined as a CTE into the one that reads it.
    (folder / "analytics" / "models" / "marts" / "pickups_by_zone.sql").write_text(
        "{{ config(materialized='ephemeral') }}\nselect pickup_zone_id, count(*) as trips\nfrom {{ ref('stg_trips') }}\ngroup by all\n")
    busiest = "select *\nfrom {{ ref('pickups_by_zone') }}\norder by trips desc, pickup_zone_id\nlimit 5\n"
    (folder / "analytics" / "models" / "marts" / "busiest_zones.sql").write_text(busiest)
    # dbt's tests: a relationships test, a warning (no zone has 0 trips), a project's singular test.
    (folder / "analytics" / "models" / "marts" / "busiest_zones.yml").write_text(
        "version: 2\nmodels:\n  - name: busiest_zones\n    description: '{{ doc(\"busiest\") }}'\n    columns:\n      - name: pickup_zone_id\n"
        "        data_tests:\n          - relationships:\n              arguments: {to: ref('stg_zones'), field: zone_id}\n"
        "      - name: trips\n        data_tests:\n          - accepted_values:\n              arguments: {values: [0]}\n"
        "              config: {severity: warn}\n"
        "  - name: retired_zones\n    description: no SQL any more, so dbt warns and leaves it out\n")
    # Its description is a docs block, as dbt docs reads it.
    (folder / "analytics" / "models" / "marts" / "docs.md").write_text(
        "{% docs busiest %}\nThe five pickup zones with the most trips.\n{% enddocs %}\n")
    (folder / "analytics" / "tests").mkdir(exist_ok=True)
    (folder / "analytics" / "tests" / "busiest_zones_have_trips.sql").write_text(
        "select * from {{ ref('busiest_zones') }} where trips < 1\n")
    # A package as `dbt deps` installs it, and dbt_utils (built in): a model reading the
    # warehouse's columns through dbt_utils.star, a package macro, a dbt_utils test.
    package = folder / "analytics" / "dbt_packages" / "zone_tools"
    (package / "macros").mkdir(parents=True)
    (package / "dbt_project.yml").write_text("name: zone_tools\nversion: '1.0.0'\n")
    (package / "macros" / "share.sql").write_text(
        "{% macro percent_of(part, whole) %}round(100.0 * {{ part }} / {{ whole }}, 1){% endmacro %}\n")
    (folder / "analytics" / "models" / "marts" / "zone_shares.sql").write_text(
        "select {{ dbt_utils.star(ref('busiest_zones'), except=['trips']) }},\n"
        "    {{ zone_tools.percent_of('trips', 'sum(trips) over ()') }} as share\nfrom {{ ref('busiest_zones') }}\n")
    (folder / "analytics" / "models" / "marts" / "zone_shares.yml").write_text(
        "version: 2\nmodels:\n  - name: zone_shares\n    data_tests:\n      - dbt_utils.expression_is_true:\n"
        "          arguments: {expression: 'share between 0 and 100'}\n")
    # A snapshot of the busiest zones, versions told apart by their trip counts.
    (folder / "analytics" / "snapshots").mkdir(exist_ok=True)
    (folder / "analytics" / "snapshots" / "busiest.sql").write_text(
        "{% snapshot busiest_history %}\n{{ config(unique_key='pickup_zone_id', strategy='check', check_cols=['trips']) }}\n"
        "select * from {{ ref('busiest_zones') }}\n{% endsnapshot %}\n")
    # Re-zipped with deflate, as zip tools write it.
    archive = work / "my-project.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            z.write(path, path.relative_to(folder))
    b.type_file(b.find("project-import-zip"), archive)
    b.wait("the imported project", lambda: b.find_all("project-imported") and "busiest_zones" in b.text(b.find("project-panel-lineage")))
    b.js("document.querySelector('[data-testid=\"project-warnings\"]').scrollIntoView({block: 'center'});")
    b.screenshot(ctx["shots"] / "project-warnings.png")
    warned = b.text(b.find("project-warnings"))
    check(warned == "Warning: models/marts/busiest_zones.yml: describes model `retired_zones`, which has no .sql file; left out, as dbt does",
          f"the project's warnings: {warned!r}")
    open_model(b, "busiest_zones")
    described = b.wait("busiest_zones' description", lambda: b.find_all("model-description") and b.text(b.find("model-description")))
    check(described == "The five pickup zones with the most trips.", f"busiest_zones is described as {described!r}")
    b.js("document.querySelector('[data-testid=\"model-description\"]').scrollIntoView({block: 'center'});")
    b.screenshot(ctx["shots"] / "model-description.png")
    snapshot_edge = ("model:busiest_zones", "model:busiest_history")
    check(drawn_edges(b) == written_edges(folder / "analytics" / "models") | {snapshot_edge},
          f"the imported project's arrows {sorted(drawn_edges(b))}")
    record = b.api("build", {"select": "busiest_zones+"})
    check("ok" in record, f"building the imported model: {record}")
    got = query(b, "select * from busiest_zones order by trips desc, pickup_zone_id")
    expected = query(b, "select pickup_zone_id, count(*) as trips from stg_trips group by all order by trips desc, pickup_zone_id limit 5")
    check(got == expected and len(got) == 5, f"busiest_zones {got} vs {expected}")
    compiled = record["ok"]["models"][0]["compiled_sql"]
    check(compiled.startswith("with __dbt__cte__pickups_by_zone as (") and "from __dbt__cte__pickups_by_zone" in compiled,
          f"busiest_zones compiled with its ephemeral parent inlined: {compiled!r}")
    shares = query(b, "select * from zone_shares order by share desc, pickup_zone_id")
    check([list(row) for row in shares] == [["pickup_zone_id", "share"]] * 5 and round(sum(r["share"] for r in shares)) == 100,
          f"zone_shares: the package's macro over dbt_utils.star's columns: {shares}")
    history = query(b, "select count(*) as versions, count(dbt_valid_to) as closed, count(distinct dbt_scd_id) as ids from busiest_history")
    check(history == [{"versions": 5, "closed": 0, "ids": 5}], f"the snapshot's first run: {history}")
    counts = len({row["trips"] for row in got})
    tests = {t["name"]: (t["status"], t["failures"]) for t in record["ok"]["tests"]}
    check(tests == {"accepted_values_busiest_zones_trips__0": ("warn", counts), "busiest_zones_have_trips": ("success", 0),
                    "dbt_utils_expression_is_true_zone_shares_share_between_0_and_100": ("success", 0),
                    "relationships_busiest_zones_pickup_zone_id__zone_id__ref_stg_zones_": ("success", 0)},
          f"the imported project's tests: {tests}")
    b.js("document.querySelector('[data-testid=\"run-tests\"]').closest('details').querySelector('summary').click();")
    b.js("document.querySelector('[data-testid=\"run-tests\"]').scrollIntoView({block: 'center'});")
    b.screenshot(ctx["shots"] / "imported-project-tests.png")
    shown = b.text(b.find("run-tests"))
    check(shown.splitlines() == [f"accepted_values_busiest_zones_trips__0 warn: {counts} failing", "busiest_zones_have_trips pass",
                                 "relationships_busiest_zones_pickup_zone_id__zone_id__ref_stg_zones_ pass",
                                 "dbt_utils_expression_is_true_zone_shares_share_between_0_and_100 pass"],
          f"the run shows its tests as {shown!r}")
    again = b.api("build", {"command": "snapshot", "select": "busiest_history"})
    runs = [(m["name"], m["rows_inserted"], m["rows_updated"]) for m in again.get("ok", {}).get("models", [])]
    check(runs == [("busiest_history", 0, 0)], f"a snapshot of unchanged rows adds no version: {again}")

    not_a_project = work / "notes.zip"
    with zipfile.ZipFile(not_a_project, "w") as z:
        z.writestr("notes/readme.md", "just notes")
    b.type_file(b.find("project-import-zip"), not_a_project)
    message = b.wait("an error message", lambda: b.find_all("error-message") and b.text(b.find("error-message")))
    check("notes.zip" in message and "not a dbt project" in message, f"error says {message!r}")
    check("busiest_zones" in b.text(b.find("project-panel-lineage")), "a bad archive changed the project")

    # Dropped: the page's own export (the imported project), as a file dragged onto the import area.
    dropped = b.js_async(
        "const done = arguments[0];"
        "backfill.exportProject().then(bytes => {"
        "  const transfer = new DataTransfer();"
        "  transfer.items.add(new File([bytes], 'dropped-project.zip', {type: 'application/zip'}));"
        "  const target = document.querySelector('[data-testid=\"project-import\"]');"
        "  target.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));"
        "  done('dropped');"
        "}, e => done('error: ' + e.message));")
    check(dropped == "dropped", dropped)
    b.wait("the dropped project", lambda: "dropped-project.zip" in b.text(b.find("project-imported")))
    check("busiest_zones" in b.text(b.find("project-panel-lineage")), "the export of the imported project keeps its model")

    # A folder picked whole: the project without the new model.
    for added in ["models/marts/busiest_zones.sql", "models/marts/busiest_zones.yml", "tests/busiest_zones_have_trips.sql",
                  "snapshots/busiest.sql", "models/marts/zone_shares.sql", "models/marts/zone_shares.yml"]:
        (folder / "analytics" / added).unlink()
    b.type_file(b.find("project-import-folder"), folder)
    b.wait("the folder's project", lambda: "busiest_zones" not in b.text(b.find("project-panel-lineage")))
    check("daily_metrics" in b.text(b.find("project-panel-lineage")), "the folder's models are listed")


def set_field(b, testid, value, event):
    b.js(f"const e = document.querySelector('[data-testid=\"{testid}\"]');"
         f" e.value = arguments[0]; e.dispatchEvent(new Event('{event}', {{bubbles: true}}));", value)


def the_page_answers_during_a_long_build(ctx):
    """The engine works in a Web Worker: while a 3M-row month builds, the page's own timer keeps
    ticking and the status counts seconds; Cancel stops the build (its worker is stopped and
    restarted on the saved state) and the page works on."""
    b = ctx["browser"]
    set_field(b, "generate-month", "2023-05", "input")
    set_field(b, "generate-rows", "3000000", "change")
    b.click(b.find("generate-button"))
    b.wait("the 3M-row May", lambda: any(b.attr(c, "data-month") == "2023-05" for c in b.find_all("file-card")), timeout=600)
    b.wait("idle status", lambda: "Ready" in b.text(b.find("status")), timeout=300)
    runs = len(b.find_all("run-entry"))
    daily = "select count(*) as n, md5(string_agg(cast(date_of_business as varchar) || '|' || trip_count, ';'" \
            " order by date_of_business)) as rows from daily_metrics"
    before = query(b, daily)
    check(query(b, "select count(*) as n from stg_trips where partition_date = '2023-05'") == [{"n": 0}],
          "May is not staged before the full refresh")
    b.js("window.__main = {longest: 0, last: performance.now()};"
         "setInterval(() => { const now = performance.now();"
         " __main.longest = Math.max(__main.longest, now - __main.last); __main.last = now; }, 20);")
    b.click(b.find("full-refresh-button"))
    b.wait("the status counting seconds", lambda: b.find_all("elapsed") and b.text(b.find("elapsed")) == "1 s", timeout=120)
    check("Full refresh" in b.text(b.find("status")), f"still building: {b.text(b.find('status'))!r}")
    b.screenshot(ctx["shots"] / "building-3m-rows-1280x800.png")
    longest = b.js("return Math.round(__main.longest);")
    # Not a speed goal: the main thread was free enough for a 20 ms timer to keep ticking.
    check(longest < 1000, f"the page's main thread was blocked for {longest} ms during the build")
    b.click(b.find("cancel-button"))
    b.wait("the cancel", lambda: b.find_all("error-message") and "cancelled" in b.text(b.find("error-message")), timeout=120)
    b.wait("the restarted engine", lambda: "Ready" in b.text(b.find("status")), timeout=300)
    # Cancelled while the build still ran: either the engine stopped at its checkpoint or its worker was
    # stopped and restarted; in both the tables are as they were (a save under way is not cancellable).
    check(len(b.find_all("run-entry")) == runs, "a cancelled build records no run")
    check(query(b, daily) == before, "daily_metrics is as it was before the cancelled full refresh")
    check(query(b, "select count(*) as n from stg_trips where partition_date = '2023-05'") == [{"n": 0}],
          "the cancelled full refresh staged nothing")
    print(f"        longest main-thread gap while a 3M-row full refresh ran: {longest} ms")


def link_of(session):
    """A share-link fragment as the page writes one (JSON, raw deflate, base64url), of anything."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflate.compress(json.dumps(session).encode()) + deflate.flush()
    return "#s=" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def sample_action(month, rows):
    return {"do": "sample", "spec": {"month": month, "rows": rows, "seed": 1, "schema": "Y2023"}}


BUILD_ALL = {"do": "build", "select": "", "full_refresh": False, "vars": {}}


def opfs_files(b):
    """Every file the page saved in this browser, name -> SHA-256 of its bytes."""
    return b.js_async(
        "const done = arguments[0];"
        "(async () => {"
        "  const folder = await (await navigator.storage.getDirectory()).getDirectoryHandle('backfill-state');"
        "  const files = {};"
        "  for await (const [name, handle] of folder.entries()) {"
        "    const bytes = await (await handle.getFile()).arrayBuffer();"
        "    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));"
        "    files[name] = Array.from(digest).map(x => x.toString(16).padStart(2, '0')).join('');"
        "  }"
        "  return files;"
        "})().then(done, e => done('error: ' + e.message));")


def error_text(b):
    return b.find_all("error-message") and b.text(b.find("error-message"))


def in_own_profile(ctx, name, test):
    """Runs `test(browser)` in a fresh browser profile: it starts from the first visit."""
    b = Browser(profile=ctx["work"] / name)
    try:
        b.open(ctx["url"])
        wait_ready(b)
        test(b)
    except (AssertionError, WebDriverError):
        b.screenshot(ctx["shots"] / f"failed-{name}.png")
        raise
    finally:
        b.close()


def a_link_over_the_limits_is_refused_and_the_page_works_on(ctx):
    def test(b):
        runs = b.api("runs")["ok"]
        b.open("about:blank")
        b.open(ctx["url"] + link_of({"version": 1, "actions": [sample_action("2023-05", 100_000_000)]}))
        message = b.wait("the refusal", lambda: "not opened" in (error_text(b) or "") and error_text(b), timeout=120)
        wait_ready(b)
        b.screenshot(ctx["shots"] / "link-refused.png")
        check("not opened" in message and "step 1 of the link" in message.lower()
              and "over Backfill's limit for a generated month (5,000,000 rows)" in message, f"refusal {message!r}")
        check("#" not in b.js("return location.href;"), "the refused link is still in the address bar")
        check(query(b, "select count(*) as n from trips") == [{"n": SAMPLE[1]}], "the session changed")
        check(b.api("runs")["ok"] == runs, "the refused link recorded a run")
        check("ok" in b.api("materialize", {"partition": "2023-03-04"}), "the page does not work on after the refusal")

        # Big, but within the limits: the page asks first, and declining drops the link.
        runs = b.api("runs")["ok"]
        b.open("about:blank")
        b.open(ctx["url"] + link_of({"version": 1, "actions": [sample_action("2023-05", 2_000_000)]}))
        prompt = b.wait("the big-work question", lambda: b.s("/alert/text", method="GET"))
        check("2,000,000 trips" in prompt, f"the question {prompt!r}")
        b.s("/alert/dismiss", {})
        message = b.wait("the note on the declined link", lambda: "not opened" in (error_text(b) or "") and error_text(b),
                         timeout=120)
        wait_ready(b)
        check("not opened" in message and "2,000,000 trips" in message, f"note {message!r}")
        check("#" not in b.js("return location.href;"), "the declined link is still in the address bar")
        check(b.api("runs")["ok"] == runs, "the declined link changed the session")
    in_own_profile(ctx, "profile-huge-link", test)


def a_link_that_fails_part_way_leaves_the_saved_session_as_it_was(ctx):
    def test(b):
        check("ok" in b.api("materialize", {"partition": "2023-03-04"}), "a partition run to keep")
        before = (table_fingerprints(b), b.api("runs")["ok"], opfs_files(b))
        check(isinstance(before[2], dict) and "manifest.json" in before[2], f"saved files {before[2]}")
        # Replays a month and a build, then fails on a model that does not exist.
        failing = {"version": 1, "actions": [sample_action("2023-04", 1000), BUILD_ALL,
                                             {"do": "model", "name": "nope", "sql": "select 1"}]}
        b.open("about:blank")
        b.open(ctx["url"] + link_of(failing))
        prompt = b.wait("the replace prompt", lambda: b.s("/alert/text", method="GET"))
        check("replaces the session saved in this browser" in prompt, f"prompt {prompt!r}")
        b.s("/alert/accept", {})
        message = b.wait("the failure", lambda: "not opened" in (error_text(b) or "") and error_text(b), timeout=120)
        wait_ready(b)
        check("not opened" in message and "step 3 of the link (edit model nope)" in message.lower(), f"message {message!r}")
        check("#" not in b.js("return location.href;"), "the failed link is still in the address bar")
        after = (table_fingerprints(b), b.api("runs")["ok"], opfs_files(b))
        check(after[0] == before[0], f"tables changed: {[n for n in TABLES if after[0][n] != before[0][n]]}")
        check(after[1] == before[1], "runs changed")
        check(after[2] == before[2], f"saved files changed: {sorted(set(after[2]) ^ set(before[2]))}")
        b.open(ctx["url"])
        wait_ready(b)
        check((table_fingerprints(b), b.api("runs")["ok"], opfs_files(b)) == before, "the reloaded session differs")
    in_own_profile(ctx, "profile-failing-link", test)


def a_model_named_a_tilde_b_survives_a_reload(ctx):
    cli, work = ctx["cli"], ctx["work"]
    exported = work / "tilde-export.zip"
    cli.run("export", "--out", str(exported))
    archive = work / "tilde-project.zip"
    with zipfile.ZipFile(exported) as source, zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("analytics/models/marts/a~b.sql", "select count(*) as trips from {{ ref('stg_trips') }}\n")

    def test(b):
        b.type_file(b.find("project-import-zip"), archive)
        b.wait("the imported a~b", lambda: "a~b" in b.text(b.find("project-panel-lineage")))
        record = b.api("build", {"select": "a~b"})
        check("ok" in record, f"building a~b: {record}")
        built = query(b, 'select * from "a~b"')
        check(built == query(b, "select count(*) as trips from stg_trips"), f"a~b holds {built}")
        b.open(ctx["url"])
        wait_ready(b)
        check(not error_text(b), f"the reload says {error_text(b)!r}")
        check(query(b, 'select * from "a~b"') == built, "a~b lost on reload")
        check("a~b" in b.text(b.find("project-panel-lineage")), "the project lost a~b on reload")
        check(not [n for n in opfs_files(b) if "~" in n], "a saved file's name still holds a ~")
    in_own_profile(ctx, "profile-tilde", test)


def a_saved_session_that_cannot_be_opened_can_be_reset(ctx):
    def test(b):
        written = b.js_async(
            "const done = arguments[0];"
            "(async () => {"
            "  const folder = await (await navigator.storage.getDirectory()).getDirectoryHandle('backfill-state');"
            "  const file = await (await folder.getFileHandle('manifest.json')).createWritable();"
            "  await file.write('{\"tables\": 7'); await file.close(); return 'written';"
            "})().then(done, e => done('error: ' + e.message));")
        check(written == "written", f"corrupting the saved manifest: {written}")
        b.open(ctx["url"])
        message = b.wait("the saved session's error", lambda: "cannot be opened" in (error_text(b) or "") and error_text(b),
                         timeout=120)
        b.screenshot(ctx["shots"] / "saved-session-cannot-open.png")
        check("Reset clears it" in message, f"message {message!r}")
        b.click(b.find("reset-button"))
        b.s("/alert/accept", {})
        wait_ready(b)
        check(not error_text(b), f"after Reset the page says {error_text(b)!r}")
        check(query(b, "select count(*) as n from trips") == [{"n": SAMPLE[1]}], "Reset did not bring the sample back")
        b.open(ctx["url"])
        wait_ready(b)
        check(not error_text(b), f"the reload after Reset says {error_text(b)!r}")
    in_own_profile(ctx, "profile-unopenable", test)


def a_reload_during_a_backfill_reopens_on_a_whole_partition_run(ctx):
    """Stale daily_metrics (March regenerated smaller, only stg_trips rebuilt), so every partition run
    changes it; the CLI gives each table after 0..7 runs of the week; the page, reloaded while it
    backfills the week, must come back with one of them, and as many partitions materialized."""
    cli, work = ctx["cli"], ctx["work"]
    state = work / "backfill-week-state"
    smaller = work / "smaller" / "yellow_tripdata_2023-03.parquet"
    smaller.parent.mkdir(exist_ok=True)
    cli.run("load", "--state", str(state), str(work / "yellow_tripdata_2023-03.parquet"))
    cli.run("build", "--state", str(state))
    cli.run("gen", "--month", "2023-03", "--rows", "50000", "--seed", "1", "--out", str(smaller))
    cli.run("load", "--state", str(state), str(smaller))
    cli.run("build", "--state", str(state), "--select", "stg_trips")
    days = [f"2023-03-0{d}" for d in range(1, 8)]

    def test(b):
        first_rows = {name: query(b, f"select * from {name} limit 1")[0] for name in TABLES}
        sql = {name: fingerprint_sql(name, list(row), rounded=[c for c, v in row.items() if isinstance(v, float)])
               for name, row in first_rows.items()}

        def page_prints():
            return {name: query(b, text) for name, text in sql.items()}

        def cli_prints():
            prints = {}
            for name, text in sql.items():
                row = next(csv.DictReader(io.StringIO(cli.run("query", "--state", str(state), "--format", "csv", text))))
                prints[name] = [{"n": int(row["n"]), "rows": row["rows"]}]
            return prints
        expected = [cli_prints()]
        for day in days:
            cli.run("materialize", "--state", str(state), "--partition", day)
            expected.append(cli_prints())
        check(len({json.dumps(e["daily_metrics"]) for e in expected}) == 8, "each partition run should change daily_metrics")

        set_field(b, "generate-month", "2023-03", "input")
        set_field(b, "generate-rows", "50000", "change")
        b.click(b.find("generate-button"))
        b.wait("the smaller March", lambda: query(b, "select count(*) as n from trips") == [{"n": 50000}], timeout=120)
        check("ok" in b.api("build", {"select": "stg_trips"}), "rebuilding stg_trips")
        before = page_prints()
        check(before == expected[0], f"the page and the CLI differ before the backfill: "
                                     f"{[(n, before[n], expected[0][n]) for n in TABLES if before[n] != expected[0][n]]}")
        check(status_of(b, "2023-03-01") != "materialized", f"2023-03-01 is {status_of(b, '2023-03-01')} before the backfill")
        # The page reloads itself the moment the first partition shows as materialized: a poll from
        # here can come too late on a fast machine, after the whole week is done.
        b.js("""
            window.beforeTheReload = true;
            new MutationObserver(() => {
                const first = document.querySelector('[data-testid="partition-2023-03-01"]');
                if (first && first.dataset.status === 'materialized') location.reload();
            }).observe(document.body, {subtree: true, childList: true, attributes: true});
            backfill.materialize({partition: '2023-03-01..2023-03-07'});
            return 1;""")
        b.wait("the page to reload itself", lambda: b.js("return window.beforeTheReload === undefined;"), timeout=120)
        wait_ready(b)
        done = [p["partition"] for p in b.api("partitions")["ok"] if p["status"] == "materialized"]
        got = page_prints()
        check(done == days[:len(done)], f"materialized after the reload: {done}")
        check(len(done) < len(days), "the reload came after the backfill ended: nothing was interrupted")
        differing = [n for n in TABLES if got[n] != expected[len(done)][n]]
        check(not differing, f"after {len(done)} partition runs, {differing} differ from the CLI's")
        print(f"        reloaded after {len(done)} of {len(days)} partition runs")
    in_own_profile(ctx, "profile-backfill-reload", test)


def small_screen(ctx):
    b = ctx["browser"]
    b.set_size(390, 844)
    b.screenshot(ctx["shots"] / "phone-390x844.png")
    width = b.js("return document.documentElement.scrollWidth;")
    check(width <= 390, f"the page scrolls sideways at 390 px ({width} px wide)")
    label = b.wait("the chart redrawn for a phone", lambda: (lambda h: h >= 9 and h)(
        b.js("return document.querySelector('.chart .tick').getBoundingClientRect().height;")))
    print(f"        chart labels on a phone: {label:.1f} px high")
    b.set_size(1280, 800)
    b.screenshot(ctx["shots"] / "after-1280x800.png")


TESTS = [opening_shows_the_sample_chart, the_page_runs_only_its_own_code, materialize_a_partition, the_calendar_works_by_keyboard,
         the_scratchpad_runs_a_query_with_a_ref, the_lineage_graph_draws_every_ref_and_source, upload_a_zstd_month, a_bad_file_changes_nothing,
         page_api_matches_the_cli, a_crash_in_the_engine_is_contained, reload_keeps_state, share_link_names_missing_files, lesson_walks_six_steps,
         time_travel_shows_earlier_tables, share_link_reopens_in_a_fresh_profile, strategies_side_by_side,
         the_backfill_dialog_picks_by_status_and_goes_on_past_a_failure, the_page_passes_an_accessibility_audit_light_and_dark,
         import_a_project,
         the_page_answers_during_a_long_build, a_link_over_the_limits_is_refused_and_the_page_works_on,
         a_link_that_fails_part_way_leaves_the_saved_session_as_it_was, a_model_named_a_tilde_b_survives_a_reload,
         a_saved_session_that_cannot_be_opened_can_be_reset,
         a_reload_during_a_backfill_reopens_on_a_whole_partition_run, small_screen]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dist", required=True)
    parser.add_argument("--backfill", required=True)
    parser.add_argument("--axe", required=True, help="axe-core's axe.min.js (npm axe-core), injected for the accessibility audit")
    parser.add_argument("--screenshots")
    parser.add_argument("--only", help="comma-separated test names to run, in the suite's order (for debugging)")
    args = parser.parse_args()
    tests = [t for t in TESTS if not args.only or t.__name__ in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="browser-") as work:
        work = Path(work)
        shots = Path(args.screenshots) if args.screenshots else work / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        cli = Cli(args.backfill, work)
        cli.run("load", "--state", str(cli.state), str(cli.gen(*SAMPLE)))
        cli.run("build", "--state", str(cli.state))
        server = StaticServer(Path(args.dist))
        browser = Browser()
        ctx = {"browser": browser, "cli": cli, "url": server.url, "work": work, "shots": shots,
               "axe": Path(args.axe).read_text()}
        passed = failed = 0
        try:
            for test in tests:
                try:
                    test(ctx)
                    passed += 1
                    print(f"ok      {test.__name__}", flush=True)
                except (AssertionError, WebDriverError) as e:
                    failed += 1
                    print(f"FAILED  {test.__name__}: {e}", flush=True)
                    browser.screenshot(shots / f"failed-{test.__name__}.png")
                except Exception:  # noqa: BLE001 - reported, counted, and the run goes on
                    failed += 1
                    print(f"FAILED  {test.__name__}", flush=True)
                    traceback.print_exc()
        finally:
            browser.close()
            server.close()
        if not args.screenshots:
            print(f"screenshots were in {shots} (pass --screenshots DIR to keep them)")
    print(f"browser: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
