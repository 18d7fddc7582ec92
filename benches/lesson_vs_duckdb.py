"""Benchmark (not a test): the lesson's stg_trips + daily_metrics on generated rows, natively in
backfill and in DuckDB (Python `duckdb`) on the same file and the same compiled SQL. Prints
times and ratios; the aims are a full build <= 1.5x DuckDB and a daily partition <= 5% of a
full build.

    python3 benches/lesson_vs_duckdb.py --backfill BIN [--rows 3000000] [--repeat 3]

Backfill's times are the engine's own run durations (from its run history), so they leave out
reading and writing the state folder, as DuckDB's leave out opening its database.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "parity"))
from run import VENV, ZONES, ensure_venv  # noqa: E402  (shared venv with dbt + duckdb)


def bf(binary, *args):
    done = subprocess.run([binary, *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"backfill {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def last_run(state):
    runs = json.loads((state / "manifest.json").read_text())["runs"]
    return runs[-1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backfill", required=True)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ensure_venv()
    import duckdb

    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        work = Path(work)
        data = work / "yellow_tripdata_2023-03.parquet"
        started = time.perf_counter()
        bf(args.backfill, "gen", "--month", "2023-03", "--rows", str(args.rows), "--seed", "1", "--out", str(data))
        gen_seconds = time.perf_counter() - started
        print(f"gen: {args.rows:,} rows in {gen_seconds:.2f} s ({args.rows / gen_seconds / 1e6:.2f} M rows/s, incl. Parquet write)")

        state = work / "state"
        bf(args.backfill, "load", "--state", str(state), str(data))
        bf(args.backfill, "build", "--state", str(state))
        full, partition = [], []
        for _ in range(args.repeat):
            bf(args.backfill, "build", "--state", str(state), "--select", "stg_trips daily_metrics", "--full-refresh")
            run = last_run(state)
            full.append(run["duration_ms"] / 1000)
            sql = {m["name"]: m["compiled_sql"] for m in run["models"]}
            bf(args.backfill, "materialize", "--state", str(state), "--partition", "2023-03-04")
            run = last_run(state)
            partition.append(run["duration_ms"] / 1000)
            incremental_sql = run["models"][0]["compiled_sql"]

        con = duckdb.connect(str(work / "duck.duckdb"))
        con.execute(
            "create table main.trips as select VendorID::integer as vendor_id, PULocationID::integer as pickup_zone_id,"
            " DOLocationID::integer as dropoff_zone_id, RatecodeID::double as rate_code_id,"
            " payment_type::integer as payment_type, tpep_dropoff_datetime as dropoff_datetime,"
            " tpep_pickup_datetime as pickup_datetime, trip_distance, passenger_count::double as passenger_count,"
            f" total_amount, '2023-03' as partition_date from read_parquet('{data}')"
        )
        con.execute(f"create table main.zones as select LocationID as zone_id, zone, borough from read_csv_auto('{ZONES}')")
        duck_full, duck_partition = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            con.execute(f'create or replace table "main"."stg_trips" as {sql["stg_trips"]}')
            con.execute(f'create or replace table "main"."daily_metrics" as {sql["daily_metrics"]}')
            duck_full.append(time.perf_counter() - started)
            # dbt-duckdb's delete+insert: new rows into a temp table, delete their keys, insert.
            started = time.perf_counter()
            con.execute(f"create or replace temp table daily_new as {incremental_sql}")
            con.execute('delete from "main"."daily_metrics" where date_of_business in (select date_of_business from daily_new)')
            con.execute('insert into "main"."daily_metrics" select * from daily_new')
            duck_partition.append(time.perf_counter() - started)
        con.close()

    m = statistics.median
    print(f"rows: {args.rows:,}; medians of {args.repeat} runs")
    print(f"full build (stg_trips + daily_metrics): backfill {m(full):.3f} s, duckdb {m(duck_full):.3f} s,"
          f" ratio {m(full) / m(duck_full):.2f}x (aim <= 1.5x)")
    print(f"daily partition 2023-03-04: backfill {m(partition):.3f} s, duckdb {m(duck_partition):.3f} s,"
          f" ratio {m(partition) / m(duck_partition):.2f}x")
    print(f"partition / full build: backfill {m(partition) / m(full):.1%} (aim <= 5%),"
          f" duckdb {m(duck_partition) / m(duck_full):.1%}")


if __name__ == "__main__":
    main()
