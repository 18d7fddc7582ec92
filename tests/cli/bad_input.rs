//! Bad input through the `backfill` binary, as a script would meet it: each case exits 1 with
//! one `error: …` line that names the file or model (and position), and leaves every table as
//! it was. A rejected file leaves the state folder byte-identical; a failed run may only add
//! its failure to the run history.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LESSON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/course/builtin");

fn backfill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backfill"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start backfill: {e}"))
}

fn ok(args: &[&str]) -> String {
    let out = backfill(args);
    assert!(out.status.success(), "backfill {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir`, by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, into);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                into.insert(path.strip_prefix(root).unwrap_or(&path).to_path_buf(), bytes);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

/// The manifest without its run history, and the table files.
fn tables_and_status(dir: &Path) -> (serde_json::Value, BTreeMap<PathBuf, Vec<u8>>) {
    let mut files = snapshot(dir);
    let manifest = files.remove(Path::new("manifest.json")).unwrap_or_else(|| panic!("no manifest"));
    let mut manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap_or_else(|e| panic!("{e}"));
    if let Some(object) = manifest.as_object_mut() {
        object.remove("runs");
    }
    (manifest, files)
}

fn runs(dir: &Path) -> Vec<serde_json::Value> {
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap_or_else(|e| panic!("{e}"));
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap_or_else(|e| panic!("{e}"));
    manifest["runs"].as_array().cloned().unwrap_or_default()
}

/// Asserts exit code 1 and a single `error:` line containing every fragment; returns it.
fn fails(args: &[&str], fragments: &[&str]) -> String {
    let out = backfill(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "backfill {args:?} should exit 1; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for fragment in fragments {
        assert!(lines[0].contains(fragment), "`{fragment}` missing from: {stderr}");
    }
    lines[0].to_string()
}

struct Workspace {
    _dir: tempfile::TempDir,
    root: PathBuf,
    state: String,
}

impl Workspace {
    /// A state with March 2023 loaded and the lesson built, and one daily partition run.
    fn built() -> Workspace {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().to_path_buf();
        let state = root.join("state").display().to_string();
        let month = root.join("yellow_tripdata_2023-03.parquet").display().to_string();
        ok(&["gen", "--month", "2023-03", "--rows", "5000", "--seed", "1", "--out", &month]);
        ok(&["load", "--state", &state, &month]);
        ok(&["build", "--state", &state]);
        ok(&["materialize", "--state", &state, "--partition", "2023-03-04"]);
        Workspace { _dir: dir, root, state }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        path.display().to_string()
    }

    /// The lesson project in a folder, plus `extra` files (path → text).
    fn project(&self, name: &str, extra: &[(&str, &str)]) -> String {
        let project = self.root.join(name);
        for entry in std::fs::read_dir(LESSON_DIR).unwrap_or_else(|e| panic!("{e}")).flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let target = match file.as_str() {
                "dbt_project.yml" => file.clone(),
                "daily_metrics_first_version.sql" => continue,
                _ => format!("models/{file}"),
            };
            let text = std::fs::read_to_string(entry.path()).unwrap_or_else(|e| panic!("{e}"));
            self.file(&format!("{name}/{target}"), text.as_bytes());
        }
        for (path, text) in extra {
            self.file(&format!("{name}/{path}"), text.as_bytes());
        }
        project.display().to_string()
    }

    /// Runs a rejected load: the state folder must not change by a byte.
    fn rejected_load(&self, files: &[&str], fragments: &[&str]) {
        let before = snapshot(Path::new(&self.state));
        let mut args = vec!["load", "--state", &self.state];
        args.extend(files);
        fails(&args, fragments);
        assert!(before == snapshot(Path::new(&self.state)), "a rejected file changed the state folder");
    }

    /// Runs a failing build: tables and partition status unchanged, at most a failed run added.
    fn failed_run(&self, args: &[&str], fragments: &[&str]) {
        let state = Path::new(&self.state);
        let before = tables_and_status(state);
        let runs_before = runs(state).len();
        let mut all = args.to_vec();
        all.extend(["--state", &self.state]);
        fails(&all, fragments);
        assert!(before == tables_and_status(state), "a failed run changed tables or partition status");
        let after = runs(state);
        assert!(after.len() <= runs_before + 1, "more than one run recorded");
        if after.len() > runs_before {
            assert_eq!(after[runs_before]["status"], "failed");
        }
    }
}

const TLC_HEADER: &str = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,RatecodeID,PULocationID,DOLocationID,payment_type,total_amount";

#[test]
fn bad_files_are_rejected_and_change_nothing() {
    let ws = Workspace::built();
    let jpeg = ws.file("photo/yellow_tripdata_2023-04.parquet", b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01");
    ws.rejected_load(&[&jpeg], &["yellow_tripdata_2023-04.parquet", "JPEG"]);

    let good = std::fs::read(ws.root.join("yellow_tripdata_2023-03.parquet")).unwrap_or_else(|e| panic!("{e}"));
    let truncated = ws.file("cut/yellow_tripdata_2023-03.parquet", &good[..good.len() / 2]);
    ws.rejected_load(&[&truncated], &["yellow_tripdata_2023-03.parquet"]);

    let empty = ws.file("empty/yellow_tripdata_2023-05.parquet", b"");
    ws.rejected_load(&[&empty], &["yellow_tripdata_2023-05.parquet", "empty"]);

    let green = ws.file(
        "green_tripdata_2023-03.csv",
        b"VendorID,lpep_pickup_datetime,lpep_dropoff_datetime,total_amount\n2,2023-03-01 00:00:00,2023-03-01 00:10:00,12.5\n",
    );
    ws.rejected_load(&[&green], &["green_tripdata_2023-03.csv", "green taxi"]);

    let fhv = ws.file(
        "fhv_tripdata_2023-03.csv",
        b"dispatching_base_num,pickup_datetime,dropOff_datetime,PUlocationID,DOlocationID\nB00001,2023-03-01 00:00:00,2023-03-01 00:10:00,1,2\n",
    );
    ws.rejected_load(&[&fhv], &["fhv_tripdata_2023-03.csv", "for-hire vehicle"]);

    let garbage = format!(
        "{TLC_HEADER}\n1,2023-03-01 00:05:00,2023-03-01 00:15:00,1,2.5,1,140,236,1,17.5\n\x01\x02garbage;;;\n"
    );
    let garbage = ws.file("yellow_tripdata_2023-03.csv", garbage.as_bytes());
    ws.rejected_load(&[&garbage], &["yellow_tripdata_2023-03.csv", "line 3"]);

    // A good month beside a bad file in one command: the good one is not kept either.
    let april = ws.root.join("yellow_tripdata_2023-04.parquet").display().to_string();
    ok(&["gen", "--month", "2023-04", "--rows", "1000", "--seed", "2", "--out", &april]);
    ws.rejected_load(&[&april, &jpeg], &["JPEG"]);
}

#[test]
fn failing_runs_leave_every_table_as_it_was() {
    let ws = Workspace::built();
    let cases: [(&str, &str, Vec<&str>); 6] = [
        ("jinja", "select {{ ref('stg_trips' }} as x", vec!["models/broken.sql:1:", "broken"]),
        ("unknown_ref", "select 1 from {{ ref('stg_trip') }}", vec!["models/broken.sql:1:", "ref('stg_trip')"]),
        ("unknown_source", "select 1 from {{ source('raw_taxis', 'trip') }}", vec!["models/broken.sql:1:", "source('raw_taxis', 'trip')"]),
        ("sql", "select no_such_column from {{ ref('stg_trips') }}", vec!["models/broken.sql:1:8:", "broken", "no_such_column"]),
        ("missing_var", "select '{{ var('cutoff') }}' as cutoff", vec!["models/broken.sql:1:", "cutoff"]),
        (
            "merge_key",
            "{{ config(materialized='incremental', unique_key='vendor', incremental_strategy='merge') }}\n\
             select vendor_name as vendor, count(*) as n from {{ ref('stg_trips') }} group by all\n\
             {% if is_incremental() %} union all select 'dup', 1 union all select 'dup', 2 {% endif %}",
            vec!["broken", "unique_key (vendor)", "dup"],
        ),
    ];
    for (name, sql, fragments) in cases {
        let project = ws.project(name, &[("models/broken.sql", sql)]);
        if name == "merge_key" {
            // The first build creates the table; the incremental one meets the duplicate key.
            ok(&["build", "--state", &ws.state, "--project", &project, "--select", "broken"]);
            ws.failed_run(&["build", "--project", &project, "--select", "broken"], &fragments);
        } else {
            ws.failed_run(&["build", "--project", &project], &fragments);
        }
    }
    let cycle = ws.project(
        "cycle",
        &[("models/a.sql", "select * from {{ ref('b') }}"), ("models/b.sql", "select * from {{ ref('a') }}")],
    );
    ws.failed_run(&["build", "--project", &cycle], &["models/a.sql", "ref cycle: a -> b -> a"]);
    // The lesson's partitioned model without its vars, as dbt would fail it.
    ws.failed_run(&["build", "--select", "daily_metrics"], &["daily_metrics.sql", "min_date"]);
    ws.failed_run(&["query", "select nope from stg_trips"], &["nope"]);
}

#[test]
fn a_state_folder_locked_by_another_process_is_refused_and_unchanged() {
    let ws = Workspace::built();
    let state = Path::new(&ws.state);
    let lock = std::fs::File::open(state.join("lock")).unwrap_or_else(|e| panic!("{e}"));
    lock.try_lock().unwrap_or_else(|e| panic!("{e}"));
    let before = snapshot(state);
    let in_use = "another backfill process is using this state folder";
    fails(&["build", "--state", &ws.state], &[in_use]);
    fails(&["materialize", "--state", &ws.state, "--partition", "2023-03-05"], &[in_use]);
    fails(&["query", "--state", &ws.state, "select 1"], &[in_use]);
    assert!(before == snapshot(state), "a refused command changed the state folder");
    drop(lock);
    ok(&["materialize", "--state", &ws.state, "--partition", "2023-03-05"]);
}

#[test]
fn two_processes_on_one_state_folder_leave_it_whole() {
    let ws = Workspace::built();
    let days = ["2023-03-05", "2023-03-06", "2023-03-07"];
    let children: Vec<_> = days
        .iter()
        .map(|day| {
            Command::new(env!("CARGO_BIN_EXE_backfill"))
                .args(["materialize", "--state", &ws.state, "--partition", day])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let mut done = Vec::new();
    for (day, child) in days.iter().zip(children) {
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() || stderr.contains("another backfill process"), "{day}: {stderr}");
        if out.status.success() {
            done.push(*day);
        }
    }
    // The folder opens, every table its manifest names is there, and each command that
    // succeeded kept its partition.
    let listed = ok(&["partitions", "--state", &ws.state]);
    for day in done {
        assert!(listed.lines().any(|l| l.starts_with(&format!("{day} materialized"))), "{day}: {listed}");
    }
    ok(&["query", "--state", &ws.state, "select count(*) from daily_metrics"]);
    assert!(snapshot(Path::new(&ws.state)).keys().all(|p| p.extension().is_none_or(|e| e != "partial")));
}
