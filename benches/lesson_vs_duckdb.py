"""Benchmark (not a test): the lesson's stg_trips + daily_metrics on generated rows, natively in
backfill and in DuckDB (Python `duckdb`) on the same file and the same compiled SQL. Prints
times and ratios; the aims are a full build <= 1.5x DuckDB and a daily partition <= 5% of a
full build.

    python3 benches/lesson_vs_duckdb.py --backfill BIN [--rows 3000000] [--repeat 3]

Backfill's times are the engine's own run durations (from its run history), so they leave out
reading and writing the state folder, as DuckDB's leave out opening its database.

benches/tab_vs_duckdb_wasm.py imports the functions below for its native rows.
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
from run import ZONES, ensure_venv  # noqa: E402  (shared venv with dbt + duckdb)

PARTITION = "2023-03-04"


def bf(binary, *args):
    done = subprocess.run([binary, *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"backfill {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def runs_of(state):
    return json.loads((state / "manifest.json").read_text())["runs"]


def last_run(state):
    return runs_of(state)[-1]


def generate(binary, rows, out):
    """`backfill gen` of March 2023 (seed 1); prints its speed."""
    started = time.perf_counter()
    bf(binary, "gen", "--month", "2023-03", "--rows", str(rows), "--seed", "1", "--out", str(out))
    seconds = time.perf_counter() - started
    print(f"gen: {rows:,} rows in {seconds:.2f} s ({rows / seconds / 1e6:.2f} M rows/s, incl. Parquet write)")


def trips_sql(source):
    """main.trips as `backfill load` ingests a TLC file: the lesson's names, one month."""
    return (
        "create table main.trips as select VendorID::integer as vendor_id, PULocationID::integer as pickup_zone_id,"
        " DOLocationID::integer as dropoff_zone_id, RatecodeID::double as rate_code_id,"
        " payment_type::integer as payment_type, tpep_dropoff_datetime as dropoff_datetime,"
        " tpep_pickup_datetime as pickup_datetime, trip_distance, passenger_count::double as passenger_count,"
        f" total_amount, '2023-03' as partition_date from {source}"
    )


def zones_sql(csv_path):
    return f"create table main.zones as select LocationID as zone_id, zone, borough from read_csv_auto('{csv_path}')"


def full_build_sql(sql):
    """The full refresh as dbt-duckdb runs it: each model replaced by its select."""
    return [f'create or replace table "main"."stg_trips" as {sql["stg_trips"]}',
            f'create or replace table "main"."daily_metrics" as {sql["daily_metrics"]}']


def delete_insert_sql(incremental_sql):
    """dbt-duckdb's delete+insert: new rows into a temp table, delete their keys, insert."""
    return [f"create or replace temp table daily_new as {incremental_sql}",
            'delete from "main"."daily_metrics" where date_of_business in (select date_of_business from daily_new)',
            'insert into "main"."daily_metrics" select * from daily_new']


def time_backfill(binary, data, state, repeat):
    """Loads `data` into a new state, then `repeat` times a full build and a daily partition.
    Returns the seconds of each (the engine's run durations) and the compiled SQL, with
    "partition" the incremental daily_metrics for PARTITION."""
    bf(binary, "load", "--state", str(state), str(data))
    bf(binary, "build", "--state", str(state))
    full, partition = [], []
    for _ in range(repeat):
        bf(binary, "build", "--state", str(state), "--select", "stg_trips daily_metrics", "--full-refresh")
        run = last_run(state)
        full.append(run["duration_ms"] / 1000)
        sql = {m["name"]: m["compiled_sql"] for m in run["models"]}
        bf(binary, "materialize", "--state", str(state), "--partition", PARTITION)
        run = last_run(state)
        partition.append(run["duration_ms"] / 1000)
        sql["partition"] = run["models"][0]["compiled_sql"]
    return full, partition, sql


def time_duckdb(data, sql, database, repeat):
    """The same full builds and partitions in Python duckdb; returns their seconds."""
    import duckdb

    con = duckdb.connect(str(database))
    con.execute(trips_sql(f"read_parquet('{data}')"))
    con.execute(zones_sql(ZONES))
    full, partition = [], []
    for _ in range(repeat):
        full.append(timed_statements(con, full_build_sql(sql)))
        partition.append(timed_statements(con, delete_insert_sql(sql["partition"])))
    con.close()
    return full, partition


def timed_statements(con, statements):
    started = time.perf_counter()
    for statement in statements:
        con.execute(statement)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backfill", required=True)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ensure_venv()

    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        work = Path(work)
        data = work / "yellow_tripdata_2023-03.parquet"
        generate(args.backfill, args.rows, data)
        full, partition, sql = time_backfill(args.backfill, data, work / "state", args.repeat)
        duck_full, duck_partition = time_duckdb(data, sql, work / "duck.duckdb", args.repeat)

    m = statistics.median
    print(f"rows: {args.rows:,}; medians of {args.repeat} runs")
    print(f"full build (stg_trips + daily_metrics): backfill {m(full):.3f} s, duckdb {m(duck_full):.3f} s,"
          f" ratio {m(full) / m(duck_full):.2f}x (aim <= 1.5x)")
    print(f"daily partition {PARTITION}: backfill {m(partition):.3f} s, duckdb {m(duck_partition):.3f} s,"
          f" ratio {m(partition) / m(duck_partition):.2f}x")
    print(f"partition / full build: backfill {m(partition) / m(full):.1%} (aim <= 5%),"
          f" duckdb {m(duck_partition) / m(duck_full):.1%}")


if __name__ == "__main__":
    main()
