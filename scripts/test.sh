#!/usr/bin/env bash
# Runs every test: native unit and integration tests, the parity suite against real dbt-core +
# dbt-duckdb, and the browser tests on the release build of the app in headless Chromium.
# Installs what is missing (apt: clang, python3-venv, chromium, chromium-driver; cargo: trunk,
# wasm-bindgen-cli; a cached Python venv with dbt).
set -euo pipefail
source "$(dirname "$0")/tools.sh"
command -v python3 >/dev/null || apt_install python3 python3-venv
apt_install chromium chromium-driver

echo "== native tests"
cargo test --locked

echo "== parity with dbt-duckdb"
cargo build --locked --bin backfill
python3 tests/parity/run.py --backfill "$CARGO_TARGET_DIR/debug/backfill"

echo "== the app: release build, then browser tests in headless Chromium"
dist="$CARGO_TARGET_DIR/dist"
trunk build --release --dist "$dist"
python3 tests/browser/run.py --dist "$dist" --backfill "$CARGO_TARGET_DIR/debug/backfill"
