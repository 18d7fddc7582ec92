//! Every input the fuzz targets keep, replayed in a plain `cargo test` through the same function
//! its target calls (`fuzz/src/lib.rs`): the seeds of `fuzz/corpus/<target>/` and the minimized
//! findings of `fuzz/regressions/<target>/`. Each input runs in a child process, as libFuzzer
//! runs it, so that a hang or a memory blowup fails the test (naming the file) instead of
//! stalling or killing it.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in a child: the one input it runs.
const INPUT: &str = "BACKFILL_FUZZ_INPUT";
/// libFuzzer allows 10 s on a quiet machine; a test binary may share its cores with others.
const TIME_LIMIT: Duration = Duration::from_secs(30);
/// As libFuzzer's `-rss_limit_mb=2048`.
const RSS_LIMIT_KB: u64 = 2048 * 1024;

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .filter_map(|folder| std::fs::read_dir(fuzz.join(folder).join(target)).ok())
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every input of `target` through `run`, each in a child running this test alone.
fn replay(target: &str, run: fn(&[u8])) {
    if let Some(path) = std::env::var_os(INPUT) {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", Path::new(&path).display()));
        run(&data);
        return;
    }
    let files = inputs(target);
    assert!(!files.is_empty(), "fuzz/corpus/{target}/ has no seeds");
    let failures: Vec<String> = files.iter().filter_map(|file| run_child(target, file).err()).collect();
    assert!(failures.is_empty(), "{} of {} inputs failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}

fn run_child(test: &str, file: &Path) -> Result<(), String> {
    let fail = |what: String| format!("{}: {what}", file.display());
    let mut output = tempfile::tempfile().map_err(|e| fail(e.to_string()))?;
    let stderr = output.try_clone().map_err(|e| fail(e.to_string()))?;
    let mut child = Command::new(std::env::current_exe().map_err(|e| fail(e.to_string()))?)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INPUT, file)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let started = Instant::now();
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => break format!("failed ({status})"),
            Ok(None) => {}
            Err(e) => break e.to_string(),
        }
        if started.elapsed() > TIME_LIMIT {
            break format!("still running after {} s", TIME_LIMIT.as_secs());
        }
        if let Some(kb) = resident_kb(child.id()).filter(|kb| *kb > RSS_LIMIT_KB) {
            break format!("holds {} MB", kb / 1024);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let mut text = String::new();
    let _ = output.rewind();
    let _ = output.read_to_string(&mut text);
    let tail: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).rev().take(12).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(fail(format!("{outcome}\n    {}", tail.join("\n    "))))
}

/// A process's resident memory (Linux); `None` elsewhere.
fn resident_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

macro_rules! replays {
    ($($target:ident),* $(,)?) => {$(
        #[test]
        fn $target() {
            replay(stringify!($target), targets::$target);
        }
    )*};
}

replays!(trip_parquet, trip_csv, template, project, zip_import, share_link);
