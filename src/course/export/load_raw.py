"""Loads NYC TLC yellow taxi files into the raw tables the project reads, as Backfill does:
each monthly file becomes that month's slice of main.trips (partition_date = 'YYYY-MM', the
month's old rows deleted first), and main.zones comes from taxi_zones.csv.

    python load_raw.py yellow_tripdata_2023-03.parquet [more files...]   # needs `pip install duckdb`
"""

import re
import sys
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
DATABASE = HERE / "warehouse.duckdb"


def month_of(path):
    found = re.search(r"(\d{4}-\d{2})", Path(path).name)
    if not found:
        sys.exit(f"{path}: no month (YYYY-MM) in the file name")
    return found.group(1)


def main(paths):
    con = duckdb.connect(str(DATABASE))
    con.execute(
        "create table if not exists main.trips (vendor_id integer, pickup_zone_id integer,"
        " dropoff_zone_id integer, rate_code_id double, payment_type integer,"
        " dropoff_datetime timestamp, pickup_datetime timestamp, trip_distance double,"
        " passenger_count double, total_amount double, partition_date varchar)"
    )
    for path in paths:
        month = month_of(path)
        reader = "read_csv_auto" if str(path).endswith(".csv") else "read_parquet"
        con.execute("delete from main.trips where partition_date = ?", [month])
        con.execute(
            "insert into main.trips select VendorID, PULocationID, DOLocationID, RatecodeID,"
            " payment_type, tpep_dropoff_datetime, tpep_pickup_datetime, trip_distance,"
            f" passenger_count, total_amount, '{month}' from {reader}(?)",
            [str(path)],
        )
        print(f"{path}: month {month}")
    con.execute(
        "create or replace table main.zones as select LocationID as zone_id, zone, borough"
        f" from read_csv_auto('{HERE / 'taxi_zones.csv'}')"
    )
    con.close()


if __name__ == "__main__":
    main(sys.argv[1:])
