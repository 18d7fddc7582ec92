#!/usr/bin/env python3
"""The SQL dialect's facts (`tests/sql/*.slt`) against DuckDB itself: every `query` record's
expected rows must be what DuckDB gives, each value as DuckDB casts it to VARCHAR (the text the
Rust side, `tests/sql_dialect.rs`, renders Backfill's values in). Records `onlyif backfill`
(Backfill's own refusals) are not DuckDB's to judge; `statement error` records are checked on
Backfill's side only.

    slt.py            check every file; exits 1 on a difference
    slt.py --write    rewrite every file's expected rows with DuckDB's
Run by the parity suite (`run.py`), in its venv, which has duckdb.
"""

import argparse
import sys
from pathlib import Path

FILES = Path(__file__).resolve().parents[1] / "sql"


def records(text):
    """Yields (first line index, lines) for each blank-line separated record."""
    lines = text.split("\n")
    start = None
    for i, line in enumerate(lines + [""]):
        if line.strip() and start is None:
            start = i
        elif not line.strip() and start is not None:
            yield start, lines[start:i]
            start = None


def query_parts(lines):
    """(conditions, header, sql, expected) of a `query` record, or None for any other record."""
    body = [line for line in lines if not line.startswith("#")]
    conditions = [line for line in body if line.split()[0] in ("onlyif", "skipif")]
    body = body[len(conditions):]
    if not body or body[0].split()[0] != "query" or "----" not in body:
        return None
    split = body.index("----")
    return conditions, body[0], "\n".join(body[1:split]), body[split + 1:]


def duckdb_rows(connection, sql):
    result = connection.sql(f"select cast(columns(*) as varchar) from ({sql})").fetchall()
    return [" ".join("NULL" if v is None else v for v in row) for row in result]


def normalized(line):
    return " ".join(line.split())


def run(write):
    import duckdb
    connection = duckdb.connect()
    differences = []
    for path in sorted(FILES.glob("*.slt")):
        text = path.read_text()
        lines = text.split("\n")
        # Rewritten from the end, so earlier records' line numbers stay right.
        for start, record in reversed(list(records(text))):
            parts = query_parts(record)
            if parts is None:
                continue
            conditions, header, sql, expected = parts
            if "onlyif backfill" in conditions or "skipif duckdb" in conditions:
                continue
            got = duckdb_rows(connection, sql)
            if [normalized(line) for line in expected] != [normalized(line) for line in got]:
                differences.append(f"{path.name}:{start + 1}: DuckDB gives {got}, the file expects {expected}")
                if write:
                    end = start + len(record)
                    lines[end - len(expected):end] = got
        if write:
            path.write_text("\n".join(lines))
    return differences


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    differences = run(args.write)
    for difference in differences:
        print(difference)
    if differences and not args.write:
        sys.exit(1)


if __name__ == "__main__":
    main()
