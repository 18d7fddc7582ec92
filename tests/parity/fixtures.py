#!/usr/bin/env python3
"""dbt's own adapter tests, replayed: the test classes of the PyPI package dbt-tests-adapter
under `incremental/`, `basic/` and `utils/`, each test method's project written out from its
pytest fixtures and its commands run through real dbt-duckdb and through `backfill` on two
copies of that project. After every command both engines must agree on success or failure,
on each data test's outcome, and on every relation dbt-duckdb has then: its kind (table or
view), columns, types and rows (doubles to 1e-9 relative, as run.py compares; 32-bit FLOATs
to the 7 digits they hold).

How a test is replayed (the `REPLAYS` table holds each test method's commands):
- Each test method gets a fresh project and warehouse (pytest shares one per class, but most
  of these classes drop the schema after each method anyway). dbt-duckdb builds in a schema of
  its own, as under pytest (a test may drop it; DuckDB cannot drop `main`); its relations are
  compared with backfill's of the same name in `main`, where backfill writes them.
- Only the commands are replayed, not the test's Python assertions (result counts, compiled
  SQL, catalogs): the comparison stands in for them. `dbt deps` with no packages and
  `dbt docs generate` are left out (backfill has neither, and they build nothing); `-m` and
  `--models`, dbt's old spellings of `--select`, are passed to backfill as `--select`.
- SQL a test runs on the warehouse (rows inserted into or updated in a seed) runs on
  dbt-duckdb's database as the test runs it. `backfill query` only reads, so the changed seed
  table is then written back as that seed's CSV in backfill's copy and re-seeded there.
- Columns whose values are the clock's (`current_timestamp`, snapshot times) are compared for
  presence and type only.

Prints one line per case (`ok`, `DIFF`, `ERROR` with backfill's first error line, or
`skipped` with why), then one "FOLDER: N of M cases equal" line per folder. It reports figures
and is not a gate: it exits 0 unless the script itself broke on a case.
"""

import argparse
import csv
import importlib
import inspect
import io
import os
import re
import subprocess
import sys
import tempfile
import traceback
import types
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from run import ARROW_TYPES, VENV, compare_rows, duck_text, ensure_venv, our_results, run_results

FOLDERS = ["incremental", "basic", "utils"]
TIMEOUT = 600  # seconds for one command of either engine
DBT_SCHEMA = "test_schema"  # the profile's schema, as pytest's unique_schema would be
SCHEMA = "main"  # backfill's
# Base classes that no Test* class in the package runs, but that an adapter can run as they are.
EXTRA_BASES = {"BaseIncrementalBadStrategy", "BaseMicrobatch"}
# The raw taxi tables backfill keeps for its own lesson: not relations a project built.
BACKFILL_RAW = {"trips", "zones"}
# The project folders dbt's `project` fixture writes from the fixtures of the same name.
FILE_FIXTURES = ["models", "seeds", "macros", "tests", "snapshots", "analyses"]
# dbt's global flags that mean nothing to backfill.
DBT_ONLY_FLAGS = {"--no-partial-parse"}


# --- the replay table --------------------------------------------------------------------
# One dbt command. ok: whether the test expects it to pass; compare: whether the relations are
# compared after it (not where they may rightly differ and the test does not look).
Command = namedtuple("Command", "args ok compare")
Change = namedtuple("Change", "seed sql file")  # SQL on the warehouse that changes a seed's rows
Replay = namedtuple("Replay", "steps volatile", defaults=((),))


def cmd(*args, ok=True, compare=True):
    return Command(list(args), ok, compare)


def change(seed, sql=None, file=None):
    """SQL text, or a .sql file of the project's seeds folder (run_sql_file's, with {schema})."""
    return Change(seed, sql, file)


