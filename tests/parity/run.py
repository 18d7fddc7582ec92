#!/usr/bin/env python3
"""Parity with the real thing: the same dbt project and the same generated TLC files run
through dbt-core + dbt-duckdb and through `backfill`, then every model table compared
(integers, strings and timestamps exactly; floats to 1e-9 relative).

Installs dbt into a cached venv on first use. Prints one line per scenario and a closing
'N passed, N failed' line; exits 1 if any scenario failed.
"""

import argparse
import csv
import datetime as dt
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LESSON = ROOT / "src" / "course" / "builtin"
ZONES = ROOT / "data" / "taxi_zones.csv"
VENV = Path(os.environ.get("BACKFILL_VENV", Path.home() / ".cache" / "backfill-venv"))
# Every package pinned: on a fresh machine pip resolved an unpinned dagster to 1.3 (2023), which
# does not import with the pendulum it brought. dbt-tests-adapter (and the pytest its modules
# import) for fixtures.py: 1.19 is the newest that still requires dbt-core, and its
# incremental/, basic/ and utils/ are the same as 1.20's.
PINS = ["dbt-core~=1.11.0", "dbt-duckdb~=1.11.0", "duckdb~=2.0.0", "pyarrow~=26.0", "dagster~=1.13.0", "dagster-dbt~=0.29.0",
        "dbt-tests-adapter~=1.19.0", "pytest~=9.0"]
MODELS = ["stg_trips", "stg_zones", "location_metrics", "daily_metrics"]


def ensure_venv():
    """Re-runs this script inside a venv with the pinned packages, installing what changed."""
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    marker = VENV / "backfill-pins.txt"
    wanted = "\n".join(PINS)
    if not marker.exists() or marker.read_text() != wanted:
        print(f"installing {', '.join(PINS)} into {VENV}", flush=True)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True)
        marker.write_text(wanted)
    os.execv(str(python), [str(python), *sys.argv])