def unique_key(model, rows_file, expected=None):
    """SubBaseIncrementalUniqueKey.get_test_fields, after the expected model's own run (the test
    evaluates `update_incremental_model(expected)` as an argument, so before the rest)."""
    first = [cmd("run", "--select", expected)] if expected else []
    return Replay(first + [
        cmd("seed", "--select", "seed", "--full-refresh"),
        cmd("run", "--select", model, "--full-refresh"),
        change("seed", file=rows_file),
        cmd("run", "--select", model),
    ])


def bad_unique_key(model):
    """fail_to_build_inc_missing_unique_key_column: the first run passes, the second fails."""
    return Replay([
        cmd("seed", "--select", "seed", "--full-refresh"),
        cmd("run", "--select", model, "--full-refresh"),
        cmd("run", "--select", model, ok=False),
    ])


def seed_then_twice(seed, model):
    """The predicates and merge_exclude_columns tests: seed, a full refresh, an incremental run."""
    return Replay([
        cmd("seed", "--select", seed, "--full-refresh"),
        cmd("run", "--select", model, "--full-refresh"),
        cmd("run", "--select", model),
    ])


def run_twice(*selections):
    """BaseIncrementalOnSchemaChangeSetup.run_twice_and_assert, once per selection. The test
    compares after the second run only: after the first, incremental_ignore holds any three rows
    of model_a (`limit 3` without an order)."""
    return Replay([cmd("run", "--select", s, compare=second) for s in selections for second in (False, True)])


# update_rows(...) as dbt-adapters' default update_column_sql, timestamp_add_sql (1 hour) and
# string_add_sql (append) write it for the snapshot tests' two configs.
LATER_DATES = "update {schema}.added set some_date = some_date + interval '1 hour' where id > 10 and id < 21"
UPDATED_NAMES = "update {schema}.added set name = name || '_updated' where id < 11"
ADDED = ("--vars", "seed_name: added")
# Snapshot columns dbt fills from the clock (check strategy) or hashes with it.
SNAPSHOT_CLOCK = ("dbt_valid_from", "dbt_valid_to", "dbt_updated_at", "dbt_scd_id")

ON_SCHEMA_CHANGE = "BaseIncrementalOnSchemaChange."
UNIQUE_KEY = "BaseIncrementalUniqueKey."
INPLACE = "unique_key_list__inplace_overwrite"

# Keyed by the qualified name of the function that defines the test method, so every Test*
# class inheriting it replays the same commands.
REPLAYS = {
    # incremental/
    ON_SCHEMA_CHANGE + "test_run_incremental_ignore":
        run_twice("model_a incremental_ignore incremental_ignore_target"),
    ON_SCHEMA_CHANGE + "test_run_incremental_append_new_columns":
        run_twice("model_a incremental_append_new_columns incremental_append_new_columns_target",
                  "model_a incremental_append_new_columns_remove_one incremental_append_new_columns_remove_one_target"),
    ON_SCHEMA_CHANGE + "test_run_incremental_sync_all_columns":
        run_twice("model_a incremental_sync_all_columns incremental_sync_all_columns_target",
                  "model_a incremental_sync_remove_only incremental_sync_remove_only_target"),
    ON_SCHEMA_CHANGE + "test_run_incremental_fail_on_schema_change": Replay([
        cmd("run", "--models", "model_a incremental_fail", "--full-refresh"),
        cmd("run", "--models", "model_a incremental_fail", ok=False),
    ]),
    "BaseIncrementalPredicates.test__incremental_predicates":
        seed_then_twice("expected_delete_insert_incremental_predicates", "delete_insert_incremental_predicates"),
    "BaseMergeExcludeColumns.test__merge_exclude_columns":
        seed_then_twice("expected_merge_exclude_columns", "merge_exclude_columns"),
    UNIQUE_KEY + "test__bad_unique_key": bad_unique_key("not_found_unique_key"),
    UNIQUE_KEY + "test__bad_unique_key_list": bad_unique_key("not_found_unique_key_list"),
    UNIQUE_KEY + "test__empty_unique_key_list": unique_key("empty_unique_key_list", "add_new_rows.sql"),
    UNIQUE_KEY + "test__no_unique_keys": unique_key("no_unique_key", "add_new_rows.sql"),
    UNIQUE_KEY + "test__empty_str_unique_key": unique_key("empty_str_unique_key", "add_new_rows.sql"),
    UNIQUE_KEY + "test__trinary_unique_key_list_no_update":
        unique_key("nontyped_trinary_unique_key_list", "add_new_rows.sql"),
    UNIQUE_KEY + "test__one_unique_key": unique_key("str_unique_key", "duplicate_insert.sql", "one_str__overwrite"),
    UNIQUE_KEY + "test__unary_unique_key_list": unique_key("unary_unique_key_list", "duplicate_insert.sql", INPLACE),
    UNIQUE_KEY + "test__duplicated_unary_unique_key_list":
        unique_key("duplicated_unary_unique_key_list", "duplicate_insert.sql", INPLACE),
    UNIQUE_KEY + "test__trinary_unique_key_list": unique_key("trinary_unique_key_list", "duplicate_insert.sql", INPLACE),
    # basic/
    "BaseSimpleMaterializations.test_base": Replay([
        cmd("seed"),
        cmd("run"),
        cmd("run", "-m", "swappable", "--vars", "materialized_var: view"),
        cmd("run", "-m", "swappable", "--vars", "materialized_var: incremental"),
    ]),
    "BaseEmpty.test_empty": Replay([cmd("seed"), cmd("run")]),
    "BaseEphemeral.test_ephemeral": Replay([cmd("seed"), cmd("run")]),
    "BaseGenericTests.test_generic_tests": Replay([cmd("seed"), cmd("test", "-m", "base"), cmd("run"), cmd("test")]),
    "BaseIncremental.test_incremental": Replay([
        cmd("seed"), cmd("run", "--vars", "seed_name: base"), cmd("run", "--vars", "seed_name: added"),
    ]),
    # Its unique key is `1 || '-' || current_timestamp`.
    "BaseIncrementalNotSchemaChange.test_incremental_not_schema_change": Replay(
        [cmd("run", "--select", "incremental_not_schema_change")] * 2, volatile=("user_id_current_time",)),
    "BaseIncrementalBadStrategy.test_incremental_invalid_strategy": Replay([cmd("seed"), cmd("run", ok=False)]),
    "BaseSingularTests.test_singular_tests": Replay([cmd("test", ok=False)]),
    "BaseSingularTestsEphemeral.test_singular_tests_ephemeral": Replay([cmd("seed"), cmd("test", ok=False), cmd("run")]),
    "BaseSnapshotCheckCols.test_snapshot_check_cols": Replay([
        cmd("seed"),
        cmd("snapshot"),
        cmd("--no-partial-parse", "snapshot", *ADDED),
        change("added", LATER_DATES),
        cmd("snapshot", *ADDED),
        change("added", UPDATED_NAMES),
        cmd("snapshot", *ADDED),
    ], volatile=SNAPSHOT_CLOCK),
    "BaseSnapshotTimestamp.test_snapshot_timestamp": Replay([
        cmd("seed"),
        cmd("snapshot"),
        cmd("snapshot", *ADDED),
        change("added", LATER_DATES),
        cmd("snapshot", *ADDED),
        change("added", UPDATED_NAMES),
        cmd("snapshot", *ADDED),
    ]),
    "BaseTableMaterialization.test_table_materialization_sort_dist_no_op": Replay([cmd("seed"), cmd("run")]),
    "BaseAdapterMethod.test_adapter_methods": Replay([cmd("compile"), cmd("run")]),
    # utils/ (utils/data_types/ included): a seed, a model and an assert_equal test, built.
    "BaseUtils.test_build_assert_equal": Replay([cmd("build")]),
    "BaseArrayUtils.test_expected_actual": Replay([cmd("build")]),
    "BaseDataTypeMacro.test_check_types_assert_match": Replay([cmd("build")]),
    "BaseExcept.test_build_assert_equal": Replay([cmd("build")]),
    "BaseIntersect.test_build_assert_equal": Replay([cmd("build")]),
    "BaseMixedNullCompare.test_build_assert_equal": Replay([cmd("run"), cmd("test", ok=False)]),
    "BaseEquals.test_equal_values": Replay([cmd("seed"), cmd("run")]),
    "BaseCurrentTimestamp.test_current_timestamp_matches_utc": Replay([cmd("build")], volatile=("current_ts_column",)),
    "BaseCurrentTimestampAware.test_current_timestamp_type": Replay([cmd("build")], volatile=("current_ts_column",)),
    "BaseCurrentTimestamps.test_current_timestamps": Replay([cmd("run")], volatile=(
        "current_timestamp", "current_timestamp_in_utc_backcompat", "current_timestamp_backcompat")),
}