class Twin:
    """One dbt-duckdb warehouse and one backfill state, fed the same files and commands."""

    def __init__(self, backfill, work, daily_metrics="daily_metrics.sql", extra_models=None, extra_files=None,
                 trips_event_time=None):
        self.backfill = backfill
        self.work = work
        self.project = work / "project"
        self.state = work / "state"
        self.db = work / "warehouse.duckdb"
        models = self.project / "models"
        (models / "staging").mkdir(parents=True)
        (models / "marts").mkdir(parents=True)
        shutil.copy(LESSON / "dbt_project.yml", self.project / "dbt_project.yml")
        shutil.copy(LESSON / "sources.yml", models / "sources.yml")
        for name in ["stg_trips", "stg_zones"]:
            shutil.copy(LESSON / f"{name}.sql", models / "staging" / f"{name}.sql")
        shutil.copy(LESSON / "location_metrics.sql", models / "marts" / "location_metrics.sql")
        shutil.copy(LESSON / daily_metrics, models / "marts" / "daily_metrics.sql")
        for name, sql in (extra_models or {}).items():
            (models / "marts" / f"{name}.sql").write_text(sql)
        for path, text in (extra_files or {}).items():
            (self.project / path).parent.mkdir(parents=True, exist_ok=True)
            (self.project / path).write_text(text)
        if trips_event_time:
            sources = models / "sources.yml"
            sources.write_text(sources.read_text().replace(
                "      - name: trips\n", f"      - name: trips\n        config:\n          event_time: {trips_event_time}\n"))
        shutil.copytree(ROOT / "src" / "dbt" / "project" / "dbt_utils", work / "dbt_utils")
        (self.project / "packages.yml").write_text("packages:\n  - local: ../dbt_utils\n")
        (self.project / "profiles.yml").write_text(
            "analytics:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
            f"      path: '{self.db}'\n      threads: 1\n      settings:\n        threads: 1\n"
        )
        self.dbt("deps")

    # --- the two engines -------------------------------------------------------------
    def dbt(self, *args, ok=True):
        cmd = [str(VENV / "bin" / "dbt"), *args, "--project-dir", str(self.project),
               "--profiles-dir", str(self.project)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.project)
        if ok and done.returncode != 0:
            raise AssertionError(f"dbt {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
        return done.stdout

    def bf(self, *args, ok=True):
        done = subprocess.run([self.backfill, *args], capture_output=True, text=True)
        if ok and done.returncode != 0:
            raise AssertionError(f"backfill {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    # --- what a user does, to both ---------------------------------------------------
    def load(self, path, month):
        import duckdb
        con = duckdb.connect(str(self.db))
        con.execute(
            "create table if not exists main.trips (vendor_id integer, pickup_zone_id integer,"
            " dropoff_zone_id integer, rate_code_id double, payment_type integer,"
            " dropoff_datetime timestamp, pickup_datetime timestamp, trip_distance double,"
            " passenger_count double, total_amount double, partition_date varchar)"
        )
        con.execute("delete from main.trips where partition_date = ?", [month])
        con.execute(
            "insert into main.trips select VendorID, PULocationID, DOLocationID, RatecodeID,"
            " payment_type, tpep_dropoff_datetime, tpep_pickup_datetime, trip_distance,"
            f" passenger_count, total_amount, '{month}' from read_parquet('{path}')"
        )
        con.execute(
            "create table if not exists main.zones as select LocationID as zone_id, zone, borough"
            f" from read_csv_auto('{ZONES}')"
        )
        con.close()
        self.bf("load", "--state", str(self.state), "--month", month, str(path))

    def build(self, select=None, full_refresh=False, vars=None, project=None, event_time=None, exclude=None):
        args, bargs = ["build"], ["build", "--state", str(self.state), "--project", project or str(self.project)]
        if event_time:
            for flag, value in zip(["--event-time-start", "--event-time-end"], event_time):
                args += [flag, value]
                bargs += [flag, value]
        if select:
            args += ["--select", select]
            bargs += ["--select", select]
        if exclude:
            args += ["--exclude", exclude]
            bargs += ["--exclude", exclude]
        if full_refresh:
            args.append("--full-refresh")
            bargs.append("--full-refresh")
        if vars:
            args += ["--vars", json.dumps(vars)]
            bargs += ["--vars", json.dumps(vars)]
        self.dbt(*args)
        self.bf(*bargs)

    def materialize(self, day):
        start = dt.date.fromisoformat(day)
        vars = {"min_date": day, "max_date": (start + dt.timedelta(days=1)).isoformat()}
        self.dbt("build", "--select", "daily_metrics", "--vars", json.dumps(vars))
        self.bf("materialize", "--state", str(self.state), "--project", str(self.project), "--partition", day)

    # --- comparing -------------------------------------------------------------------
    def compare(self, tables=MODELS):
        import duckdb
        con = duckdb.connect(str(self.db), read_only=True)
        for table in tables:
            cur = con.execute(f"select * from main.{table}")
            names = [d[0] for d in cur.description]
            expected = [[duck_text(v) for v in row] for row in cur.fetchall()]
            out = self.bf("query", "--state", str(self.state), "--project", str(self.project),
                          "--format", "csv", f"select * from {table}").stdout
            reader = csv.reader(io.StringIO(out))
            got_names = next(reader)
            got = list(reader)
            if got_names != names:
                raise AssertionError(f"{table}: columns {got_names} != dbt's {names}")
            compare_rows(table, names, expected, got)
            self.compare_types(con, table, names)
        con.close()

    def compare_types(self, con, table, names):
        """Each column's type in backfill (Arrow) is the one DuckDB gave it."""
        duck = [row[1] for row in con.execute(f"describe main.{table}").fetchall()]
        probe = ", ".join(f'arrow_typeof("{n}")' for n in names)
        out = self.bf("query", "--state", str(self.state), "--project", str(self.project),
                      "--format", "csv", f"select {probe} from {table} limit 1").stdout
        rows = list(csv.reader(io.StringIO(out)))
        if len(rows) < 2:
            return  # an empty table: no row to ask
        for name, duck_type, ours in zip(names, duck, rows[1]):
            decimal = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", duck_type)
            expected = f"Decimal128({decimal[1]}, {decimal[2]})" if decimal else ARROW_TYPES.get(duck_type, duck_type)
            if ours not in (expected if isinstance(expected, tuple) else (expected,)):
                raise AssertionError(f"{table}.{name}: type {ours}, DuckDB has {duck_type}")


# DuckDB type → the Arrow type backfill gives the same column. DuckDB sums integers into
# HUGEINT (128-bit); Arrow's 64-bit integer holds every sum these tables can reach.
ARROW_TYPES = {
    "INTEGER": "Int32",
    "BIGINT": "Int64",
    "HUGEINT": "Int64",
    "DOUBLE": "Float64",
    "VARCHAR": ("Utf8", "Utf8View", "LargeUtf8"),
    "BOOLEAN": "Boolean",
    "DATE": "Date32",
    "TIMESTAMP": ("Timestamp(µs)", "Timestamp(Microsecond, None)"),
}


def duck_text(value):
    """A DuckDB value in backfill's CSV form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond:06d}".rstrip("0")
        return text
    if isinstance(value, float):
        return repr(value)
    return str(value)


def numeric(text):
    try:
        return float(text)
    except ValueError:
        return None


def sort_key(row):
    return [f"{float(c):.6g}" if numeric(c) is not None and "." in c else c for c in row]


def compare_rows(table, names, expected, got):
    if len(expected) != len(got):
        raise AssertionError(f"{table}: {len(got)} rows, dbt has {len(expected)}")
    expected.sort(key=sort_key)
    got.sort(key=sort_key)
    problems = []
    for i, (e_row, g_row) in enumerate(zip(expected, got)):
        for name, e, g in zip(names, e_row, g_row):
            if e == g:
                continue
            ef, gf = numeric(e), numeric(g)
            if ef is not None and gf is not None and ("." in e or "e" in e or "." in g):
                if math.isclose(ef, gf, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(ef) and math.isnan(gf)):
                    continue
            problems.append(f"row {i} {name}: backfill {g!r}, dbt {e!r}")
    if problems:
        raise AssertionError(f"{table}: {len(problems)} differing value(s): " + "; ".join(problems[:5]))


# --- scenarios ---------------------------------------------------------------------------
def gen(twin, month, rows=30000, seed=1, schema="2023", name=None):
    path = twin.work / (name or f"yellow_tripdata_{month}.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    twin.bf("gen", "--month", month, "--rows", str(rows), "--seed", str(seed), "--schema", schema,
            "--out", str(path))
    return path


def full_build(twin):
    twin.load(gen(twin, "2023-03"), "2023-03")
    twin.build()
    twin.compare()
    # The built-in project is the same lesson: rebuilding with it reproduces the same tables.
    twin.bf("build", "--state", str(twin.state), "--project", "builtin:lesson", "--full-refresh")
    twin.compare()


def built_models(twin):
    """The lesson's models each side has built so far."""
    import duckdb
    con = duckdb.connect(str(twin.db), read_only=True)
    dbt = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()} & set(MODELS)
    con.close()
    ours = {m for m in MODELS if twin.bf("query", "--state", str(twin.state), "--project", str(twin.project),
                                          f"select 1 from {m} limit 1", ok=False).returncode == 0}
    return dbt, ours


def node_selection(twin):
    """dbt's selectors pick the same models: a source's children, an intersection (a comma),
    then everything downstream of stg_trips but what --exclude names."""
    twin.load(gen(twin, "2023-03"), "2023-03")
    twin.build(select="source:raw_taxis+1")
    twin.build(select="stg_trips+,config.materialized:incremental")
    dbt, ours = built_models(twin)
    if dbt != ours or ours != {"stg_trips", "stg_zones", "daily_metrics"}:
        raise AssertionError(f"after the intersection dbt built {sorted(dbt)}, backfill {sorted(ours)}")
    twin.build(select="stg_trips+", exclude="daily_metrics stg_trips")
    twin.compare()


def partitions_in_order(twin):
    twin.load(gen(twin, "2023-03"), "2023-03")
    twin.build()
    for day in ["2023-03-04", "2023-03-05", "2023-03-06"]:
        twin.materialize(day)
    twin.compare(["daily_metrics"])


def partitions_out_of_order_and_repeated(twin):
    twin.load(gen(twin, "2023-03"), "2023-03")
    twin.build()
    for day in ["2023-03-10", "2023-03-02", "2023-03-10", "2023-03-31", "2023-03-02"]:
        twin.materialize(day)
    twin.compare(["daily_metrics"])


def corrected_source_then_one_partition(twin):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    path = gen(twin, "2023-03")
    twin.load(path, "2023-03")
    twin.build()
    twin.materialize("2023-03-04")
    # Corrections arrive for the 4th: every fare on that day doubles.
    data = pq.read_table(path)
    day = pc.equal(pc.strftime(data["tpep_pickup_datetime"], format="%Y-%m-%d"), "2023-03-04")
    data = data.set_column(data.schema.get_field_index("total_amount"), "total_amount",
                           pc.if_else(day, pc.multiply(data["total_amount"], 2.0), data["total_amount"]))
    corrected = twin.work / "corrected" / "yellow_tripdata_2023-03.parquet"
    corrected.parent.mkdir()
    pq.write_table(data, corrected)
    twin.load(corrected, "2023-03")
    statuses = dict(line.split()[:2] for line in twin.bf(
        "partitions", "--state", str(twin.state), "--project", str(twin.project)).stdout.splitlines())
    if statuses.get("2023-03-04") != "stale":
        raise AssertionError(f"2023-03-04 should be stale after corrected rows, is {statuses.get('2023-03-04')}")
    twin.build(select="stg_trips")
    twin.materialize("2023-03-04")
    twin.compare(["stg_trips", "daily_metrics"])


def max_filter_with_late_trips(twin):
    march = gen(twin, "2023-03")
    twin.load(march, "2023-03")
    twin.build()
    twin.load(gen(twin, "2023-04", seed=2), "2023-04")
    twin.build()
    # Late trips for March: the max-based filter never picks them up, in dbt as here.
    twin.load(gen(twin, "2023-03", rows=31000, name="late/yellow_tripdata_2023-03.parquet"), "2023-03")
    twin.build()
    twin.compare()


# Each run labels its rows (`run_label`), so a merge that keeps a matched row's old values shows.
STRATEGY_MODEL = """{{{{ config(materialized='incremental', incremental_strategy='{strategy}', {config}) }}}}
with daily as (
    select date_trunc('day', pickup_datetime) as date_of_business, count(*) as trip_count, sum(total_amount) as total_amount,
        '{{{{ var('run_label', 'first') }}}}' as run_label
    from {{{{ ref('stg_trips') }}}}
    group by all
)
select * from daily
{{% if is_incremental() %}}
where date_of_business between '{{{{ var('min_date') }}}}' and '{{{{ var('max_date') }}}}'
{{% endif %}}
"""

KEY = "unique_key='date_of_business'"
STRATEGY_MODELS = {name: STRATEGY_MODEL.format(strategy=strategy, config=config) for name, strategy, config in [
    ("by_append", "append", KEY),
    ("by_merge", "merge", KEY),
    ("by_delete_insert", "delete+insert", KEY),
    ("by_merge_some_columns", "merge", f"{KEY}, merge_update_columns=['trip_count']"),
    ("by_merge_all_but", "merge", f"{KEY}, merge_exclude_columns=['run_label', 'TOTAL_AMOUNT']"),
    # An empty key is no key (dbt tests `if unique_key`): each run appends.
    ("by_merge_without_key", "merge", "unique_key=''"),
    ("by_delete_insert_key_twice", "delete+insert", "unique_key=['date_of_business', 'date_of_business']"),
    # dbt-duckdb deletes `where (key) in (…) and <predicate>`: the 4th's old row stays beside its new one.
    ("by_delete_insert_predicates", "delete+insert", f"{KEY}, incremental_predicates=[\"date_of_business <> '2023-03-04'\"]"),
]}


def each_incremental_strategy(twin):
    twin.load(gen(twin, "2023-03"), "2023-03")
    twin.build()
    days = [("2023-03-04", "2023-03-05"), ("2023-03-04", "2023-03-05"), ("2023-03-20", "2023-03-21")]
    for run, (day, nxt) in enumerate(days):
        twin.build(select=" ".join(STRATEGY_MODELS), vars={"min_date": day, "max_date": nxt, "run_label": f"run {run}"})
    twin.compare(list(STRATEGY_MODELS))


MICROBATCH_MODEL = """{{{{ config(materialized='incremental', incremental_strategy='microbatch',
    event_time='{event_time}', batch_size='{size}', begin='2023-03-01', lookback=1) }}}}
select date_trunc('day', pickup_datetime) as date_of_business, pickup_datetime::date as day,
    count(*) as trip_count, sum(total_amount) as total_amount, min(pickup_datetime) as pickup_datetime
from {source}
group by all
"""

MICROBATCH_FILES = {"models/marts/microbatch.yml": """version: 2
models:
  - name: stg_trips
    config:
      event_time: pickup_datetime
"""}


def microbatch(twin):
    twin.load(gen(twin, "2023-03"), "2023-03")
    twin.build(event_time=("2023-03-01", "2023-04-01"))
    twin.compare(["by_day_batches", "by_month_batches"])
    # Late and corrected rows for March; re-run two days' batches only.
    twin.load(gen(twin, "2023-03", rows=31000, seed=3, name="late/yellow_tripdata_2023-03.parquet"), "2023-03")
    twin.build(select="stg_trips")
    twin.build(select="by_day_batches by_month_batches", event_time=("2023-03-04", "2023-03-06 00:00:00"))
    twin.compare(["by_day_batches", "by_month_batches"])
    twin.build(select="by_day_batches", full_refresh=True, event_time=("2023-03-10", "2023-03-12"))
    twin.compare(["by_day_batches"])


SEED_FILES = {
    "seeds/payment_labels.csv": "payment_type,label,is_card,fee_rate,valid_from\n"
                                "1,Credit card,true,0.025,2020-01-01\n2,Cash,false,0,2020-01-01\n"
                                "3,No charge,false,,2021-06-30\n4,Dispute,false,0,\n",
    # Types given instead of inferred: in the seed's YAML and in dbt_project.yml's `seeds:`.
    "seeds/zone_codes.csv": "code,zone_id,share\n007,7,0.5\n010,10,0.25\n",
    "seeds/zone_codes.yml": "version: 2\nseeds:\n  - name: zone_codes\n    config:\n      column_types:\n"
                            "        code: varchar\n        share: numeric(10,4)\n",
}

SEED_MODEL = """select l.label, l.is_card, l.valid_from, count(*) as trips, sum(t.total_amount * coalesce(l.fee_rate, 0)) as fees
from {{ ref('stg_trips') }} t join {{ ref('payment_labels') }} l on l.label = t.payment_type
group by all
"""


def seeds(twin):
    (twin.project / "seeds").mkdir(exist_ok=True)
    for path, text in SEED_FILES.items():
        (twin.project / path).write_text(text)
    project_file = twin.project / "dbt_project.yml"
    project_file.write_text(project_file.read_text() + "\nseeds:\n  analytics:\n    +column_types:\n      zone_id: bigint\n")
    twin.load(gen(twin, "2023-03"), "2023-03")
    twin.build()
    twin.compare(["payment_labels", "fees_by_payment", "zone_codes"])


CUSTOMERS = ["id,name,tier,updated_at", "1,Ann,gold,2024-01-01 00:00:00", "2,Bob,silver,2024-01-01 00:00:00",
             "3,Cy,bronze,2024-01-01 00:00:00"]
SNAPSHOT_FILES = {
    "seeds/customers.csv": "\n".join(CUSTOMERS) + "\n",
    "snapshots/customers.sql": """{% snapshot customers_history %}
{{ config(unique_key='id', strategy='timestamp', updated_at='updated_at') }}
select * from {{ ref('customers') }}
{% endsnapshot %}

{% snapshot customer_tiers %}
{{ config(unique_key=['id'], strategy='check', check_cols=['tier'], hard_deletes='invalidate') }}
select id, tier from {{ ref('customers') }}
{% endsnapshot %}

{% snapshot customer_lifecycle %}
{{ config(unique_key='id', strategy='timestamp', updated_at='updated_at', hard_deletes='new_record') }}
select * from {{ ref('customers') }}
{% endsnapshot %}
""",
    "snapshots/snapshots.yml": """snapshots:
  - name: customer_names
    relation: ref('customers')
    config:
      unique_key: id
      strategy: check
      check_cols: all
      updated_at: updated_at
""",
    # The check snapshot above times its versions by the run's clock: compared through a model
    # that keeps what does not depend on when the suite ran.
    "models/marts/tier_changes.sql": """select id, tier, dbt_valid_to is null as is_current,
    count(*) over (partition by id) as versions, length(dbt_scd_id) as scd_id_length
from {{ ref('customer_tiers') }}
""",
    # A deletion's version is timed by the clock: its times are kept only as how they order.
    "models/marts/lifecycle.sql": """select id, name, tier, updated_at, dbt_is_deleted, dbt_valid_to is null as is_current,
    case when dbt_is_deleted = 'False' then dbt_valid_from end as valid_from,
    case when dbt_valid_to < timestamp '2025-01-01' then dbt_valid_to end as closed_by_row,
    dbt_valid_to >= timestamp '2025-01-01' as closed_by_run, dbt_valid_from >= timestamp '2025-01-01' as opened_by_run,
    count(distinct dbt_scd_id) over (partition by id) as versions
from {{ ref('customer_lifecycle') }}
""",
}


def snapshots(twin):
    """Timestamp and check snapshots, a `{% snapshot %}` block and a YAML one, a hard delete
    invalidated and one recorded as a new version, and models reading snapshots, over four
    versions of a seed."""
    seed = twin.project / "seeds" / "customers.csv"
    versions = [
        CUSTOMERS,
        # Bob moves up a tier, Cy leaves, Dee arrives.
        [CUSTOMERS[0], CUSTOMERS[1], "2,Bob,gold,2024-02-01 00:00:00", "4,Dee,silver,2024-02-01 00:00:00"],
        # Bob's name changes but not his updated_at: the timestamp snapshot does not see it.
        [CUSTOMERS[0], CUSTOMERS[1], "2,Robert,gold,2024-02-01 00:00:00", "4,Dee,silver,2024-02-01 00:00:00"],
        # Cy is back and Dee gone.
        [CUSTOMERS[0], CUSTOMERS[1], "2,Robert,gold,2024-02-01 00:00:00", "3,Cy,gold,2024-03-01 00:00:00"],
    ]
    for rows in versions:
        seed.write_text("\n".join(rows) + "\n")
        twin.build(select="customers+")
        twin.compare(["customers_history", "customer_names", "tier_changes", "lifecycle"])


EPHEMERAL_MODELS = {
    # Inlined as CTEs: one ephemeral model reading another, read by a table with its own `with`.
    "airport_zones": "{{ config(materialized='ephemeral') }}\n"
                     "select zone_id, zone_name from {{ ref('stg_zones') }} where zone_name like '%Airport%'\n",
    "jfk_zone": "{{ config(materialized='ephemeral') }}\nselect * from {{ ref('airport_zones') }} where zone_name like 'JFK%'\n",
    "airport_pickups": "-- trips from the airports\nwith picked as (\n"
                       "    select t.pickup_zone_id, count(*) as trips from {{ ref('stg_trips') }} t group by all\n)\n"
                       "select a.zone_name, p.trips, j.zone_id is not null as is_jfk\n"
                       "from picked p join {{ ref('airport_zones') }} a on a.zone_id = p.pickup_zone_id\n"
                       "left join {{ ref('jfk_zone') }} j on j.zone_id = a.zone_id\n",
}


def ephemeral_models_and_jinja_in_yaml(twin):
    twin.load(gen(twin, "2023-03"), "2023-03")
    twin.build()
    twin.compare(["airport_pickups", "zones_again"])
    # --vars reach the YAML too: the source's identifier is now another table.
    twin.build(select="zones_again", vars={"zones_table": "few_zones"})
    twin.compare(["zones_again"])


JINJA_PROPERTY_FILES = {
    # dbt renders Jinja in these YAML values as it reads the project.
    "models/more_sources.yml": "version: 2\nsources:\n  - name: raw_again\n    schema: \"{{ target.schema }}\"\n"
                               "    tables:\n      - name: zone_table\n        identifier: \"{{ var('zones_table', 'zones') }}\"\n",
    "models/zones_again.yml": "version: 2\nmodels:\n  - name: zones_again\n    config:\n"
                              "      materialized: \"{{ var('zones_again_as', 'table') }}\"\n",
}


def exported_project(twin):
    """`backfill export` gives a dbt project that real dbt-duckdb builds to the same tables,
    and Dagster code that validates."""
    import zipfile
    month = gen(twin, "2023-03")
    archive = twin.work / "export.zip"
    twin.bf("export", "--project", str(twin.project), "--out", str(archive))
    out = twin.work / "export"
    zipfile.ZipFile(archive).extractall(out)
    analytics = out / "analytics"
    subprocess.run([sys.executable, str(analytics / "load_raw.py"), str(month)], check=True, capture_output=True)

    def dbt(*args):
        done = subprocess.run([str(VENV / "bin" / "dbt"), *args, "--profiles-dir", "."], cwd=analytics,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"exported project: dbt {' '.join(args)} failed:\n{done.stdout[-3000:]}")

    dbt("deps")
    dbt("build")
    twin.db = analytics / "warehouse.duckdb"
    twin.bf("load", "--state", str(twin.state), "--month", "2023-03", str(month))
    twin.bf("build", "--state", str(twin.state), "--project", str(twin.project))
    twin.compare()
    dbt("build", "--select", "daily_metrics", "--vars", '{"min_date": "2023-03-04", "max_date": "2023-03-05"}')
    twin.bf("materialize", "--state", str(twin.state), "--project", str(twin.project), "--partition", "2023-03-04")
    twin.compare(["daily_metrics"])
    dbt("parse")

    def dagster(*args):
        done = subprocess.run([str(VENV / "bin" / "dagster"), *args, "-f", str(out / "orchestration" / "definitions.py")],
                              capture_output=True, text=True, cwd=out,
                              env={**os.environ, "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}"})
        if done.returncode != 0:
            raise AssertionError(f"dagster {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

    dagster("definitions", "validate")
    # A range of daily partitions as the README tells a user to run it: dagster-dbt's default
    # for time-window partitions is one run over the range, as `--single-run` is here. The days
    # are taken out first, so only a run of the right window puts them back.
    import duckdb
    with duckdb.connect(str(twin.db)) as db:
        removed = db.execute("delete from main.daily_metrics where date_of_business between '2023-03-05' and '2023-03-07'").fetchone()
    if removed != (3,):
        raise AssertionError(f"expected to remove three daily_metrics rows, removed {removed}")
    dagster("asset", "materialize", "--select", "daily_metrics", "--partition-range", "2023-03-05...2023-03-06")
    twin.bf("materialize", "--state", str(twin.state), "--project", str(twin.project), "--partition", "2023-03-05...2023-03-06",
            "--single-run")
    twin.compare(["daily_metrics"])


TEST_FILES = {
    "models/tests.yml": """version: 2
models:
  - name: stg_zones
    columns:
      - name: zone_id
        data_tests:
          - not_null
          - unique:
              config:
                severity: warn
      - name: borough
        data_tests:
          - accepted_values:
              arguments:
                values: ['Manhattan', 'Brooklyn', 'Queens', 'Bronx', 'Staten Island', 'EWR']
              config:
                severity: warn
  - name: stg_trips
    columns:
      - name: pickup_zone_id
        data_tests:
          - relationships:
              arguments:
                to: ref('stg_zones')
                field: zone_id
              config:
                error_if: ">1000"
                warn_if: ">10"
      - name: duration
        data_tests:
          - at_most:
              arguments:
                minutes: 60
              config:
                severity: warn
                where: "payment_type <> 'Cash'"
  - name: daily_metrics
    columns:
      - name: date_of_business
        data_tests: [unique, not_null]
""",
    "tests/generic/at_most.sql": "{% test at_most(model, column_name, minutes) %}\n"
                                 "select {{ column_name }} from {{ model }} where {{ column_name }} > {{ minutes }}\n"
                                 "{% endtest %}\n",
    "tests/trips_every_day.sql": "select * from {{ ref('daily_metrics') }} where trip_count < 1\n",
    "macros/overrides.sql": "{% macro default__type_string() %}varchar{% endmacro %}\n",
}
CROSS_DB_MODEL = """select
    date_of_business,
    {{ dbt.datediff("'2023-03-01'", 'date_of_business', 'day') }} as days_in,
    {{ dbt.date_trunc('month', 'date_of_business') }} as month,
    cast(trip_count as {{ dbt.type_string() }}) as trips_text,
    cast(trip_count as {{ dbt.type_bigint() }}) as trips,
    {{ dbt.concat(["'day '", dbt.cast('trip_count', dbt.type_string())]) }} as label,
    {{ dbt.hash('trip_count') }} as trips_hash,
    {{ dbt.safe_cast('total_amount', dbt.type_numeric()) }} as amount,
    {{ dbt.split_part("'a-b-c'", "'-'", 2) }} as part,
    {{ dbt.right("'abcdef'", 2) }} as tail,
    {{ dbt.length("'abcdef'") }} as len,
    {{ dbt.position("'c'", "'abcdef'") }} as pos,
    {{ dbt.replace("'abc'", "'b'", "'x'") }} as replaced,
    {{ dbt.string_literal("abc") }} as literal,
    {{ dbt.cast_bool_to_text('trip_count > 100') }} as busy,
    {{ dbt.dateadd('day', 3, 'date_of_business') }} as three_days_on,
    {{ dbt.dateadd('quarter', -1, 'date_of_business') }} as a_quarter_back,
    {{ dbt.last_day('date_of_business', 'month') }} as month_end,
    cast('2023-03-04 05:06:07.5' as {{ dbt.type_timestamp() }}) as at_time,
    {{ dbt.any_value('trip_count') }} over (partition by date_of_business) as any_count,
    {{ dbt.bool_or('trip_count = 0') }} over (partition by date_of_business) as empty_day,
    cast(date_of_business as {{ api.Column.translate_type('string') }}) as day_text
from {{ ref('daily_metrics') }}
"""
FAILING_TEST = "select * from {{ ref('stg_zones') }} where zone_id < 100\n"


def run_results(twin):
    """Each test's status and failures as dbt's run_results.json has them."""
    results = json.loads((twin.project / "target" / "run_results.json").read_text())
    out = {}
    for result in results["results"]:
        if result["unique_id"].startswith("test."):
            name = result["unique_id"].split(".")[2]
            out[name] = (result["status"], result["failures"] or 0)
    return out


def our_results(stdout):
    """The same, from the lines `backfill build` prints: `  test NAME: pass|warn: N failing|fail: N failing`."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("  test "):
            name, outcome = line[len("  test "):].split(": ", 1)
            status, _, failing = outcome.partition(": ")
            out[name] = (status, int(failing.split()[0]) if failing else 0)
    return out


def build_with_tests_passing_and_warning(twin):
    """Both build everything; their tests pass and warn alike, and some do each."""
    twin.dbt("build")
    ours = twin.bf("build", "--state", str(twin.state), "--project", str(twin.project)).stdout
    theirs = run_results(twin)
    if our_results(ours) != theirs:
        raise AssertionError(f"dbt's tests: {sorted(theirs.items())}\nbackfill's: {sorted(our_results(ours).items())}")
    if {status for status, _ in theirs.values()} != {"pass", "warn"}:
        raise AssertionError(f"the scenario means some tests to pass and some to warn: {theirs}")


def data_tests(twin):
    """dbt's tests (generic with arguments and configs, a project's own generic test, a singular
    test) pass and warn as dbt-duckdb reports them; a failing one fails the build on both sides;
    cross-database macros (with the project's dispatch override) build the same table."""
    twin.load(gen(twin, "2023-03"), "2023-03")
    build_with_tests_passing_and_warning(twin)
    twin.compare([*MODELS, "cross_db"])
    (twin.project / "tests" / "zones_from_100.sql").write_text(FAILING_TEST)
    dbt_failed = twin.dbt("build", "--select", "stg_zones", ok=False)
    ours = twin.bf("build", "--state", str(twin.state), "--project", str(twin.project), "--select", "stg_zones", ok=False)
    if "FAIL 99 zones_from_100" not in dbt_failed or ours.returncode != 1:
        raise AssertionError(f"dbt:\n{dbt_failed[-1500:]}\nbackfill exit {ours.returncode}:\n{ours.stdout}")
    if ours.stderr.strip() != "error: test zones_from_100 failed: 99 failing row(s)":
        raise AssertionError(f"backfill said: {ours.stderr}")


UTILS_MODELS = {
    # Backfill's dbt_utils, run by dbt-duckdb as the local package it is exported as.
    "utils_star": "select {{ dbt_utils.star(ref('payment_labels'), except=['fee_rate'], prefix='p_') }}\n"
                  "from {{ ref('payment_labels') }}\n",
    "utils_union": "{{ dbt_utils.union_relations([ref('payment_labels'), ref('zone_codes')], source_column_name=none) }}\n",
    "utils_pivot": "select vendor_name, {{ dbt_utils.pivot('payment_type', dbt_utils.get_column_values(ref('stg_trips'),"
                   " 'payment_type', order_by='payment_type', where='payment_type is not null')) }}\n"
                   "from {{ ref('stg_trips') }} group by vendor_name\n",
    "utils_unpivot": "{{ dbt_utils.unpivot(ref('zone_codes'), cast_to='varchar', exclude=['code']) }}\n",
    "utils_spine": "{{ dbt_utils.date_spine('day', \"cast('2023-03-01' as date)\", \"cast('2023-03-08' as date)\") }}\n",
    "utils_dedup": "{{ dbt_utils.deduplicate(ref('stg_zones'), 'borough', 'zone_id desc') }}\n",
    "utils_math": "select payment_type, {{ dbt_utils.safe_divide('fee_rate', 'payment_type - 1') }} as ratio,\n"
                  "    {{ dbt_utils.safe_add(['fee_rate', 'payment_type']) }} as total,\n"
                  "    {{ dbt_utils.generate_surrogate_key(['label', 'fee_rate']) }} as label_key\n"
                  "from {{ ref('payment_labels') }}\n",
    # A model asking the warehouse itself. Its numbers are cast: an integer literal is an
    # INTEGER in DuckDB and still a BIGINT here.
    "introspection": """{%- set kinds = run_query("select distinct payment_type from " ~ ref('stg_trips') ~ " where payment_type is not null order by 1") -%}
{%- set columns = adapter.get_columns_in_relation(ref('payment_labels')) -%}
{%- call statement('zones', fetch_result=True) %}select count(*) from {{ ref('stg_zones') }}{% endcall -%}
select '{{ columns | map(attribute='name') | join(',') }}' as column_names,
    '{{ columns | map(attribute='data_type') | join(',') | lower }}' as column_types,
    cast({{ load_result('zones')['data'][0][0] if execute else 0 }} as bigint) as zones,
    cast({{ kinds.columns[0].values() | length if execute else 0 }} as bigint) as payment_types,
    '{{ kinds.rows[0][0] if execute else '' }}' as first_type,
    cast({{ dbt_utils.get_single_value("select max(zone_id) from " ~ ref('stg_zones')) or 0 }} as bigint) as max_zone,
    {{ 'true' if adapter.get_relation(database=this.database, schema='main', identifier='nowhere') is none else 'false' }} as nowhere_missing
""",
}
UTILS_FILES = {
    **SEED_FILES,
    "models/utils.yml": """version: 2
models:
  - name: utils_math
    data_tests:
      - dbt_utils.expression_is_true:
          arguments: {expression: "total >= payment_type"}
      - dbt_utils.unique_combination_of_columns:
          arguments: {combination_of_columns: [payment_type, label_key]}
    columns:
      - name: ratio
        data_tests:
          - dbt_utils.accepted_range:
              arguments: {min_value: 0.001, max_value: 0.01}
              config: {severity: warn}
""",
}


def dbt_utils_and_introspection(twin):
    """Backfill's dbt_utils (its macros reading the warehouse, its tests) and a model's own
    run_query, statement and adapter calls build what dbt-duckdb builds from the same package."""
    twin.load(gen(twin, "2023-03", rows=3000), "2023-03")
    build_with_tests_passing_and_warning(twin)
    twin.compare(list(UTILS_MODELS))


LS_SELECTIONS = [
    [],
    ["--select", "stg_zones"],
    ["--select", "stg_trips+", "--resource-type", "test"],
    ["--select", "test_type:singular"],
    ["--select", "test_name:relationships"],
    ["--select", "source:raw_taxis+1", "--exclude", "stg_trips"],
    ["--resource-type", "source", "model", "--output", "name"],
    ["--select", "path:tests", "--output", "path"],
    ["--resource-type", "snapshot"],
    ["--select", "customers+", "--output", "path"],
    ["--select", "resource_type:snapshot", "--output", "name"],
]


def ls_as_dbt_ls(twin):
    """`backfill ls` prints what `dbt ls` prints for the same selections."""
    for selection in LS_SELECTIONS:
        theirs = twin.dbt("-q", "ls", *selection).split()
        ours = twin.bf("ls", "--project", str(twin.project), *selection).stdout.split()
        if theirs != ours:
            raise AssertionError(f"ls {' '.join(selection)}:\ndbt:      {theirs}\nbackfill: {ours}")


PACKAGE_FILES = {
    # A package as `dbt deps` installs it: a model calling the package's own macro by its bare
    # name and reading the package's var and a root model, a seed, a data test.
    "dbt_packages/zone_kit/dbt_project.yml": "name: zone_kit\nversion: '1.0.0'\nvars:\n  airport_word: Airport\n"
                                             "models:\n  zone_kit:\n    +materialized: view\n",
    "dbt_packages/zone_kit/macros/kit.sql": "{% macro shout(column) %}upper({{ column }}){% endmacro %}\n",
    "dbt_packages/zone_kit/models/marts/airports.sql":
        "select zone_id, {{ shout('zone_name') }} as loud_name\nfrom {{ ref('stg_zones') }}\n"
        "where zone_name like '%{{ var('airport_word') }}%'\n",
    "dbt_packages/zone_kit/models/marts/airports.yml":
        "version: 2\nmodels:\n  - name: airports\n    columns:\n      - name: zone_id\n        data_tests: [not_null, unique]\n",
    "dbt_packages/zone_kit/seeds/zone_flags.csv": "zone_id,flag\n1,newark\n132,jfk\n138,laguardia\n",
    "models/marts/airport_flags.sql":
        "select a.zone_id, a.loud_name, f.flag\nfrom {{ ref('zone_kit', 'airports') }} a\n"
        "left join {{ ref('zone_flags') }} f using (zone_id)\n",
}
PACKAGE_LS = [
    [],
    ["--select", "package:zone_kit"],
    ["--resource-type", "model", "seed", "--output", "path"],
    ["--select", "airports+", "--output", "name"],
]


def a_packages_models_and_seeds(twin):
    """A package's models, seeds and tests build with the project as dbt builds them: the
    project's dbt_project.yml configures the package's models over the package's own config."""
    # Written after the twin's `dbt deps`, which empties dbt_packages/ first.
    for path, text in PACKAGE_FILES.items():
        (twin.project / path).parent.mkdir(parents=True, exist_ok=True)
        (twin.project / path).write_text(text)
    project_file = twin.project / "dbt_project.yml"
    project_file.write_text(project_file.read_text().replace("\nmodels:\n", "\nmodels:\n  zone_kit:\n    +materialized: table\n"))
    twin.load(gen(twin, "2023-03", rows=3000), "2023-03")
    twin.dbt("build")
    ours = our_results(twin.bf("build", "--state", str(twin.state), "--project", str(twin.project)).stdout)
    theirs = run_results(twin)
    if ours != theirs or not any(name.startswith("unique_airports") for name in theirs):
        raise AssertionError(f"dbt's tests: {sorted(theirs.items())}\nbackfill's: {sorted(ours.items())}")
    twin.compare(["airports", "zone_flags", "airport_flags"])
    for selection in PACKAGE_LS:
        theirs = twin.dbt("-q", "ls", *selection).split()
        ours = twin.bf("ls", "--project", str(twin.project), *selection).stdout.split()
        if theirs != ours:
            raise AssertionError(f"ls {' '.join(selection)}:\ndbt:      {theirs}\nbackfill: {ours}")


def file_schemas_2024_2025(twin):
    twin.load(gen(twin, "2024-01", schema="2024"), "2024-01")
    twin.load(gen(twin, "2025-01", schema="2025"), "2025-01")
    twin.build()
    twin.compare()


def sql_facts(_twin):
    """The dialect's facts (tests/sql/*.slt) are DuckDB's; `cargo test` checks Backfill gives them."""
    import slt
    differences = slt.run(write=False)
    if differences:
        raise AssertionError("\n".join(differences))


SCENARIOS = [
    ("SQL dialect facts are DuckDB's", sql_facts, {}),
    ("full build", full_build, {}),
    ("node selection", node_selection, {}),
    ("partitions in order", partitions_in_order, {}),
    ("partitions out of order and repeated", partitions_out_of_order_and_repeated, {}),
    ("corrected source data, one partition re-run", corrected_source_then_one_partition, {}),
    ("max-filter variant with late-arriving trips", max_filter_with_late_trips,
     {"daily_metrics": "daily_metrics_first_version.sql"}),
    ("each incremental strategy and its configs", each_incremental_strategy, {"extra_models": STRATEGY_MODELS}),
    ("microbatch", microbatch, {
        "extra_models": {
            "by_day_batches": MICROBATCH_MODEL.format(
                event_time="date_of_business", size="day", source="{{ ref('stg_trips') }}"),
            "by_month_batches": MICROBATCH_MODEL.format(
                event_time="pickup_datetime", size="month", source="{{ source('raw_taxis', 'trips') }}"),
        },
        "extra_files": MICROBATCH_FILES,
        "trips_event_time": "pickup_datetime",
    }),
    ("seeds", seeds, {"extra_models": {"fees_by_payment": SEED_MODEL}}),
    # One project for both, as each costs a dbt run.
    ("ephemeral models, Jinja in YAML properties (with --vars)", ephemeral_models_and_jinja_in_yaml, {
        "extra_files": JINJA_PROPERTY_FILES,
        "extra_models": {**EPHEMERAL_MODELS,
                         "zones_again": "select borough, count(*) as zones from {{ source('raw_again', 'zone_table') }} group by all\n",
                         "few_zones": "select * from {{ ref('stg_zones') }} where zone_id < 40\n"},
    }),
    ("snapshots", snapshots, {"extra_files": SNAPSHOT_FILES}),
    ("exported project", exported_project, {}),
    ("2024 and 2025 file schemas", file_schemas_2024_2025, {}),
    ("data tests and cross-database macros", data_tests, {"extra_files": TEST_FILES, "extra_models": {"cross_db": CROSS_DB_MODEL}}),
    ("dbt_utils and introspection", dbt_utils_and_introspection, {"extra_files": UTILS_FILES, "extra_models": UTILS_MODELS}),
    ("ls as dbt ls", ls_as_dbt_ls, {"extra_files": {**TEST_FILES, **SNAPSHOT_FILES}}),
    ("a package's models, seeds and tests", a_packages_models_and_seeds, {}),
]


def run_scenario(backfill, name, scenario, options):
    """One scenario in its own folder: (name, None) if it passed, else (name, what failed)."""
    with tempfile.TemporaryDirectory(prefix="parity-") as work:
        try:
            scenario(Twin(backfill, Path(work), **options))
            return name, None
        except AssertionError as e:
            return name, str(e)
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            return name, traceback.format_exc()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backfill", required=True)
    parser.add_argument("-k", default="", help="run only scenarios whose name contains this")
    args = parser.parse_args()
    ensure_venv()
    chosen = [s for s in SCENARIOS if args.k in s[0]]
    # Scenarios share nothing (each has its own folder), and dbt spends most of its time in one
    # Python process: one scenario per core halves the suite on a 2-core machine.
    failures = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for done in as_completed([pool.submit(run_scenario, args.backfill, *s) for s in chosen]):
            name, failure = done.result()
            print(f"ok      {name}" if failure is None else f"FAILED  {name}: {failure}", flush=True)
            if failure is not None:
                failures.append(name)
    print(f"parity: {len(chosen) - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