# Keyed by the defining function's qualified name, or by the class that defines the methods.
SKIPS = {
    "BaseMicrobatch": "needs a frozen clock (patch_microbatch_end_time decides each run's batches)",
    "BaseDocsGenerate": "checks dbt docs generate's catalog (backfill has no docs command)",
    "BaseDocsGenReferences": "checks dbt docs generate's catalog (backfill has no docs command)",
    "BaseValidateConnection": "calls the adapter's Python API: no project to replay",
    "BaseValidateSqlMethod": "calls the adapter's Python API: no project to replay",
    "BaseCalculateFreshnessMethod": "calls the adapter's Python API: no project to replay",
}


# --- finding the cases -------------------------------------------------------------------
Case = namedtuple("Case", "folder name cls method qualname")


def discover(folders):
    """Test methods of the package's Test* classes (as pytest collects them) and EXTRA_BASES."""
    cases = []
    for folder in folders:
        package = importlib.import_module(f"dbt.tests.adapter.{folder}")
        root = Path(next(iter(package.__path__)))
        for path in sorted(root.rglob("test_*.py")):
            name = ".".join([package.__name__, *path.relative_to(root).with_suffix("").parts])
            try:
                module = importlib.import_module(name)
            except Exception as e:  # noqa: BLE001 - said as a skipped case, the rest still run
                cases.append(Case(folder, path.stem, None, None, f"cannot import {name}: {e!r}"))
                continue
            for cls in vars(module).values():
                if not (isinstance(cls, type) and cls.__module__ == module.__name__):
                    continue
                if not (cls.__name__.startswith("Test") or cls.__name__ in EXTRA_BASES):
                    continue
                # `tests` is a fixture (the project's tests/ folder), not a test.
                methods = sorted(m for m in dir(cls) if m.startswith("test") and callable(getattr(cls, m))
                                 and not fixture_function(cls, m))
                for method in methods:
                    label = cls.__name__ if len(methods) == 1 else f"{cls.__name__}::{method}"
                    cases.append(Case(folder, label, cls, method, getattr(cls, method).__qualname__))
    return cases


class Unreplayable(Exception):
    pass


def fixture_function(cls, name):
    """The plain function behind a class's `@pytest.fixture` method, or None."""
    for klass in cls.__mro__:
        if name in vars(klass):
            obj = vars(klass)[name]
            if hasattr(obj, "_get_wrapped_function"):  # pytest >= 8.4
                return obj._get_wrapped_function()
            if hasattr(obj, "__pytest_wrapped__"):  # older pytest
                return obj.__pytest_wrapped__.obj
            return None
    return None


def fixture_value(instance, name):
    """What the fixture returns, its own fixture arguments resolved the same way; one that needs
    pytest's live project (`project`, `unique_schema`, ...) cannot be had outside pytest."""
    function = fixture_function(type(instance), name)
    if function is None:
        raise Unreplayable(f"its `{name}` fixture needs pytest's live project")
    arguments = list(inspect.signature(function).parameters)[1:]
    return function(instance, **{a: fixture_value(instance, a) for a in arguments})


def project_files(cls):
    """{folder: tree of files} and the project_config_update of a test class."""
    instance = cls()
    files = {f: fixture_value(instance, f) for f in FILE_FIXTURES if fixture_function(cls, f)}
    config = fixture_value(instance, "project_config_update") if fixture_function(cls, "project_config_update") else {}
    return files, config


# --- one case on both engines -------------------------------------------------------------
def write_tree(path, tree):
    """dbt.tests.fixtures.project.write_project_files_recursively: names are files, dicts folders."""
    import yaml
    path.mkdir(parents=True, exist_ok=True)
    for name, value in (tree or {}).items():
        if name.endswith((".yml", ".yaml")):
            (path / name).write_text(value if isinstance(value, str) else yaml.safe_dump(value))
        elif name.endswith((".sql", ".csv", ".md", ".txt", ".py")):
            (path / name).write_text(value)
        else:
            write_tree(path / name, value)


def write_project(root, files, config_update):
    """The project as dbt's `project` fixture writes it (dbt_project_yml's defaults, then the
    class's project_config_update), every folder made even when empty."""
    import yaml
    config = {"name": "test", "profile": "test", "flags": {"send_anonymous_usage_stats": False}}
    config.update(yaml.safe_load(config_update) if isinstance(config_update, str) else (config_update or {}))
    root.mkdir(parents=True)
    (root / "dbt_project.yml").write_text(yaml.safe_dump(config))
    for folder in FILE_FIXTURES:
        write_tree(root / folder, files.get(folder))


class Outcome(Exception):
    """Ends a case early: status (DIFF or ERROR) and why."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Pair:
    """One case's two copies of a project: dbt-duckdb's with its warehouse file, backfill's with
    its state folder."""

    def __init__(self, backfill, work, files, config):
        self.backfill = backfill
        self.dbt_project = work / "dbt"
        self.bf_project = work / "backfill"
        self.profiles = work / "profiles"
        self.state = work / "state"
        self.db = work / "warehouse.duckdb"
        write_project(self.dbt_project, files, config)
        write_project(self.bf_project, files, config)
        self.profiles.mkdir()
        (self.profiles / "profiles.yml").write_text(
            "test:\n  target: default\n  outputs:\n    default:\n      type: duckdb\n"
            f"      path: '{self.db}'\n      schema: {DBT_SCHEMA}\n      threads: 1\n      settings:\n        threads: 1\n")

    def dbt(self, args):
        # A command that fails before it runs anything leaves the last command's results.
        (self.dbt_project / "target" / "run_results.json").unlink(missing_ok=True)
        return execute([str(VENV / "bin" / "dbt"), *args, "--project-dir", str(self.dbt_project),
                    "--profiles-dir", str(self.profiles)], cwd=self.dbt_project)

    def bf(self, args):
        args = ["--select" if a in ("-m", "--models") else a for a in args if a not in DBT_ONLY_FLAGS]
        return execute([self.backfill, args[0], "--state", str(self.state), "--project", str(self.bf_project), *args[1:]])

    def query(self, sql):
        """A query's rows through `backfill query`, header first; Outcome(ERROR) if it fails."""
        done = execute([self.backfill, "query", "--state", str(self.state), "--project", str(self.bf_project),
                    "--format", "csv", sql])
        if done.returncode != 0:
            raise Outcome("ERROR", f"backfill query `{sql}`: {first_line(done.stderr)}")
        return list(csv.reader(io.StringIO(done.stdout)))

    def change(self, step):
        """The test's SQL on dbt-duckdb's warehouse, then the seed as it became re-seeded in backfill."""
        import duckdb
        sql = (step.sql or (self.dbt_project / "seeds" / step.file).read_text()).replace("{schema}", DBT_SCHEMA)
        with duckdb.connect(str(self.db)) as con:
            for statement in sql.split(";"):  # as project.run_sql_file splits it
                if re.sub(r"--[^\n]*", "", statement).strip():
                    con.execute(statement)
            out = self.bf_project / "seeds" / f"{step.seed}.csv"
            con.execute(f"copy (select * from {DBT_SCHEMA}.{step.seed}) to '{out}' (header, delimiter ',')")
        done = self.bf(["seed", "--select", step.seed])
        if done.returncode != 0:
            raise Outcome("ERROR", f"re-seeding {step.seed} after the test's SQL: {first_line(done.stderr)}")

    # --- comparing ---------------------------------------------------------------------
    def dbt_relations(self):
        """{(schema, name): (kind, [(column, type)], rows as text)} in dbt-duckdb's warehouse,
        each schema named as backfill names it."""
        import duckdb
        if not self.db.exists():
            return {}
        with duckdb.connect(str(self.db), read_only=True) as con:
            where = "where table_catalog = current_database() and table_schema not in ('information_schema', 'pg_catalog')"
            kinds = {(s, n): k for s, n, k in con.execute(
                f"select table_schema, table_name, table_type from information_schema.tables {where}").fetchall()}
            columns = {}
            for s, n, c, t in con.execute(f"select table_schema, table_name, column_name, data_type "
                                          f"from information_schema.columns {where} order by ordinal_position").fetchall():
                columns.setdefault((s, n), []).append((c, t))
            out = {}
            for rel, kind in kinds.items():
                try:
                    rows = [[duck_text(v) for v in row] for row in con.execute(f"select * from {quoted(*rel)}").fetchall()]
                except duckdb.Error:
                    rows = None  # a view over what the test dropped: dbt cannot read it either
                out[(ours_schema(rel[0]), rel[1])] = (kind, columns.get(rel, []), rows)
        return out

    def compare(self, volatile):
        theirs = self.dbt_relations()
        listing = self.query("select table_schema, table_name, table_type from information_schema.tables "
                             "where table_schema <> 'information_schema'")[1:]
        ours = {(s, n): k for s, n, k in listing}
        our_columns = {}
        for s, n, c, t in self.query("select table_schema, table_name, column_name, data_type from "
                                     "information_schema.columns where table_schema <> 'information_schema' "
                                     "order by table_schema, table_name, ordinal_position")[1:]:
            our_columns.setdefault((s, n), []).append((c, t))
        problems, type_problems = [], []  # types last: a wrong row says more
        # Only schemas dbt built in: backfill also names each source table under its source.
        schemas = {s for s, _ in theirs} | {SCHEMA}
        extra = sorted(f"{s}.{n}" for s, n in ours if s in schemas and (s, n) not in theirs
                       and not (s == SCHEMA and n in BACKFILL_RAW))
        if extra:
            problems.append(f"backfill also has {', '.join(extra)}")
        for rel, (kind, columns, rows) in sorted(theirs.items()):
            name = ".".join(rel)
            if rel not in ours:
                problems.append(f"backfill has no {name}")
                continue
            if ours[rel] != kind:
                problems.append(f"{name} is a {ours[rel]} in backfill, a {kind} in dbt")
            names = [c for c, _ in columns]
            got_names = [c for c, _ in our_columns.get(rel, [])]
            if got_names != names:
                problems.append(f"{name}: columns {got_names}, dbt's {names}")
                continue
            for (column, duck), (_, arrow) in zip(columns, our_columns[rel]):
                if not type_matches(duck, arrow):
                    type_problems.append(f"{name}.{column}: type {arrow}, dbt-duckdb's {duck}")
            if rows is None:
                continue
            got = self.query(f"select * from {quoted(*rel)}")[1:]
            masked = [i for i, c in enumerate(names) if c in volatile]
            singles = [i for i, (_, t) in enumerate(columns) if t in ("FLOAT", "REAL")]
            try:
                compare_rows(name, names, single(mask(rows, masked), singles), single(mask(got, masked), singles))
            except AssertionError as e:
                problems.append(str(e))
        problems += type_problems
        if problems:
            raise Outcome("DIFF", "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else ""))


def ours_schema(schema):
    """dbt's schema as backfill names it: the profile's is `main`, a custom one `main_<custom>`."""
    if schema == DBT_SCHEMA or schema.startswith(DBT_SCHEMA + "_"):
        return SCHEMA + schema[len(DBT_SCHEMA):]
    return schema


def execute(command, cwd=None):
    try:
        return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        name = "dbt" if command[0].endswith("dbt") else "backfill"
        raise Outcome("ERROR", f"{name} {' '.join(command[1:3])} timed out after {TIMEOUT} s")


def quoted(schema, name):
    """A relation as both engines' SQL reads it (DuckDB's dialect, backfill's too)."""
    def one(identifier):
        return identifier if re.fullmatch(r"[a-z_][a-z0-9_]*", identifier) else '"' + identifier.replace('"', '""') + '"'
    return f"{one(schema)}.{one(name)}"


def mask(rows, columns):
    """The clock's columns: only whether a value is there counts."""
    return [[("<clock>" if v != "" else "") if i in columns else v for i, v in enumerate(row)] for row in rows]


def single(rows, columns):
    """FLOAT (32-bit) columns to the digits a float32 holds: Python reads DuckDB's 1.2345 as the
    double 1.2345000505447388."""
    return [[f"{float(v):.7g}" if i in columns and v != "" else v for i, v in enumerate(row)] for row in rows]


# DuckDB types run.py's table has no entry for, as Arrow (DataFusion's Display) names them.
MORE_ARROW_TYPES = {
    "TINYINT": "Int8", "SMALLINT": "Int16", "FLOAT": "Float32",
    "UTINYINT": "UInt8", "USMALLINT": "UInt16", "UINTEGER": "UInt32", "UBIGINT": "UInt64",
    "TIME": ("Time64(µs)", "Time64(Microsecond)"),
    "BLOB": ("Binary", "BinaryView", "LargeBinary"),
    '"NULL"': "Null",  # a column of untyped NULLs
}


def type_matches(duck, arrow):
    decimal = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", duck)
    if decimal:
        return arrow == f"Decimal128({decimal[1]}, {decimal[2]})"
    if duck == "TIMESTAMP WITH TIME ZONE":
        return arrow.startswith("Timestamp(") and ("UTC" in arrow or "+00:00" in arrow)
    if duck.endswith("[]"):
        inner = duck[:-2]
        element = ARROW_TYPES.get(inner) or MORE_ARROW_TYPES.get(inner) or inner
        return arrow.startswith(("List(", "LargeList(")) and any(
            re.search(rf"\b{re.escape(e)}\b", arrow) for e in (element if isinstance(element, tuple) else (element,)))
    expected = ARROW_TYPES.get(duck) or MORE_ARROW_TYPES.get(duck)
    if expected is None:
        return duck.lower() == arrow.lower()
    return arrow in (expected if isinstance(expected, tuple) else (expected,))


def subcommand(args):
    return next(a for a in args if not a.startswith("-"))


def first_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


def dbt_error(stdout):
    """dbt's first error line and the message line after it, without colours and log times."""
    lines = [re.sub(r"^\d\d:\d\d:\d\d\s+", "", re.sub(r"\x1b\[[0-9;]*m", "", line)).strip()
             for line in stdout.splitlines()]
    lines = [line for line in lines if line]
    for i, line in enumerate(lines):
        if "Error" in line and not line.startswith(("Completed with", "Done.")):
            return f"{line}: {lines[i + 1]}" if i + 1 < len(lines) and not lines[i + 1].startswith("Done.") else line
    return lines[-1] if lines else "(no output)"


def test_outcomes(pair, done):
    """Each data test's (status, failures) in dbt's run_results.json and in backfill's lines."""
    if not (pair.dbt_project / "target" / "run_results.json").exists():
        return None
    theirs = run_results(types.SimpleNamespace(project=pair.dbt_project))
    # A test skipped (its model failed) is compared as one not run.
    theirs = {t: outcome for t, outcome in theirs.items() if outcome[0] != "skipped"}
    ours = {t: outcome for t, outcome in our_results(done.stdout).items() if outcome[0] != "skipped"}
    if theirs == ours:
        return None
    differing = sorted(set(theirs) | set(ours))
    return "; ".join(f"{t}: backfill {ours.get(t, 'absent')}, dbt {theirs.get(t, 'absent')}"
                     for t in differing if theirs.get(t) != ours.get(t))


def replay_case(backfill, case):
    """(status, reason) of one case."""
    if case.cls is None:
        return "skipped", case.qualname
    skip = SKIPS.get(case.qualname) or SKIPS.get(case.qualname.split(".")[0])
    if skip:
        return "skipped", skip
    replay = REPLAYS.get(case.qualname)
    if replay is None:
        return "skipped", f"no replay written for {case.qualname}"
    try:
        files, config = project_files(case.cls)
    except Unreplayable as e:
        return "skipped", str(e)
    notes = []
    with tempfile.TemporaryDirectory(prefix="fixtures-") as work:
        pair = Pair(backfill, Path(work), files, config)
        try:
            for step in replay.steps:
                if isinstance(step, Change):
                    pair.change(step)
                    continue
                label = "dbt " + " ".join(step.args)
                theirs = pair.dbt(step.args)
                ours = pair.bf(step.args)
                if (theirs.returncode == 0) != step.ok:
                    notes.append(f"dbt-duckdb itself {'fails' if theirs.returncode else 'passes'} `{label}`"
                                 + (f" ({dbt_error(theirs.stdout)})" if theirs.returncode else ""))
                if theirs.returncode == 0 and ours.returncode != 0:
                    raise Outcome("ERROR", f"`{label}`: {first_line(ours.stderr)}")
                if theirs.returncode != 0 and ours.returncode == 0:
                    raise Outcome("DIFF", f"`{label}` passes in backfill, fails in dbt: {dbt_error(theirs.stdout)}")
                if subcommand(step.args) in ("test", "build"):
                    tests = test_outcomes(pair, ours)
                    if tests:
                        raise Outcome("DIFF", f"after `{label}`, tests: {tests}")
                if not step.compare:
                    continue
                try:
                    pair.compare(set(replay.volatile))
                except Outcome as e:
                    raise Outcome(e.status, f"after `{label}`: {e.reason}")
        except Outcome as e:
            return e.status, "; ".join([e.reason, *notes])
    return "ok", "; ".join(notes)


def guarded(backfill, case):
    try:
        return replay_case(backfill, case)
    except Exception:  # noqa: BLE001 - the script broke on this case: say where, go on
        return "BROKEN", traceback.format_exc().strip().replace("\n", " | ")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backfill", required=True)
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("--folder", choices=FOLDERS, help="only this folder's cases")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="cases run at once")
    args = parser.parse_args()
    ensure_venv()
    backfill = str(Path(args.backfill).resolve())
    folders = [args.folder] if args.folder else FOLDERS
    cases = [c for c in discover(folders) if args.k in c.name or args.k in c.qualname]
    tally = {f: [0, 0, 0] for f in folders}  # equal, replayed, skipped
    broken = False
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        # In order, each printed as soon as it and those before it are done.
        for case, (status, reason) in zip(cases, pool.map(lambda c: guarded(backfill, c), cases)):
            if len(reason) > 400:  # a traceback's end says where
                reason = "... " + reason[-400:] if status == "BROKEN" else reason[:400] + " ..."
            print(f"{status:<8}{case.folder}/{case.name}" + (f": {reason}" if reason else ""), flush=True)
            counts = tally[case.folder]
            if status == "skipped":
                counts[2] += 1
            else:
                counts[1] += 1
                counts[0] += status == "ok"
            broken |= status == "BROKEN"
    for folder, (equal, replayed, skipped) in tally.items():
        print(f"{folder}: {equal} of {replayed} cases equal" + (f" ({skipped} skipped)" if skipped else ""))
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
